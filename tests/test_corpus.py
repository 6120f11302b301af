import os
from pathlib import Path

import pytest

from assistant.corpus import (
    MANIFEST_NAME,
    CorpusFileError,
    add_files,
    extract,
    read_manifest,
    scan,
)
from assistant.errors import InputError
from tests.conftest import CORPUS, DATA
from tests.helpers import make_pdf

ARTICLE = CORPUS / "documents" / "sino-russian-relations.md"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_1129c65df406df5d.txt"


def test_article_keeps_the_seed_text_verbatim() -> None:
    article = ARTICLE.read_text(encoding="utf-8")
    if SEED.exists():
        for line in SEED.read_text(encoding="utf-8").splitlines()[1:]:
            assert line in article
    extracted = extract(ARTICLE)
    assert (
        extracted.title
        == "Sino-Russian Relations: Unlimited Partnership or Hierarchical Friendship?"
    )
    sections = [h.text for h in extracted.headings if h.level == 2]
    assert sections[:3] == [
        "Growing Economic Dependence on China",
        "Technological Dependency",
        "Military Ties",
    ]
    assert sections[-1] == "Conclusion"


def test_manifest_describes_the_article() -> None:
    docs = {d.id: d for d in scan(CORPUS).documents}
    article = docs["sino-russian-relations"]
    assert article.meta.kind == "article"
    assert article.meta.file == "documents/sino-russian-relations.md"
    assert article.meta.license


def test_markdown_loader_finds_title_and_headings() -> None:
    extracted = extract(DATA / "baikal.md")
    assert extracted.title == "Lake Baikal"
    assert [(h.level, h.text) for h in extracted.headings] == [
        (1, "Lake Baikal"),
        (2, "Wildlife"),
        (2, "References"),
    ]
    for h in extracted.headings:
        assert h.text in extracted.text[h.start : h.end]


def test_text_loader_finds_plain_headings() -> None:
    extracted = extract(DATA / "tea.txt")
    assert [(h.level, h.text) for h in extracted.headings] == [
        (1, "The Tea Road"),
        (2, "Kyakhta Trade"),
    ]


def test_html_loader_drops_scripts_and_styles_and_keeps_headings() -> None:
    extracted = extract(DATA / "silk.html")
    assert extracted.title == "The Silk Road"
    assert "do not index" not in extracted.text and "color: red" not in extracted.text
    assert "Samarkand was a major stop." in extracted.text
    assert [h.text for h in extracted.headings] == ["The Silk Road", "Goods"]
    for h in extracted.headings:
        assert extracted.text[h.start : h.end] == h.text


def test_pdf_loader_reads_the_text_layer(tmp_path: Path) -> None:
    pdf = make_pdf(
        tmp_path / "amur.pdf", ["The Amur River forms part of the border."], title="Amur"
    )
    extracted = extract(pdf)
    assert extracted.title == "Amur"
    assert "The Amur River forms part of the border." in extracted.text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"  \n\n", "empty"),
        ("binary.txt", b"\x00\x01\x02PNG", "binary"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "unreadable PDF"),
        ("table.xlsx", b"whatever", "unsupported file type"),
    ],
)
def test_unusable_files_raise_with_a_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusFileError, match=reason):
        extract(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "secret.md"
    path.write_text("# Secret\n\nText.")
    path.chmod(0)
    with pytest.raises(CorpusFileError, match="permission denied"):
        extract(path)


def test_scan_skips_bad_files_with_reasons_and_keeps_the_rest(small_corpus: Path) -> None:
    (small_corpus / "empty.md").write_text("\n")
    (small_corpus / "blob.txt").write_bytes(b"\x00\xff\x00")
    result = scan(small_corpus)
    assert sorted(d.id for d in result.documents) == ["baikal", "silk", "tea"]
    assert dict(result.skipped) == {
        "blob.txt": "binary file, not text",
        "empty.md": "empty: no text to index",
    }


def test_documents_without_manifest_entry_get_metadata_from_the_file(small_corpus: Path) -> None:
    docs = {d.id: d.meta for d in scan(small_corpus).documents}
    assert docs["baikal"].title == "Lake Baikal"
    assert docs["silk"].title == "The Silk Road"
    assert docs["tea"].title == "Tea"
    assert {m.kind for m in docs.values()} == {"source"}


def test_bad_manifest_is_a_clear_input_error(small_corpus: Path) -> None:
    (small_corpus / MANIFEST_NAME).write_text("[[documents]\nid = ")
    with pytest.raises(InputError, match="not valid TOML"):
        scan(small_corpus)
    (small_corpus / MANIFEST_NAME).write_text(
        '[[documents]]\nid = "a"\nfile = "x.md"\n[[documents]]\nid = "a"\nfile = "y.md"\n'
    )
    with pytest.raises(InputError, match="twice"):
        scan(small_corpus)


def test_manifest_values_of_any_type_are_normalised(small_corpus: Path) -> None:
    (small_corpus / MANIFEST_NAME).write_text(
        '[[documents]]\nid = "baikal"\nfile = "baikal.md"\ndate = 2024-05-01\n'
        'author = ["A. One", "B. Two"]\nurl = 12\ntitle = "Baikal — ünïcode"\n'
    )
    meta = {d.id: d.meta for d in scan(small_corpus).documents}["baikal"]
    assert (meta.date, meta.author, meta.url, meta.title) == (
        "2024-05-01",
        "A. One, B. Two",
        "12",
        "Baikal — ünïcode",
    )


def test_missing_manifest_file_is_reported(small_corpus: Path) -> None:
    (small_corpus / MANIFEST_NAME).write_text('[[documents]]\nid = "gone"\nfile = "gone.md"\n')
    assert ("gone.md", "listed in the manifest but the file is missing") in scan(
        small_corpus
    ).skipped


def test_add_copies_records_and_refuses_duplicates(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    result = add_files(
        corpus,
        [DATA / "baikal.md"],
        title="Baikal",
        url="https://example.org/b",
        author="Ann",
        date="2024-01-02",
    )
    assert result.added == ["documents/baikal.md"]
    entry = read_manifest(corpus).by_file()["documents/baikal.md"]
    assert entry == {
        "id": "baikal",
        "file": "documents/baikal.md",
        "title": "Baikal",
        "kind": "source",
        "author": "Ann",
        "date": "2024-01-02",
        "url": "https://example.org/b",
    }
    again = add_files(corpus, [DATA / "baikal.md"])
    assert again.added == [] and again.already == [(str(DATA / "baikal.md"), "documents/baikal.md")]


def test_add_folder_skips_unusable_files(tmp_path: Path) -> None:
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "a.md").write_text("# A\n\nAlpha text about rivers.")
    (src / "b.bin").write_bytes(b"\x00\x00")
    corpus = tmp_path / "corpus"
    result = add_files(corpus, [src])
    assert result.added == ["documents/bundle/a.md"]
    assert [r for _, r in result.skipped] == [
        "unsupported file type '.bin' (supported: .htm .html .markdown .md .pdf .text .txt)"
    ]


def test_add_rejects_missing_and_unusable_single_files(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    with pytest.raises(InputError, match="No such file"):
        add_files(corpus, [tmp_path / "nope.md"])
    empty = tmp_path / "empty.md"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        add_files(corpus, [empty])
    with pytest.raises(InputError, match="--title"):
        add_files(corpus, [DATA / "baikal.md", DATA / "tea.txt"], title="One title")
    assert not (corpus / MANIFEST_NAME).exists()


def test_dangling_link_is_skipped_as_unreadable(small_corpus: Path) -> None:
    (small_corpus / "moved.md").symlink_to(small_corpus / "nowhere.md")
    skipped = dict(scan(small_corpus).skipped)
    assert skipped["moved.md"].startswith("unreadable")

import hashlib
import os
import re
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


# sha256 of each line of the original text after its title, in order: the check below runs
# on a clean clone too, where the original text itself is not at hand.
VERBATIM = DATA / "verbatim" / "article-lines.sha256"


def _sha256(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def test_article_keeps_the_seed_text_verbatim() -> None:
    article = ARTICLE.read_text(encoding="utf-8")
    expected = VERBATIM.read_text(encoding="utf-8").split()
    assert len(expected) > 30
    if SEED.exists():
        lines = SEED.read_text(encoding="utf-8").splitlines()[1:]
        assert [_sha256(line) for line in lines] == expected, f"{VERBATIM} is out of date"
        for line in lines:
            assert line in article
    # Every original line is a whole line of the article (headings with their Markdown marks),
    # in the original order.
    found = [_sha256(re.sub(r"^#{1,6} ", "", line)) for line in article.splitlines()]
    missing = [n for n, digest in enumerate(expected, start=2) if digest not in found]
    assert not missing, f"lines {missing} of the original text are not verbatim in {ARTICLE}"
    positions = [found.index(digest) for digest in expected]
    assert positions == sorted(positions)
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
    # A kind no scope can choose would drop the document out of every --kind filter.
    (small_corpus / MANIFEST_NAME).write_text(
        '[[documents]]\nid = "baikal"\nfile = "baikal.md"\nkind = "weird"\n'
    )
    with pytest.raises(InputError, match="gives 'baikal' the kind 'weird'") as bad:
        scan(small_corpus)
    assert bad.value.hint == "A document's kind is one of: article, source."
    # A misspelt table would leave every entry unread, silently.
    (small_corpus / MANIFEST_NAME).write_text('[[document]]\nfile = "baikal.md"\ntitle = "X"\n')
    with pytest.raises(InputError, match="unknown key or table 'document'") as bad:
        scan(small_corpus)
    assert bad.value.hint and bad.value.hint.startswith("Did you mean 'documents'?")
    (small_corpus / MANIFEST_NAME).write_text('[[documents]]\nid = "baikal"\ntitle = "X"\n')
    with pytest.raises(InputError, match="lists 'baikal' without a file"):
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
    reasons = dict(scan(small_corpus).skipped)
    assert reasons["gone.md"].startswith("listed in sources.toml but the file is missing")
    assert "if it was moved or renamed, change its file = line there" in reasons["gone.md"]


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
    with pytest.raises(InputError, match="empty") as refused:
        add_files(corpus, [empty])
    assert refused.value.hint and "text in it" in refused.value.hint  # not "only .md ..."
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    with pytest.raises(InputError, match="not a regular file"):
        add_files(corpus, [fifo])
    with pytest.raises(InputError, match="--title"):
        add_files(corpus, [DATA / "baikal.md", DATA / "tea.txt"], title="One title")
    assert not (corpus / MANIFEST_NAME).exists()


def test_dangling_link_is_skipped_as_unreadable(small_corpus: Path) -> None:
    (small_corpus / "moved.md").symlink_to(small_corpus / "nowhere.md")
    skipped = dict(scan(small_corpus).skipped)
    assert skipped["moved.md"].startswith("unreadable")


# --- "current to" dates --------------------------------------------------------------------


def _manifest(corpus: Path, extra: str) -> None:
    (corpus / MANIFEST_NAME).write_text(
        f'[[documents]]\nid = "baikal"\nfile = "baikal.md"\n{extra}\n', encoding="utf-8"
    )


@pytest.mark.parametrize(
    ("value", "stored"), [('"2025-11"', "2025-11"), ("2025-11-30", "2025-11-30")]
)
def test_current_to_is_read_from_the_manifest(small_corpus: Path, value: str, stored: str) -> None:
    _manifest(small_corpus, f"current_to = {value}")
    docs = {d.id: d.meta for d in scan(small_corpus).documents}
    assert docs["baikal"].current_to == stored
    assert docs["tea"].current_to == ""


@pytest.mark.parametrize("value", ['"2025-13"', '"Nov 2025"', '"2025-02-30"', "2025", '"25-11"'])
def test_a_bad_current_to_names_the_entry(small_corpus: Path, value: str) -> None:
    _manifest(small_corpus, f"current_to = {value}")
    with pytest.raises(InputError, match=r"invalid current_to .* for 'baikal'") as err:
        scan(small_corpus)
    assert "YYYY-MM" in (err.value.hint or "")


def test_documents_without_current_to_keep_their_content_hash(small_corpus: Path) -> None:
    """Indexes built before the field existed stay up to date: no document is re-embedded."""
    import hashlib
    import json

    from assistant.corpus import LOADER_VERSION

    doc = next(d for d in scan(small_corpus).documents if d.id == "baikal")
    old = {k: v for k, v in doc.meta.to_dict().items() if k != "current_to"}
    h = hashlib.sha256(f"loader-{LOADER_VERSION}\n".encode())
    h.update(json.dumps(old, sort_keys=True).encode())
    h.update(doc.path.read_bytes())
    assert doc.content_hash == h.hexdigest()


def test_stored_metadata_from_before_current_to_still_loads() -> None:
    from assistant.types import DocumentMeta

    meta = DocumentMeta.from_dict({"id": "a", "title": "A", "file": "a.md", "references": []})
    assert meta.current_to == ""


# --- Hostile files -------------------------------------------------------------------------


def test_windows_1252_text_loads_with_a_warning(small_corpus: Path) -> None:
    from assistant.corpus import CorpusWarning

    (small_corpus / "legacy.txt").write_bytes(
        "The caf\u00e9 sold \u201cKyakhta\u201d tea \u2013 by the pound.".encode("cp1252")
    )
    with pytest.warns(CorpusWarning, match="legacy.txt: not UTF-8; read as Windows-1252"):
        result = scan(small_corpus)
    doc = next(d for d in result.documents if d.id == "legacy")
    assert doc.text == "The caf\u00e9 sold \u201cKyakhta\u201d tea \u2013 by the pound."
    assert [rel for rel, _ in result.warnings] == ["legacy.txt"]


def test_stray_bytes_in_utf8_text_are_replaced_with_a_warning(small_corpus: Path) -> None:
    (small_corpus / "stray.md").write_bytes(
        "# Stray\n\nNaïve text \u2014 then ".encode() + b"\xff."
    )
    with pytest.warns(UserWarning, match="1 undecodable byte"):
        result = scan(small_corpus)
    doc = next(d for d in result.documents if d.id == "stray")
    assert doc.text.endswith("Naïve text \u2014 then \ufffd.")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_text_with_a_byte_order_mark_loads(small_corpus: Path, encoding: str) -> None:
    """Notepad's "Unicode" is UTF-16 with a byte-order mark: text, not a binary file."""
    text = "# Kyakhta\r\n\nThe caf\u00e9 sold \u201cKyakhta\u201d tea \u2014 \u6052\u6cf0."
    (small_corpus / "wide.md").write_bytes(("\ufeff" + text).encode(encoding))
    result = scan(small_corpus)
    doc = next(d for d in result.documents if d.id == "wide")
    assert "The caf\u00e9 sold \u201cKyakhta\u201d tea \u2014 \u6052\u6cf0." in doc.text
    assert "\ufeff" not in doc.text and "\r" not in doc.text and not result.skipped


def test_utf32_text_is_refused_with_a_reason_not_read_as_utf16(small_corpus: Path) -> None:
    (small_corpus / "wide32.txt").write_bytes("\ufeffTea from Kyakhta.".encode("utf-32-le"))
    skipped = dict(scan(small_corpus).skipped)
    assert skipped["wide32.txt"] == "UTF-32 text (save it as UTF-8 to index it)"


def test_undecodable_text_is_skipped_with_a_reason(small_corpus: Path) -> None:
    (small_corpus / "garbled.txt").write_bytes(b"abc \x81\x8d\x8f\x90\x9d def")
    skipped = dict(scan(small_corpus).skipped)
    assert skipped["garbled.txt"].startswith("neither UTF-8 nor Windows-1252 text")


def test_a_file_over_the_size_cap_is_skipped_and_reported(
    small_assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assistant.corpus.loaders as loaders

    monkeypatch.setattr(loaders, "MAX_FILE_BYTES", 2048)
    big = small_assistant.settings.corpus_dir / "big.md"
    big.write_text("# Big\n\n" + "The steppe is wide. " * 200)
    report = small_assistant.index()
    reasons = dict(report.skipped)
    assert reasons["big.md"] == "larger than the 2 KB limit"
    assert "big" not in small_assistant.snapshot().docs
    assert "baikal" in small_assistant.snapshot().docs


def test_links_out_of_the_corpus_are_neither_indexed_nor_served(
    small_assistant, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nThe password is swordfish.\n")
    corpus = small_assistant.settings.corpus_dir
    (corpus / "secret.md").symlink_to(outside / "secret.md")
    (corpus / "linked").symlink_to(outside, target_is_directory=True)
    (corpus / "inside.md").symlink_to(corpus / "baikal.md")  # a link within the corpus is fine
    report = small_assistant.index()
    reasons = dict(report.skipped)
    assert reasons["secret.md"] == "a link to a file outside the corpus folder (not indexed)"
    docs = small_assistant.snapshot().docs
    assert "inside" in docs and "secret" not in docs
    assert all("swordfish" not in d.text for d in docs.values())
    with pytest.raises(InputError, match="No document with id 'secret'"):
        small_assistant.document("secret")  # what the web app's document view shows


def test_encrypted_and_malformed_pdfs_are_skipped_with_reasons(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    plain = make_pdf(tmp_path / "plain.pdf", ["The Amur River forms part of the border."])
    writer = PdfWriter(clone_from=plain)
    writer.encrypt("secret", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    with pytest.raises(CorpusFileError, match="encrypted PDF that needs a password"):
        extract(locked)
    # Encrypted without a password to open it (only permissions restricted): readable.
    writer = PdfWriter(clone_from=plain)
    writer.encrypt("", owner_password="owner", algorithm="RC4-128")
    writer.write(tmp_path / "open.pdf")
    assert "Amur River" in extract(tmp_path / "open.pdf").text
    data = plain.read_bytes()
    for name, body in [
        ("truncated.pdf", data[: len(data) // 3]),
        ("garbage.pdf", data[:9] + bytes(range(256)) * 4),
        ("no-text.pdf", data.replace(b"The Amur River forms part of the border.", b"")),
    ]:
        (tmp_path / name).write_bytes(body)
        with pytest.raises(CorpusFileError, match=r"PDF|no text layer|empty"):
            extract(tmp_path / name)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(document.cookie)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_a_manifest_url_that_is_not_http_is_left_out_with_a_warning(
    small_corpus: Path, url: str
) -> None:
    (small_corpus / MANIFEST_NAME).write_text(
        f'[[documents]]\nid = "baikal"\nfile = "baikal.md"\nurl = {json_str(url)}\n',
        encoding="utf-8",
    )
    with pytest.warns(UserWarning, match="is not an http\\(s\\) link; left out"):
        result = scan(small_corpus)
    meta = {d.id: d.meta for d in result.documents}["baikal"]
    assert meta.url == ""
    with pytest.raises(InputError, match="is not an http\\(s\\) link"):
        add_files(small_corpus, [DATA / "tea.txt"], url=url)


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("url", "notaurl", "is not an http(s) link"),
        ("url", "https://", "is not an http(s) link"),
        ("date", "not-a-date", "is not a date"),
        ("date", "2024-13-01", "is not a date"),
        ("date", "2024-02-30", "is not a date"),
    ],
)
def test_add_refuses_a_url_or_date_that_is_not_one(
    tmp_path: Path, option: str, value: str, shown: str
) -> None:
    corpus = tmp_path / "corpus"
    with pytest.raises(InputError, match=re.escape(shown)):
        add_files(corpus, [DATA / "tea.txt"], **{option: value})
    assert not (corpus / MANIFEST_NAME).exists(), "nothing is recorded"
    for n, good in enumerate(({"date": "2024"}, {"date": "2024-03"}, {"url": "http://a.org"})):
        assert add_files(tmp_path / f"ok{n}", [DATA / "tea.txt"], **good).added


def test_http_urls_and_plain_text_are_kept(small_corpus: Path) -> None:
    from assistant.corpus import is_safe_url

    assert is_safe_url("https://example.org/a?b=c")
    assert is_safe_url("http://example.org")
    assert is_safe_url("12")  # no scheme: plain text, never a link
    assert not is_safe_url("mailto:someone@example.org")


def json_str(text: str) -> str:
    import json

    return json.dumps(text)


def test_the_command_shows_a_corpus_warning_as_one_line(small_corpus: Path, tmp_path: Path) -> None:
    """Not Python's warning format, with the tool's own source line under it."""
    import subprocess

    from tests.helpers import cli_command

    (small_corpus / "legacy.txt").write_bytes("The caf\u00e9 sold tea.".encode("cp1252"))
    cmd = cli_command(small_corpus, tmp_path / "index", "index")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert (
        "Warning: legacy.txt: not UTF-8; read as Windows-1252 (save it as UTF-8 to be sure)"
        in lines
    )
    assert "CorpusWarning" not in done.stderr and ".py:" not in done.stderr


def test_add_leaves_the_ids_of_files_without_an_entry_as_they_were(tmp_path: Path) -> None:
    """tea.txt, copied in by hand, goes by "tea"; adding another tea.md must not take it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.txt").write_text("Tea reached Russia through Kyakhta.")
    before = {d.meta.file: d.meta.id for d in scan(corpus).documents}
    other = tmp_path / "tea.md"
    other.write_text("# Tea\n\nA second text about tea and caravans.")
    add_files(corpus, [other])
    after = {d.meta.file: d.meta.id for d in scan(corpus).documents}
    assert before == {"tea.txt": "tea"} and after["tea.txt"] == "tea"
    assert after["documents/tea.md"] != "tea"


def test_add_leaves_the_id_of_a_manifest_entry_without_one_as_it_was(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "sources.toml").write_text('[[documents]]\nfile = "chai.txt"\ntitle = "Chai"\n')
    (corpus / "chai.txt").write_text("Chai is tea with spices.")
    assert {d.meta.file: d.meta.id for d in scan(corpus).documents}["chai.txt"] == "chai"
    third = tmp_path / "chai.md"
    third.write_text("# Chai\n\nAnother text about chai.")
    add_files(corpus, [third])
    ids = {d.meta.file: d.meta.id for d in scan(corpus).documents}
    assert ids["chai.txt"] == "chai" and ids["documents/chai.md"] != "chai"

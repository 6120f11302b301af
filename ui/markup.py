"""HTML for the web app. Every piece of document text passes through `esc`: documents are
untrusted, so nothing in them may become markup, a link or a script in the page."""

from __future__ import annotations

import html
import re
from urllib.parse import urlparse

from assistant import (
    NOT_GIVEN,
    Answer,
    Citation,
    PassageContext,
    ShortAnswer,
    SourceSummary,
    StoredDocument,
    SupportResult,
    Turn,
)
from ui.files import pdf_href

# Characters that Markdown or HTML would interpret, as numeric entities.
_ENTITIES = {c: f"&#{ord(c)};" for c in "&<>\"'`[]()*_#|~!\\{}=:"}
_SAFE_SCHEMES = {"http", "https"}


def esc(text: str) -> str:
    """Text shown literally: no tag, no Markdown link, no emphasis can come out of it."""
    return "".join(_ENTITIES.get(c, c) for c in text)


def safe_url(url: str) -> str | None:
    """The URL if it is a plain http(s) link, else None (no javascript:, data:, ...)."""
    try:
        parsed = urlparse(url.strip())
    except ValueError:
        return None
    if parsed.scheme.lower() in _SAFE_SCHEMES and parsed.netloc:
        return url.strip()
    return None


def link(url: str, label: str) -> str:
    href = safe_url(url)
    if href is None:
        return esc(label)
    return f'<a href="{html.escape(href, quote=True)}" target="_blank" rel="noopener noreferrer nofollow">{esc(label)}</a>'


def kind_badge(kind: str) -> str:
    label = "article" if kind == "article" else "source"
    return f'<span class="kind kind-{label}">{label}</span>'


def anchor(turn: int, n: int) -> str:
    return f"cite-{turn}-{n}"


def answer_html(answer: Answer, turn: int, sentences: int | None = None) -> str:
    """An answer for the chat: each sentence followed by its clickable marker(s)."""
    if answer.abstained and not answer.sentences:
        out = f'<p class="abstain">{esc(answer.text)}</p>'
        if answer.passages:
            leads = "".join(
                f"<li>{esc(sp.title or sp.passage.doc_id)}"
                + (f" — {esc(sp.passage.section)}" if sp.passage.section else "")
                + f" <code>{esc(sp.passage.id)}</code></li>"
                for sp in answer.passages[:3]
            )
            out += f'<p class="leads-title">Closest passages (leads, not answers):</p><ul class="leads">{leads}</ul>'
        return out
    shown = answer.sentences if sentences is None else answer.sentences[:sentences]
    parts = []
    for s in shown:
        marks = "".join(
            f'<a class="cite" href="#{anchor(turn, n)}" title="Show source {n}">[{n}]</a>'
            for n in s.citations
        )
        flag = "" if s.supported else ' <span class="unsupported">(unsupported)</span>'
        parts.append(f"{esc(s.text)} {marks}{flag}")
    body = " ".join(parts)
    if answer.abstained:  # the sources say that what was asked is not known
        body = f'<span class="abstain">{esc(NOT_GIVEN)}</span> {body}'
    short = answer.short_answer
    if short is not None and any(short.n in s.citations for s in shown):
        body = f'<strong class="short-answer">{esc(short.text)}</strong> — {body}'
    if answer.note:
        body = f'<p class="note">{esc(answer.note)}</p>' + body
    titles = []
    for c in answer.citations:
        if sentences is not None and not any(c.n in s.citations for s in shown):
            continue
        titles.append(
            f'<a class="cite" href="#{anchor(turn, c.n)}">[{c.n}]</a> {esc(short_title(c.title))}'
        )
    refs = f'<div class="refs">{" · ".join(titles)}</div>' if titles else ""
    return f'<div class="answer">{body}</div>{strength_html(answer)}{refs}'


def strength_html(answer: Answer) -> str:
    """The answer's strength as a word, with the calibrated probability on hover."""
    label = answer.strength_label
    if label is None or answer.strength is None:
        return ""
    hint = f"{answer.strength:.2f}: the calibrated probability that this answer is right"
    return (
        f'<div class="strength-line">Strength: <span class="strength strength-{label}" '
        f'title="{esc(hint)}">{label}</span></div>'
    )


def short_title(title: str, limit: int = 60) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rsplit(" ", 1)[0] + "…"


def citation_card(
    c: Citation,
    turn: int,
    passage_text: str,
    passage_start: int,
    short: ShortAnswer | None = None,
) -> str:
    """A cited passage with the cited sentence highlighted, and inside it the short answer."""
    s, e = c.start - passage_start, c.end - passage_start
    cited = esc(passage_text[s:e])
    if short is not None and short.n == c.n and c.start <= short.start < short.end <= c.end:
        a, b = short.start - passage_start, short.end - passage_start
        cited = (
            esc(passage_text[s:a])
            + f'<strong class="short-answer">{esc(passage_text[a:b])}</strong>'
            + esc(passage_text[b:e])
        )
    body = esc(passage_text[:s]) + f'<mark class="cited">{cited}</mark>' + esc(passage_text[e:])
    meta = [kind_badge(c.kind), f'<span class="title">{esc(c.title)}</span>']
    if c.section:
        meta.append(f'<span class="section">{esc(c.section)}</span>')
    if c.current_to:
        meta.append(f'<span class="current-to">current to {esc(c.current_to)}</span>')
    tail = [f"<code>{esc(c.passage_id)}</code>", f"characters {c.start}–{c.end}"]
    if c.page:  # a PDF: open the file itself at the cited page
        tail.append(pdf_link(c.doc_id, c.page))
    if c.url:
        tail.append(link(c.url, "open source"))
    return (
        f'<div class="card" id="{anchor(turn, c.n)}">'
        f'<div class="card-head"><span class="num">[{c.n}]</span> {" ".join(meta)}</div>'
        f'<div class="passage">{body}</div>{note_html(c)}'
        f'<div class="card-foot">{" · ".join(tail)}</div></div>'
    )


def pdf_link(doc_id: str, page: int) -> str:
    """The "p. N" link that opens a PDF document of the index at that page."""
    href = html.escape(pdf_href(doc_id, page), quote=True)
    return (
        f'<a class="pdf-page" href="{href}" target="_blank" rel="noopener noreferrer" '
        f'title="Open the PDF at this page">p. {page}</a>'
    )


def note_html(c: Citation) -> str:
    """What corpus/NOTES.md records about the cited sentence, pointing to the brief that
    states the public record (open it in the Sources tab)."""
    note = c.note
    if note is None:
        return ""
    verdict = re.sub(r"[^a-z]+", "-", note.verb)
    record = f" {esc(note.public_record)}" if note.public_record else ""
    return (
        f'<div class="card-note note-{verdict}">'
        f"<strong>Note: a source {esc(note.verb)} this:</strong> {esc(note.heading)}.{record} "
        f'<span class="note-brief">See <a class="brief-link" href="#doc-{esc(note.brief_id)}" '
        f'data-doc="{esc(note.brief_id)}" title="Open it in the Sources tab">'
        f"{esc(note.brief_title)}</a> (<code>{esc(note.brief_id)}</code>) "
        "in the Sources tab.</span></div>"
    )


STALE = "This source changed since the answer was given"


def quote_in_place(c: Citation, passage_text: str, passage_start: int) -> bool:
    """Whether the cited sentence still sits at its offsets: the passage the index holds now
    (its text, and where it starts in its document) has the quote at [c.start:c.end]."""
    s, e = c.start - passage_start, c.end - passage_start
    return 0 <= s <= e <= len(passage_text) and passage_text[s:e] == c.quote


def stale_card(c: Citation, turn: int) -> str:
    """A citation whose passage is gone or has moved since the answer (the document was
    edited and indexed again): what the answer quoted then, said to be so, with nothing
    highlighted in a text that may now say something else."""
    meta = [kind_badge(c.kind), f'<span class="title">{esc(c.title)}</span>']
    tail = ["as quoted when the answer was given", f"<code>{esc(c.passage_id)}</code>"]
    if c.url:
        tail.append(link(c.url, "open source"))
    return (
        f'<div class="card card-stale" id="{anchor(turn, c.n)}">'
        f'<div class="card-head"><span class="num">[{c.n}]</span> {" ".join(meta)}</div>'
        f'<div class="stale-note">{STALE}.</div>'
        f'<blockquote class="stale-quote">{esc(c.quote)}</blockquote>'
        f'<div class="card-foot">{" · ".join(tail)}</div></div>'
    )


def sources_panel(turns: list[Turn], passage_texts: dict[str, tuple[str, int]]) -> str:
    """Every turn's citations, the latest turn first; a citation whose quote is no longer
    where it was in the index (`passage_texts`: id -> text and start) is marked stale."""
    if not turns:
        return '<div class="panel-empty">Sources of each answer appear here. Click a marker such as [1] in an answer to jump to its passage.</div>'
    blocks = []
    for i in range(len(turns) - 1, -1, -1):
        turn = turns[i]
        cards = []
        for c in turn.answer.citations:
            found = passage_texts.get(c.passage_id)
            if found is None or not quote_in_place(c, *found):
                cards.append(stale_card(c, i))
                continue
            cards.append(citation_card(c, i, *found, turn.answer.short_answer))
        if not cards:
            cards.append(f'<div class="panel-none">{no_citation(turn.answer)}</div>')
        blocks.append(
            f'<div class="turn">{turn_heading(i + 1, turn.question)}{"".join(cards)}</div>'
        )
    return "".join(blocks)


SHOWN_HEADING = 200  # characters of a question shown as its turn's heading in the panel


def turn_heading(n: int, question: str) -> str:
    """A turn's heading in the sources panel: the question, cut short when long (all of it
    on hover), so that a pasted page does not fill the panel."""
    shown = question if len(question) <= SHOWN_HEADING else question[:SHOWN_HEADING] + "…"
    title = f' title="{esc(question)}"' if shown != question else ""
    return f'<div class="turn-q"{title}>{n}. {esc(shown)}</div>'


def no_citation(answer: Answer) -> str:
    """Why a turn cites nothing. An abstention says it in the chat's own words: its reply may
    not be "the sources do not answer" at all, as when a first question points back at
    nothing ("When was it signed?") and the reply asks what "it" is, having searched nothing."""
    if answer.scope:
        said = "No citation: the chosen documents do not say."
    elif answer.abstained and answer.text:
        said = f"No citation. {answer.text}"
    else:
        said = "No citation: the sources do not answer this."
    return esc(said)


def documents_rows(sources: list[SourceSummary]) -> list[list[str | int]]:
    return [
        [
            s.document.meta.id,
            s.document.meta.title,
            s.document.meta.kind,
            s.document.meta.byline,
            " · ".join(
                x
                for x in (
                    s.document.meta.date,
                    s.document.meta.current_to and f"current to {s.document.meta.current_to}",
                )
                if x
            ),
            s.passages,
        ]
        for s in sources
    ]


def document_html(doc: StoredDocument, passages: list[tuple[str, int, int]]) -> str:
    """A document with its passages marked; `passages` holds (id, start, end), in order."""
    meta = doc.meta
    head = [f'<h3 id="doc-{esc(meta.id)}">{esc(meta.title)}</h3>', f"<p>{kind_badge(meta.kind)}"]
    details = [x for x in (meta.byline, meta.date) if x]
    if meta.current_to:
        details.append(f"current to {meta.current_to}")
    if details:
        head.append(" " + esc(" · ".join(details)))
    if meta.url:
        head.append(" · " + link(meta.url, meta.url))
    head.append(f" · <code>{esc(meta.id)}</code></p>")
    if meta.license:
        head.append(f'<p class="license">License: {esc(meta.license)}</p>')
    out = []
    cursor = 0
    text = doc.text
    for pid, start, end in passages:
        if start > cursor:
            out.append(_plain(text[cursor:start]))
        out.append(
            f'<div class="doc-passage" id="p-{esc(pid)}"><span class="pid">{esc(pid)}</span>'
            f"{esc(text[start:end])}</div>"
        )
        cursor = end
    if cursor < len(text):
        out.append(_plain(text[cursor:]))
    return "".join(head) + f'<div class="doc">{"".join(out)}</div>'


def _plain(text: str) -> str:
    """Text between passages (headings, reference lists), shown as such."""
    lines = []
    for line in text.split("\n"):
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            lines.append(f'<div class="doc-heading h{len(m.group(1))}">{esc(m.group(2))}</div>')
        elif line.strip() and not re.fullmatch(r"\s*(?:[-*+•]|\d{1,3}[.)])\s*", line):
            lines.append(f'<div class="doc-other">{esc(line)}</div>')
    return "".join(lines)


def support_html(claim: str, results: list[SupportResult], titles: dict[str, str]) -> str:
    if not results:
        return '<div class="panel-none">No passage matches this claim.</div>'
    out = [f'<div class="claim">Claim: {esc(claim)}</div>']
    for i, r in enumerate(results, start=1):
        p = r.passage
        verdict = "supports" if r.score >= 0.5 else "related"
        body = esc(p.text)
        if r.sentence:
            s, e = r.sentence[0] - p.start, r.sentence[1] - p.start
            body = (
                esc(p.text[:s]) + f'<mark class="cited">{esc(p.text[s:e])}</mark>' + esc(p.text[e:])
            )
        out.append(
            f'<div class="card"><div class="card-head"><span class="num">{i}.</span> '
            f'<span class="score score-{verdict}">{r.score:.2f} {verdict}</span> '
            f'<span class="title">{esc(titles.get(p.doc_id, p.doc_id))}</span></div>'
            f'<div class="passage">{body}</div>'
            f'<div class="card-foot"><code>{esc(p.id)}</code></div></div>'
        )
    return "".join(out)


def context_html(ctx: PassageContext) -> str:
    p, meta = ctx.passage, ctx.document.meta
    head = f'<div class="card-head">{kind_badge(meta.kind)} <span class="title">{esc(meta.title)}</span>'
    if p.section:
        head += f' <span class="section">{esc(p.section)}</span>'
    head += "</div>"
    body = (
        f'<span class="ctx">{"…" if p.start - len(ctx.before) > 0 else ""}{esc(ctx.before)}</span>'
        f'<mark class="cited">{esc(p.text)}</mark>'
        f'<span class="ctx">{esc(ctx.after)}{"…" if p.end + len(ctx.after) < len(ctx.document.text) else ""}</span>'
    )
    foot = f"<code>{esc(p.id)}</code> · characters {p.start}–{p.end}"
    page = ctx.document.page(p.start)
    if page:
        foot += " · " + pdf_link(meta.id, page)
    if meta.url:
        foot += " · " + link(meta.url, "open source")
    return f'<div class="card">{head}<div class="passage">{body}</div><div class="card-foot">{foot}</div></div>'


def error_html(message: str) -> str:
    return f'<div class="error">{esc(message)}</div>'

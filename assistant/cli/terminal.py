"""Plain-text rendering of answers, passages and sources for the terminal."""

from __future__ import annotations

import textwrap

import click

from assistant.text import truncate
from assistant.types import (
    NOT_GIVEN,
    Answer,
    Citation,
    IndexReport,
    PassageContext,
    SourceSummary,
    SupportResult,
)

WIDTH = 100


def _wrap(text: str, indent: str = "", width: int = WIDTH) -> str:
    return textwrap.fill(
        " ".join(text.split()), width=width, initial_indent=indent, subsequent_indent=indent
    )


def citation_line(c: Citation) -> str:
    where = f"{c.title} ({c.kind})"
    if c.section:
        where += f" — {c.section}"
    if c.current_to:
        where += f" · current to {c.current_to}"
    return f"[{c.n}] {where}"


def note_line(c: Citation) -> str | None:
    """What corpus/NOTES.md records about the cited sentence, in one line."""
    if c.note is None:
        return None
    return f"Note: a source {c.note.verb} this: {c.note.heading} (see {c.note.brief_id})"


def answer_text(answer: Answer, show_leads: int = 3) -> str:
    """An answer with its numbered references and the quoted sentences."""
    lines: list[str] = []
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"(searched as: {answer.standalone_question})")
    if answer.note:
        lines.append(f"Note: {answer.note}")
    body = []
    for s in answer.sentences:
        marks = "".join(f"[{n}]" for n in s.citations)
        flag = "" if s.supported else " (unsupported)"
        body.append(f"{s.text} {marks}{flag}".strip())
    text = " ".join(body) if body else answer.text
    if answer.abstained and body:  # the sources say that what was asked is not known
        text = f"{NOT_GIVEN} {text}"
    if answer.short_answer is not None and body:
        # Bold on a terminal; click.echo drops the styling when the output is not one.
        text = f"{click.style(answer.short_answer.text, bold=True)} — {text}"
    lines.append(_wrap(text))
    if answer.strength is not None:
        # The calibrated probability that the answer is right (assistant/strength.py).
        lines.append(f"Strength: {answer.strength_label} ({answer.strength:.2f})")
    if answer.citations:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            lines.append(citation_line(c))
            lines.append(_wrap(f"“{c.quote}”", indent="    "))
            url = f"  {c.url}" if c.url else ""
            page = f", p. {c.page}" if c.page else ""
            lines.append(f"    passage {c.passage_id}{page}, characters {c.start}–{c.end}{url}")
            note = note_line(c)
            if note:
                lines.append(f"    {note}")
    elif answer.abstained and answer.passages and show_leads:
        lines.append("")
        lines.append("Closest passages (leads, not answers):")
        for sp in answer.passages[:show_leads]:
            label = sp.title or sp.passage.doc_id
            if sp.passage.section:
                label += f" — {sp.passage.section}"
            lines.append(f"  - {label} ({sp.passage.id})")
            lines.append(_wrap(truncate(sp.passage.text, 220), indent="      "))
    return "\n".join(lines)


def context_text(ctx: PassageContext) -> str:
    """A passage marked inside the text around it."""
    p, meta = ctx.passage, ctx.document.meta
    head = [
        f"Passage {p.id}",
        f"Document: {meta.title} ({meta.kind}) [{meta.id}]",
    ]
    if p.section:
        head.append(f"Section: {p.section}")
    if meta.url:
        head.append(f"URL: {meta.url}")
    page = ctx.document.page(p.start)
    if page:
        head.append(f"Page {page} of the PDF")
    head.append(f"Characters {p.start}–{p.end} of {len(ctx.document.text)}")
    before = ("…" if p.start - len(ctx.before) > 0 else "") + ctx.before
    after = ctx.after + ("…" if p.end + len(ctx.after) < len(ctx.document.text) else "")
    body = f"{before}>>> {p.text} <<<{after}"
    return "\n".join(head) + "\n\n" + body.strip() + "\n"


def support_text(results: list[SupportResult], titles: dict[str, str]) -> str:
    if not results:
        return "No passage in the index matches this claim."
    lines = []
    for i, r in enumerate(results, start=1):
        p = r.passage
        verdict = "supports" if r.score >= 0.5 else "related"
        lines.append(f"{i}. {r.score:.2f} {verdict}  {titles.get(p.doc_id, p.doc_id)} ({p.id})")
        if r.quote:
            lines.append(_wrap(f"“{r.quote}”", indent="     "))
    return "\n".join(lines)


def sources_text(sources: list[SourceSummary]) -> str:
    lines = []
    for s in sources:
        m = s.document.meta
        lines.append(f"{m.id}  [{m.kind}]  {m.title}")
        details = [x for x in (m.byline, m.date, m.url) if x]
        if m.current_to:
            details.append(f"current to {m.current_to}")
        if details:
            lines.append("    " + " · ".join(details))
        lines.append(
            f"    {s.passages} passage{'' if s.passages == 1 else 's'} · {m.file}"
            + (f" · license: {m.license}" if m.license else "")
        )
    return "\n".join(lines)


def index_report_text(report: IndexReport) -> str:
    parts = []
    for label, items in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
        ("unchanged", report.unchanged),
    ):
        if items:
            parts.append(f"{len(items)} {label}")
    summary = ", ".join(parts) or "nothing to index"
    noun = "passage" if report.passages == 1 else "passages"
    return f"Index: {summary}; {report.passages} {noun} ({report.seconds:.1f}s)."


def skipped_text(report: IndexReport) -> list[str]:
    """One warning line per corpus file that could not be indexed."""
    return [f"Warning: skipped {name}: {reason}" for name, reason in report.skipped]

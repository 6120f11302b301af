"""When the sources say that what was asked is not known: "the price formula was not
published", "the terms were not disclosed", "the cause remains unknown".

Such a sentence does not answer the question, but it is more than silence: the answerer says
that the sources do not give the detail and quotes the sentence that says so, cited, instead of
only saying that the sources do not answer. It is looked for only when the answerer would
otherwise abstain, so it never replaces an answer.

A sentence counts when one of its clauses says something was not made known, and the subject
of that clause names what the question asks for with a word of the question that the rest of
the passage does not use: "price" in "What was the price formula?" against "the price formula
was not published", but not "pipeline" in "When did the pipeline open?" against "the
pipeline's cost was not disclosed" in a passage about the pipeline. The wording is plain
English usage, written by hand, not fitted on any question set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from assistant.rerank import Candidate
from assistant.text import terms

_MADE_KNOWN = (
    r"(?:published|disclosed|made\s+public|revealed|released|announced|confirmed|specified|"
    r"made\s+available|known|given)"
)
# "was not published", "have never been disclosed", "has not yet been made public", "remains
# unknown", "were kept secret", "an undisclosed sum".
_SAYS_UNKNOWN = re.compile(
    rf"\b(?:(?:is|are|was|were|has|have|had|remains?|remained)\s+(?:not|never)\s+"
    rf"(?:yet\s+)?(?:been\s+)?(?:publicly\s+)?{_MADE_KNOWN}"
    r"|(?:remains?|remained|is|are|was|were)\s+(?:still\s+)?(?:unknown|undisclosed|unpublished|"
    r"secret|confidential|classified)"
    r"|(?:kept|remained)\s+(?:secret|confidential|classified)"
    r"|undisclosed|unpublished|unspecified)\b",
    re.I,
)
# Clauses end at these; a clause's subject is what comes before its "was not published"
# (or, for "undisclosed", the few words after it).
_CLAUSE_END = re.compile(r"[;:]|,\s+(?:and|but|while|although|though)\s+|\s+but\s+|\.(?=\s|$)")
_AFTER_WORDS = 3


def says_unknown(question: str, sentence: str, passage_text: str) -> bool:
    """Whether `sentence` says that what `question` asks for is not known or not public
    (`passage_text`, the sentence's passage, tells the question's asked-for words from its
    topic: a word the rest of the passage uses is topic)."""
    asked = set(terms(question))
    if not asked:
        return False
    rest = set(terms(passage_text.replace(sentence, " ")))
    for clause in _clauses(sentence):
        for match in _SAYS_UNKNOWN.finditer(clause):
            after = clause[match.end() :].split()[:_AFTER_WORDS]
            subject = set(terms(clause[: match.start()] + " " + " ".join(after)))
            if (subject & asked) - rest:
                return True
    return False


def _clauses(sentence: str) -> list[str]:
    out, start = [], 0
    for m in _CLAUSE_END.finditer(sentence):
        out.append(sentence[start : m.start()])
        start = m.end()
    out.append(sentence[start:])
    return [c for c in out if c.strip()]


def unknown_sentence(
    question: str, candidates: Sequence[Candidate], about: Callable[[Candidate], bool]
) -> Candidate | None:
    """The best-ranked candidate sentence that says what the question asks for is not known,
    in a passage `about` what the question is about (checked only for such a sentence)."""
    for cand in candidates:
        if says_unknown(question, cand.text, cand.passage.passage.text) and about(cand):
            return cand
    return None

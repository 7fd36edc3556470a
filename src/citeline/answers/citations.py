"""Citations the system verifies rather than trusts.

Each claim sentence of a draft answer is matched against every sentence (and pair of adjacent
sentences) of the passages the model read, by embedding similarity and by how many of the
claim's content words the span contains. The best span above the threshold becomes the
sentence's citation, with its exact offsets in the document; the model's own `[n]` markers only
break near-ties. A claim no span supports keeps no marker and is flagged.

A short reply that answers the question ("It's in zlib.h.") has too few words of its own to be
matched alone: it is matched as the question and the reply together, and cited only when the
span holds every word the reply itself brings (so "No." to "Is zlib Y2K-compliant?" never
borrows the support of "Yes. zlib doesn't handle dates."). A bare "Yes." or "No." opening an
answer stays only when the claim after it is cited to a passage that says the same word; a
claim's numbers must all be in its span; a span that ends in a question (a FAQ's heading) is
never cited.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt

from citeline.answers.passages import Passage
from citeline.answers.text import (
    content_words,
    marker_numbers,
    markers_before_stop,
    sentences,
    strip_markers,
    with_markers,
)

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]

SEMANTIC_WEIGHT = 0.5
MODEL_MARKER_BONUS = 0.05
LONGER_SPAN_MARGIN = 0.05
MIN_CLAIM_WORDS = 3
REPEAT_SIMILARITY = 0.9  # cosine of two claims' embeddings
REPEAT_WORDS = 0.8  # share of a claim's content words an earlier claim already has
_BARE_REPLIES = {"yes", "no"}  # words a reply brings that no passage need contain
# Words that turn a reply around; a reply's must all be in the span it cites.
_QUALIFIER = re.compile(r"\b(?:not|never|no|none|only|before|after|without|except|nor)\b|n't\b")
# A question marked "Q:" runs to its question mark, a blank line or an "A:" line.
_QUESTION_MARK = re.compile(r"^[ \t]*(?:Q|Question)[ \t]*:", re.MULTILINE)
_QUESTION_END = re.compile(r"\?(?=\s|$)|\n[ \t]*\n|\n[ \t]*(?:A|Answer)[ \t]*:")
_OPENING_REPLY = re.compile(r"(?:(?:A|Answer)[ \t]*:[ \t]*)?(yes|no)\b(?!-)", re.IGNORECASE)
# A negated claim is cited only by a span that negates something too: content words alone
# would let "X is free" support "X is not free".
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|cannot|neither|without)\b|n't\b")
# A number in a claim must be in the span that cites it: "110 metres tall" is not supported by
# "41 metres tall", however similar the two read. A list item's own number is not a claim's.
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_RULE_WORD = re.compile(r"^([=\-~*_#])\1{2,}$")  # "-----" between a title and the next
_LIST_NUMBER = re.compile(r"^\s*\d+[.)]\s+")
_SOURCES = r"(?:passages?|context|documents?|sources?|texts?|excerpts?|documentation)"
_FRAME = re.compile(
    rf"^(?:(?:according to|as (?:stated|described|explained|mentioned) in) (?:the )?{_SOURCES}"
    rf"(?: \[\d+\])*,\s*|(?:the |these |this )?{_SOURCES}(?: \[\d+\])* (?:explains?|says?|"
    r"states?|mentions?|notes?|describes?|shows?|indicates?|suggests?|confirms?) that\s+)",
    re.IGNORECASE,
)
_META = re.compile(
    r"^(?:the |these |this |none of the |no )?(?:provided |given )?(?:passages?|context|excerpts?)"
    r"\b|^(?:i|we) (?:could|can)(?:not|n't) ",
    re.IGNORECASE,
)
_NOT_A_CLAIM = re.compile(
    r"^(i hope|let me know|feel free|here (is|are)|in summary|to summari[sz]e|"
    r"based on the (passages|context|information)[^.]*[:,]?$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Span:
    passage: Passage
    start: int  # offsets within the passage text
    end: int

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


@dataclass
class Citation:
    marker: int
    span: Span
    support: float

    def as_json(self) -> dict[str, Any]:
        passage = self.span.passage
        return {
            "marker": self.marker,
            "passage": passage.number,
            "chunk_id": str(passage.chunk_id),
            "document_id": str(passage.document_id),
            "title": passage.title,
            "source": passage.source,
            "page": passage.page,
            "start": passage.start + self.span.start,
            "end": passage.start + self.span.end,
            "text": self.span.text,
            "support": round(self.support, 4),
        }


@dataclass
class SentenceSupport:
    text: str
    start: int  # offsets in the verified answer
    end: int
    claim: bool
    markers: list[int] = field(default_factory=list)
    support: float | None = None
    model_markers: list[int] = field(default_factory=list)
    # Why the answer leaves it out: unsupported, repeated, meta, introduction.
    dropped: str | None = None

    @property
    def unsupported(self) -> bool:
        return self.claim and not self.markers

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "claim": self.claim,
            "markers": self.markers,
            "support": None if self.support is None else round(self.support, 4),
            "unsupported": self.unsupported,
            "model_markers": self.model_markers,
            "dropped": self.dropped,
        }


@dataclass
class Verified:
    answer: str
    citations: list[Citation]
    sentences: list[SentenceSupport]  # those in `answer`, with their offsets there
    dropped: list[SentenceSupport] = field(default_factory=list)

    @property
    def claims(self) -> int:
        """Claims drafted, counting the unsupported ones the answer leaves out."""
        return sum(s.claim for s in self.sentences) + sum(
            s.dropped == "unsupported" for s in self.dropped
        )

    @property
    def coverage(self) -> float | None:
        """Share of the drafted claims that a span supports."""
        claims = self.claims
        return None if claims == 0 else sum(bool(s.markers) for s in self.sentences) / claims


def is_claim(sentence: str, *, marked: bool = False) -> bool:
    """Whether a sentence states something to cite: three content words, or any content word
    in a sentence the model itself marked with a passage ("It was built in 1847 [1].")."""
    text = sentence.strip()
    if text.endswith(":") or _NOT_A_CLAIM.match(text):
        return False
    return len(content_words(text)) >= (1 if marked else MIN_CLAIM_WORDS)


def negates(text: str) -> bool:
    return _NEGATION.search(text.lower()) is not None


def numbers(text: str) -> set[str]:
    """The numbers written in digits in `text` ("1,000" as "1000"), a leading list number
    left out."""
    return {n.replace(",", "") for n in _NUMBER.findall(_LIST_NUMBER.sub("", text, count=1))}


def opening_reply(text: str) -> str | None:
    """ "yes" or "no" when a text opens with that reply, after the question it answers if it
    holds one ("28. Can I access data randomly? No, not without some preparation.")."""
    match = _OPENING_REPLY.match(text.rsplit("?", 1)[-1].lstrip())
    return match[1].lower() if match else None


def candidate_spans(passages: Sequence[Passage]) -> list[Span]:
    """Every sentence and pair of adjacent sentences, except those that end in a question: a
    question (a FAQ's heading) repeats a claim's words without stating anything. A question
    marked "Q:" is one to its end, whatever its sentences say ("Q: The default build of
    liblzma is too big. How can I make it smaller?"), and no span starts inside it. The
    passage's own heading is not a span either, nor where one starts: it names what the
    passage is about ("When building Valgrind, 'make' fails with this:") and states nothing
    about it."""
    spans: list[Span] = []
    for passage in passages:
        text = passage.text
        asked = _marked_questions(text)
        titled = heading_end(passage)
        if titled:
            asked.append((len(text) - len(text.lstrip()), titled))
        parts = sentences(text)
        for i, part in enumerate(parts):
            if any(start < part.start < stop for start, stop in asked):
                continue  # the second half of a heading is not where a quote starts
            ends = [part.end] if i + 1 == len(parts) else [part.end, parts[i + 1].end]
            spans.extend(
                Span(passage, part.start, end)
                for end in ends
                if end > titled and not _asks(text, end, asked)
            )
    return spans


def heading_end(passage: Passage) -> int:
    """Where the headings the passage opens with end (a chunk that starts a section may open
    with its chapter's title too, a rule between them); 0 when it opens with none."""
    words = [(m[0], m.end()) for m in islice(re.finditer(r"\S+", passage.text), 400)]
    at = end = 0
    for heading in passage.heading_path:
        wanted = heading.split()
        start = at
        while start < len(words) and _RULE_WORD.match(words[start][0]):
            start += 1
        if wanted and [w for w, _ in words[start : start + len(wanted)]] == wanted:
            at = start + len(wanted)
            end = words[at - 1][1]
    return end


def _asks(text: str, end: int, asked: Sequence[tuple[int, int]]) -> bool:
    if any(start < end <= stop for start, stop in asked):
        return True
    return text[:end].rstrip().rstrip("\"')]*_`").endswith("?")


def _marked_questions(text: str) -> list[tuple[int, int]]:
    """Where each "Q:" question runs: to its question mark, or failing one to the blank line
    or the "A:" line after it."""
    ranges = []
    for match in _QUESTION_MARK.finditer(text):
        end = _QUESTION_END.search(text, match.end())
        if end is None:
            ranges.append((match.start(), len(text)))
        else:
            ranges.append((match.start(), end.end() if end[0] == "?" else end.start()))
    return ranges


def verify(
    draft: str,
    passages: Sequence[Passage],
    embed: Embed,
    threshold: float,
    index: SpanIndex | None = None,
    question: str | None = None,
) -> Verified:
    """The draft as far as the passages support it: each claim cites its best span; a claim
    no span supports, a claim that repeats an earlier one, and talk about "the passages"
    are left out (and listed in `dropped`)."""
    verifier = Verifier(index or SpanIndex(passages, embed), threshold, question)
    draft = markers_before_stop(draft)
    previous = 0
    for segment in sentences(draft):
        verifier.add(segment.text, draft[previous : segment.start])
        previous = segment.end
    return verifier.finish()


class SpanIndex:
    """The candidate spans of the passages a model read, embedded once.

    `in_background` embeds them on a thread while the caller goes on (the model reads its
    prompt meanwhile); the first use of `vectors` waits for them, and raises what failed."""

    def __init__(
        self, passages: Sequence[Passage], embed: Embed, *, in_background: bool = False
    ) -> None:
        self.embed = embed
        self.spans = candidate_spans(passages)
        self.words = [content_words(span.text) for span in self.spans]
        self.negated = [negates(span.text) for span in self.spans]
        self.numbers = [numbers(span.text) for span in self.spans]
        self.replies = [opening_reply(span.text) for span in self.spans]
        self._vectors: npt.NDArray[np.float32] | None = None
        self._failure: Exception | None = None
        self._ready = threading.Event()
        if in_background and self.spans:
            threading.Thread(target=self._embed, name="citeline-span-index", daemon=True).start()
            return
        if self.spans:
            self._vectors = normalised(embed([s.text for s in self.spans]))
        self._ready.set()

    @property
    def vectors(self) -> npt.NDArray[np.float32] | None:
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self._vectors

    def _embed(self) -> None:
        try:
            self._vectors = normalised(self.embed([s.text for s in self.spans]))
        except Exception as exc:  # noqa: BLE001 - raised again to whoever uses the index
            self._failure = exc
        finally:
            self._ready.set()

    def vector(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = normalised(self.embed([text]))[0]
        return vector

    def best(
        self,
        claim: str,
        vector: npt.NDArray[np.float32],
        hinted: set[int],
        *,
        holding: set[str] | None = None,
        negated: bool = False,
        digits: set[str] | None = None,
    ) -> tuple[Span, float] | None:
        """The span that best supports `claim`, and how well (0-1); with `holding`, only
        among the spans that contain all those words; `negated`, only among the spans that
        negate something; always among those that hold every number of `digits` (by default,
        the numbers `claim` holds) and that do not open with the other reply ("No, not
        without some preparation." never supports "Yes, you can access it randomly")."""
        vectors = self.vectors
        if vectors is None:
            return None
        semantic = vectors @ vector
        words = content_words(claim)
        digits = numbers(claim) if digits is None else digits
        reply = opening_reply(claim)
        best: tuple[int, float] | None = None
        for column, span in enumerate(self.spans):
            if holding is not None and not holding <= self.words[column]:
                continue
            if not digits <= self.numbers[column]:
                continue
            if reply and self.replies[column] not in (None, reply):
                continue
            if negated and not self.negated[column]:
                continue
            score = self._score(column, words, float(semantic[column]), hinted)
            if best is None:
                best = (column, score)
                continue
            # A longer span must earn its length: prefer the single sentence on a near-tie.
            longer = len(span.text) > len(self.spans[best[0]].text)
            if score > best[1] + (LONGER_SPAN_MARGIN if longer else 0.0):
                best = (column, score)
        return None if best is None else (self.spans[best[0]], min(best[1], 1.0))

    def narrower(
        self,
        span: Span,
        claim: str,
        vector: npt.NDArray[np.float32],
        hinted: set[int],
        holding: set[str],
        digits: set[str],
    ) -> tuple[Span, float] | None:
        """The best single sentence inside `span` (a pair) that holds all of `holding` and
        every number of `digits`."""
        vectors = self.vectors
        assert vectors is not None
        words = content_words(claim)
        found: tuple[Span, float] | None = None
        for column, inner in enumerate(self.spans):
            if (
                inner.passage is span.passage
                and span.start <= inner.start
                and inner.end <= span.end
                and len(inner.text) < len(span.text)
                and holding <= self.words[column]
                and digits <= self.numbers[column]
            ):
                semantic = float(vectors[column] @ vector)
                score = min(self._score(column, words, semantic, hinted), 1.0)
                if found is None or score > found[1]:
                    found = (inner, score)
        return found

    def _score(self, column: int, words: set[str], semantic: float, hinted: set[int]) -> float:
        lexical = len(words & self.words[column]) / max(1, len(words))
        score = SEMANTIC_WEIGHT * semantic + (1 - SEMANTIC_WEIGHT) * lexical
        if self.spans[column].passage.number in hinted:
            score += MODEL_MARKER_BONUS
        return score


class Verifier:
    """Checks a draft one sentence at a time, as it is written, and builds the answer from
    the sentences it keeps. An introduction ("Run this:") waits until what it introduces is
    kept."""

    def __init__(self, index: SpanIndex, threshold: float, question: str | None = None) -> None:
        self.index = index
        self.threshold = threshold
        self.question = question
        self.citations: dict[tuple[int, int, int], Citation] = {}
        self.sentences: list[SentenceSupport] = []
        self.dropped: list[SentenceSupport] = []
        self.answer = ""
        self._claims: list[tuple[set[str], npt.NDArray[np.float32]]] = []
        self._waiting: list[tuple[SentenceSupport, str]] = []
        self._gap = ""
        # A bare "Yes." or "No." opening the answer, held until the claim after it is checked.
        self._reply: tuple[SentenceSupport, str, str] | None = None

    def add(self, sentence: str, gap: str = " ") -> list[SentenceSupport]:
        """Check one drafted sentence (`gap` is the draft's text before it); the sentences
        this adds to the answer, in order, with their citation markers."""
        self._gap += gap
        text = _unframed(strip_markers(sentence).strip())
        if not text:
            return []
        markers = marker_numbers(sentence)
        support = SentenceSupport(
            text=text,
            start=0,
            end=0,
            claim=is_claim(text, marked=bool(markers)),
            model_markers=markers,
        )
        if _META.match(text):
            support.dropped = "meta"
        elif support.claim:
            self._check(support, set(support.model_markers))
        elif self.question and len(self.sentences) < 2 and not support.text.endswith(":"):
            self._check_reply(support)  # the opening of the answer, where a reply stands
        reply = _bare_reply(support)
        if reply and not self.sentences and self._reply is None and not self._waiting:
            self._reply = (support, self._gap, reply)
            self._gap = ""
            return []
        if self._reply is not None:
            self._settle_reply(support)
        if support.dropped:
            self.dropped.append(support)
            return []
        self._waiting.append((support, self._gap))
        self._gap = ""
        if support.text.endswith(":") and not support.claim:
            return []
        released = [self._append(waiting, before) for waiting, before in self._waiting]
        self._waiting = []
        return released

    def finish(self) -> Verified:
        if self._reply is not None:
            self._reply[0].dropped = "unsupported"  # no checked claim came after it
            self.dropped.append(self._reply[0])
            self._reply = None
        for support, _ in self._waiting:
            support.dropped = "introduction"  # what it introduced was left out
            self.dropped.append(support)
        self._waiting = []
        return Verified(self.answer, list(self.citations.values()), self.sentences, self.dropped)

    def _settle_reply(self, after: SentenceSupport) -> None:
        """Keep the held "Yes."/"No." only when the claim after it is cited to a span that
        says the same word, in it or in the sentence before it: "Yes. Please read the
        license in zlib.h." is not kept when the passage reads "No. Please read the license"."""
        assert self._reply is not None
        reply, gap, word = self._reply
        self._reply = None
        cited = [c for c in self.citations.values() if c.marker in after.markers]
        saying = _saying(cited[0].span, word) if cited and not after.dropped else None
        if saying is None:
            reply.dropped = "unsupported"
            self.dropped.append(reply)
            return
        if saying != cited[0].span:
            self._repoint(cited[0], saying)
        self._waiting.append((reply, gap))

    def _repoint(self, citation: Citation, span: Span) -> None:
        """Move a citation to the same words elsewhere in its passage."""
        key = (span.passage.number, span.start, span.end)
        if key in self.citations:
            return  # that occurrence is cited already: both say the same words
        self.citations = {(key if c is citation else k): c for k, c in self.citations.items()}
        citation.span = span

    def _check(self, support: SentenceSupport, hinted: set[int]) -> None:
        vector = self.index.vector(support.text)
        choice = self.index.best(support.text, vector, hinted, negated=negates(support.text))
        if choice is None:
            support.dropped = "unsupported"
            return
        span, score = choice
        support.support = score
        words = content_words(support.text)
        if score < self.threshold:
            support.dropped = "unsupported"
        elif any(_repeats(words, vector, earlier) for earlier in self._claims):
            support.dropped = "repeated"
        else:
            self._cite(support, span, score, words, vector)

    def _cite(
        self,
        support: SentenceSupport,
        span: Span,
        score: float,
        words: set[str],
        vector: npt.NDArray[np.float32],
    ) -> None:
        key = (span.passage.number, span.start, span.end)
        citation = self.citations.get(key)
        if citation is None:
            citation = self.citations[key] = Citation(len(self.citations) + 1, span, score)
        citation.support = max(citation.support, score)
        support.markers = [citation.marker]
        self._claims.append((words, vector))

    def _check_reply(self, support: SentenceSupport) -> None:
        """Cite a short reply, read with the question it answers, when a span supports both,
        is about the question and holds every word the reply brings (and every negation or
        qualifier it adds); otherwise it stays an uncited non-claim."""
        own = {w for w in content_words(support.text) if len(w) > 1} - _BARE_REPLIES
        complete = support.text.rstrip("\"')]*_`").endswith((".", "!", "?"))
        if not own or not complete or _NOT_A_CLAIM.match(support.text):
            return
        assert self.question is not None
        text = f"{self.question.strip()} {support.text}"
        vector = self.index.vector(text)
        hinted = set(support.model_markers)
        digits = numbers(support.text)  # the reply's: the question's may be worded otherwise
        choice = self.index.best(text, vector, hinted, holding=own, digits=digits)
        if choice is None or choice[1] < self.threshold:
            return
        span, score = choice
        asked = {w for w in content_words(self.question) if len(w) > 1}
        if 2 * len(asked & content_words(span.text)) <= len(asked):
            return  # supports the reply, but is about something else than the question
        # The answer, not the question's heading before it; the support stays the pair's
        # (the sentence alone says less than the question read with it).
        inner = self.index.narrower(span, text, vector, hinted, own, digits)
        if inner is not None:
            span = inner[0]
        qualifiers = set(_QUALIFIER.findall(support.text.lower()))
        if not qualifiers <= set(_QUALIFIER.findall(span.text.lower())):
            return  # "Not Maren Tolvik." against "built by Maren Tolvik"
        support.claim = True
        support.support = score
        words = content_words(text)
        if any(_repeats(words, vector, earlier) for earlier in self._claims):
            support.dropped = "repeated"
            return
        self._cite(support, span, score, words, vector)

    def _append(self, support: SentenceSupport, gap: str) -> SentenceSupport:
        gap = ("\n" * min(2, gap.count("\n")) or " ") if self.answer else ""
        rendered = with_markers(support.text, support.markers)
        support.start = len(self.answer) + len(gap)
        support.end = support.start + len(rendered)
        support.text = rendered
        self.answer += gap + rendered
        self.sentences.append(support)
        return support


def _bare_reply(support: SentenceSupport) -> str | None:
    """ "yes" or "no" for a sentence that is only that word, uncited."""
    word = support.text.strip().rstrip(".!").lower()
    return word if word in _BARE_REPLIES and not support.markers else None


def _saying(span: Span, word: str) -> Span | None:
    """The span, or the first other occurrence of its words in its passage (an FAQ may
    repeat "Please read the license" under two questions), that says the word."""
    if _says(span, word):
        return span
    text, wanted = span.passage.text, span.text
    at = text.find(wanted)
    while at != -1:
        other = Span(span.passage, at, at + len(wanted))
        if at != span.start and _says(other, word):
            return other
        at = text.find(wanted, at + 1)
    return None


def _says(span: Span, word: str) -> bool:
    text = span.passage.text
    before = [part for part in sentences(text) if part.end <= span.start]
    start = before[-1].start if before else span.start
    return re.search(rf"\b{word}\b", text[start : span.end], re.IGNORECASE) is not None


def _unframed(text: str) -> str:
    """A claim without the "The passages say that" around it."""
    match = _FRAME.match(text)
    if match is None or len(text) == match.end():
        return text
    rest = text[match.end() :]
    return rest[0].upper() + rest[1:]


def _repeats(
    words: set[str],
    vector: npt.NDArray[np.float32],
    earlier: tuple[set[str], npt.NDArray[np.float32]],
) -> bool:
    if float(vector @ earlier[1]) >= REPEAT_SIMILARITY:
        return True
    return bool(words) and len(words & earlier[0]) / len(words) >= REPEAT_WORDS


def normalised(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Each row scaled to unit length, so a dot product is a cosine."""
    vectors = vectors.astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = vectors / np.maximum(norms, 1e-9)
    return out

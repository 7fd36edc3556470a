"""What every format shares: clean text, citation runs, reference lines, labels, errors."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC
from urllib.parse import urlsplit

from citeline.errors import CitelineError
from citeline.reports.document import Paragraph, Reference, ReportDocument

SUMMARY = "Summary"
REFERENCES = "References"
# Fonts every format names: DejaVu Sans covers Latin, Greek and Cyrillic; WenQuanYi Micro Hei
# covers Han (Debian: fonts-dejavu-core, fonts-wqy-microhei; scripts/setup.sh installs them).
LATIN_FONT = "DejaVu Sans"
CJK_FONT = "WenQuanYi Micro Hei"

# Control characters (other than whitespace, which `clean` collapses), lone surrogates and
# the two non-characters: illegal in XML, meaningless in a report, dangerous in a terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# A sentence's markers go before its closing punctuation: "is 41 metres tall [3]."
_STOPS = ".!?;\u3002\uff01\uff1f\uff1b\u037e"  # and the CJK full stop, full-width !?; and Greek ;


class RenderError(CitelineError):
    """A renderer failed on a valid report: names the format and the cause (a 500, not the
    caller's fault; the cause is in `__cause__`)."""

    title = "Export failed"

    def __init__(self, fmt: str, cause: str) -> None:
        super().__init__(f"{fmt} export failed: {cause}")
        self.fmt = fmt


def clean(text: str) -> str:
    """One line of printable text: whitespace runs (newlines included) become one space, so
    user and model text can never open a block of its own in any format."""
    return " ".join(_UNPRINTABLE.sub("", text).split())


def paragraph_runs(paragraph: Paragraph) -> list[str | int]:
    """A paragraph as clean text pieces and citation numbers, in reading order.

    Markers go before the sentence's closing punctuation, separated by a space except after
    a wide (CJK) character; sentences are joined by a space except after a wide character.
    """
    runs: list[str | int] = []
    tail = ""  # last character written
    for sentence in paragraph.sentences:
        text = clean(sentence.text)
        if not text:
            continue
        gap = "" if not tail or _wide(tail) else " "
        body, stop = text, ""
        if sentence.citations and text[-1] in _STOPS and len(text) > 1:
            body, stop = text[:-1].rstrip(), text[-1]
        if sentence.citations:
            runs.append(gap + body + ("" if _wide(body[-1]) else " "))
            runs.extend(sentence.citations)
            if stop:
                runs.append(stop)
        else:
            runs.append(gap + text)
        tail = text[-1]
    return _merge(runs)


def safe_url(source: str) -> str | None:
    """The source as a link target when it is a plain http(s) URL; None for anything else."""
    url = source.strip()
    if not url or any(c.isspace() or c in '<>"`\\' for c in url) or _UNPRINTABLE.search(url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def page_label(reference: Reference) -> str:
    """The page, as in "p. 3"; empty when the document has no pages."""
    return f"p. {reference.page}" if reference.page is not None else ""


def metadata(document: ReportDocument) -> list[tuple[str, str]]:
    """The title page's facts, labelled, as clean text."""
    generated = document.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [("Generated", generated), ("Model", clean(document.model))]
    if document.knowledge_bases:
        names = ", ".join(clean(name) for name in document.knowledge_bases)
        rows.append(
            ("Knowledge bases" if len(document.knowledge_bases) > 1 else "Knowledge base", names)
        )
    return rows


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _merge(runs: list[str | int]) -> list[str | int]:
    out: list[str | int] = []
    for run in runs:
        if isinstance(run, str) and out and isinstance(out[-1], str):
            out[-1] += run
        else:
            out.append(run)
    return out

"""PDF: WeasyPrint lays out the HTML export with its print stylesheet (a title page, page
numbers, the References on their own pages). Each `<a href="#ref-k">` becomes a link
annotation to the named destination `ref-k`; fonts are embedded as subsets.

WeasyPrint may fetch nothing: the HTML names no resource, and the fonts come from
fontconfig. A fetch would mean something slipped into the markup, so it stops the render.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from weasyprint import HTML
from weasyprint.text.ffi import ffi, fontconfig
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from citeline.errors import ConfigurationError
from citeline.reports.document import ReportDocument
from citeline.reports.export.html import to_html
from citeline.reports.export.text import CJK_FONT, LATIN_FONT, RenderError

FONTS = (LATIN_FONT, CJK_FONT)


class RefuseFetching(URLFetcher):  # type: ignore[misc]  # WeasyPrint is untyped
    """A URL fetcher that fetches nothing and makes any attempt stop the render."""

    def __init__(self) -> None:
        super().__init__(fail_on_errors=True)  # read by WeasyPrint: a fetch error is fatal

    def fetch(self, url: str, headers: Any = None) -> Any:
        raise PermissionError(f"report exports fetch nothing; refused {url[:200]!r}")


def render_pdf(document: ReportDocument) -> bytes:
    return html_to_pdf(to_html(document))


def html_to_pdf(html: str) -> bytes:
    """Lay out HTML that Citeline wrote; fails if the fonts are missing or it fetches."""
    require_fonts()
    try:
        pdf = HTML(string=html, url_fetcher=RefuseFetching()).write_pdf()
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        raise RenderError("pdf", str(cause)) from exc
    if not isinstance(pdf, bytes):
        raise RenderError("pdf", f"WeasyPrint returned {type(pdf).__name__}, not bytes")
    return pdf


def require_fonts() -> None:
    """Refuse to render tofu: every font the stylesheet names must be installed."""
    missing = _missing_once()
    if missing:
        raise ConfigurationError(
            f"pdf export needs the font families {', '.join(missing)}, which fontconfig does "
            "not find; install fonts-dejavu-core and fonts-wqy-microhei (scripts/setup.sh "
            "does) or their equivalents, then restart"
        )


@cache
def _missing_once() -> tuple[str, ...]:
    # Pango reads fontconfig's configuration once per process, so one answer per process.
    return tuple(missing_fonts(FONTS))


def missing_fonts(families: Iterable[str]) -> list[str]:
    """The families fontconfig would substitute with another font."""
    config = fontconfig.FcInitLoadConfigAndFonts()
    try:
        return [f for f in families if f.casefold() not in _matched_families(config, f)]
    finally:
        fontconfig.FcConfigDestroy(config)


def _matched_families(config: Any, family: str) -> set[str]:
    pattern = fontconfig.FcPatternCreate()
    try:
        fontconfig.FcPatternAddString(pattern, b"family", family.encode())
        fontconfig.FcConfigSubstitute(config, pattern, fontconfig.FcMatchPattern)
        fontconfig.FcDefaultSubstitute(pattern)
        match = fontconfig.FcFontMatch(config, pattern, ffi.new("FcResult *"))
    finally:
        fontconfig.FcPatternDestroy(pattern)
    if match == ffi.NULL:
        return set()
    names: set[str] = set()
    value = ffi.new("FcChar8 **")
    try:
        # A font has several family names (WenQuanYi's include its Chinese name).
        index = 0
        while fontconfig.FcPatternGetString(match, b"family", index, value) == 0:  # FcResultMatch
            names.add(ffi.string(value[0]).decode().casefold())
            index += 1
    finally:
        fontconfig.FcPatternDestroy(match)
    return names

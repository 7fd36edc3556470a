"""HTML: the main content's headings, paragraphs, list items, code and tables, without
navigation, headers, footers, scripts and similar boilerplate."""

from __future__ import annotations

import lxml.etree
import lxml.html

from citeline.knowledge.parsing.types import BlockKind, InvalidDocument, ParsedDocument, TextBuilder

_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
)
_DROP_CLASSES = (
    "navheader",
    "navfooter",
    "toc",
    "breadcrumb",
    "breadcrumbs",
    "sidebar",
    "menu",
    "nav",
    "skip",
    "headerlink",
)
# Permalink anchors that documentation generators put after each heading.
_PERMALINKS = ("\u00b6", "#", "\u00a7", "\U0001f517")
_BLOCKS = {
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "li",
    "dt",
    "dd",
    "pre",
    "blockquote",
    "caption",
    "table",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def parse_html(data: bytes) -> ParsedDocument:
    if not data.strip():
        raise InvalidDocument("the file is empty")
    try:
        root = lxml.html.document_fromstring(data)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise InvalidDocument(f"not readable as HTML: {exc}") from None
    title_element = root.find(".//title")
    title = " ".join(title_element.text_content().split()) if title_element is not None else None
    for element in list(root.iter(*_DROP_TAGS)):
        element.drop_tree()
    for element in root.xpath("//*[@role='navigation' or @role='banner' or @role='contentinfo']"):
        element.drop_tree()
    for name in _DROP_CLASSES:
        for element in root.xpath(
            f"//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]"
        ):
            element.drop_tree()
    for element in root.xpath("//a[starts-with(@href, '#')]"):
        if element.text_content().strip() in _PERMALINKS:
            element.drop_tree()
    main = next(
        (
            found
            for path in (".//main", ".//article", ".//body")
            if (found := root.find(path)) is not None
        ),
        root,
    )
    builder = TextBuilder()
    for element in main.iter(*_BLOCKS):
        if element.tag != "table" and any(d.tag in _BLOCKS for d in element.iterdescendants()):
            continue  # only innermost blocks; their text is emitted once
        if any(a.tag == "table" for a in element.iterancestors()):
            continue
        tag = element.tag
        if tag == "table":
            rows = [
                " | ".join(" ".join(cell.text_content().split()) for cell in row.iter("td", "th"))
                for row in element.iter("tr")
            ]
            builder.add(BlockKind.table, "\n".join(r for r in rows if r.strip()))
        elif tag == "pre":
            builder.add(BlockKind.code, element.text_content().strip("\n"))
        elif tag in _HEADINGS:
            builder.add(
                BlockKind.heading, " ".join(element.text_content().split()), level=int(tag[1])
            )
        elif tag == "li":
            builder.add(BlockKind.list_item, " ".join(element.text_content().split()))
        else:
            builder.add(BlockKind.paragraph, " ".join(element.text_content().split()))
    headings = [b for b in builder.blocks if b.kind is BlockKind.heading]
    if title is None and headings:
        title = "".join(builder.parts)[headings[0].start : headings[0].end]
    return builder.build(title=title)

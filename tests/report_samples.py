"""Cited reports the export tests and benchmark build: English, Greek, Chinese and hostile
text, numbered the way `citeline.reports.document.validate` requires."""

# ruff: noqa: RUF001  (Greek letters and full-width CJK punctuation are the point here)

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from citeline.reports.document import Paragraph, Reference, ReportDocument, Section, Sentence

GENERATED = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)

ENGLISH = [
    "Debian releases are named after characters from the Toy Story films.",
    "The stable distribution receives security updates for about three years after release.",
    "Packages move from unstable to testing once they have aged without release-critical bugs.",
    "The archive is split into main, contrib and non-free areas by licence.",
    "Mirrors synchronise with the primary archive several times a day.",
    "APT resolves dependencies and downloads packages from the configured sources.",
    "The Debian Free Software Guidelines define which licences the main archive accepts.",
    "Point releases fold accumulated security and stability fixes into installation media.",
    "A package's maintainer answers its bug reports in the Debian bug tracking system.",
    "Backports offer newer versions of selected packages for the stable distribution.",
]
GREEK = [
    "Η σταθερή διανομή λαμβάνει ενημερώσεις ασφαλείας για περίπου τρία χρόνια.",
    "Τα πακέτα περνούν από την ασταθή στη δοκιμαστική διανομή όταν δεν έχουν κρίσιμα σφάλματα.",
    "Οι καθρέφτες συγχρονίζονται με το κύριο αρχείο αρκετές φορές την ημέρα.",
    "Ο διαχειριστής κάθε πακέτου απαντά στις αναφορές σφαλμάτων του.",
    "Το APT επιλύει τις εξαρτήσεις και κατεβάζει πακέτα από τις ρυθμισμένες πηγές.",
]
CHINESE = [
    "稳定版发布后大约三年内都会收到安全更新。",
    "软件包在没有严重缺陷的情况下，会从不稳定版进入测试版。",
    "镜像站点每天与主仓库同步数次。",
    "每个软件包的维护者负责答复其缺陷报告（包括安全问题）。",
    "APT 会解析依赖关系，并从配置的软件源下载软件包：“main”区只收自由软件。",
]
HOSTILE = [
    "<script>alert('x')</script> closes the <b>tag</b> & says &amp; &lt;.",
    "See [this](javascript:alert(1)) and ![img](http://127.0.0.1:9/x.png) now.",
    "# Not a heading",
    "1. not a list, 12) nor this",
    "> not a quote | not | a table ~~not struck~~ *not em* _nor this_ `nor code`",
    "Control\x00 chars\x07 and\x1b[31m escapes\x0c vanish\ufffe.",
    '<img src="file:///etc/passwd"> <a href="http://example.org">x</a> \\[1\\] $x$',
    "---",
]


def reference(number: int, title: str, source: str, quote: str) -> Reference:
    return Reference(
        number=number,
        document_title=title,
        source=source,
        page=number % 7 + 1 if number % 3 else None,
        start=100 * number,
        end=100 * number + len(quote),
        quote=quote,
        document_id=uuid.UUID(int=number),
        chunk_id=uuid.UUID(int=1000 + number),
    )


def report(
    sections: list[tuple[str, list[list[str]]]],
    sources: list[tuple[str, str, str]],
    *,
    title: str,
    language: str | None,
    summary: list[list[str]] | None = None,
    per_sentence: int = 1,
) -> ReportDocument:
    """Cite the sources round-robin, `per_sentence` at a time, numbered by first citation."""
    order = itertools.cycle(range(len(sources)))
    numbers: dict[int, int] = {}  # index into `sources` -> reference number

    def cite(text: str) -> Sentence:
        cited: list[int] = []
        for _ in range(per_sentence):
            index = next(order)
            number = numbers.setdefault(index, len(numbers) + 1)
            if number not in cited:
                cited.append(number)
        return Sentence(text, tuple(cited))

    def paragraphs(texts: list[list[str]]) -> tuple[Paragraph, ...]:
        return tuple(Paragraph(tuple(cite(t) for t in sentences)) for sentences in texts)

    summary_part = paragraphs(summary or [])
    section_parts = tuple(Section(name, paragraphs(texts)) for name, texts in sections)
    by_number = sorted(numbers.items(), key=lambda item: item[1])
    references = tuple(reference(number, *sources[index]) for index, number in by_number)
    return ReportDocument(
        title=title,
        summary=summary_part,
        sections=section_parts,
        references=references,
        language=language,
        generated_at=GENERATED,
        model="qwen2.5-coder-1.5b-instruct-q4_k_m",
        knowledge_bases=("debian-faq",),
    )


def english_report(sections: int = 8, sources: int = 30) -> ReportDocument:
    """Eight A4 pages in the PDF at 8 sections of four paragraphs of five sentences."""
    cycle = itertools.cycle(ENGLISH)
    texts = [
        (
            f"Section {s + 1}: releases and archive",
            [[next(cycle) for _ in range(5)] for _ in range(4)],
        )
        for s in range(sections)
    ]
    refs = [
        (f"The Debian FAQ, chapter {i + 1}", f"debian-faq/ch-{i + 1}.html", ENGLISH[i % 10])
        for i in range(sources)
    ]
    summary = [[ENGLISH[0], ENGLISH[1], ENGLISH[2]]]
    return report(
        texts, refs, title="Debian releases and the archive", language="en",
        summary=summary, per_sentence=2,
    )  # fmt: skip


def greek_report() -> ReportDocument:
    refs = [
        (f"Συχνές ερωτήσεις Debian, κεφάλαιο {i + 1}", f"faq-el-{i + 1}.txt", GREEK[i])
        for i in range(5)
    ]
    sections = [("Διανομές και αρχείο", [GREEK[:3], GREEK[3:]]), ("Ενημερώσεις", [GREEK[1:4]])]
    return report(
        sections, refs, title="Εκδόσεις του Debian: σύνοψη", language="el", summary=[GREEK[:2]]
    )


def chinese_report() -> ReportDocument:
    refs = [
        (f"Debian 常见问题 第{i + 1}章", f"https://www.debian.org/doc/faq-zh/{i + 1}", CHINESE[i])
        for i in range(5)
    ]
    sections = [("发行版与仓库", [CHINESE[:3], CHINESE[3:]]), ("更新", [CHINESE[1:4]])]
    return report(sections, refs, title="Debian 发行版概述", language="zh", summary=[CHINESE[:2]])


def hostile_report() -> ReportDocument:
    """Hostile strings everywhere report text goes: titles, sentences, sources, quotes."""
    refs = [(h, h, h) for h in HOSTILE] + [("JS source", "javascript:alert(1)", "q")]
    sections = [(h, [[h, "Plain sentence."]]) for h in HOSTILE]
    return report(
        sections, refs, title=HOSTILE[0], language="en", summary=[[HOSTILE[1]]], per_sentence=1
    )

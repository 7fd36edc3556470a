"""What each export format costs for one cited report of about eight A4 pages: render time
(median of warm runs, plus the first, cold run) and output size, each also as a ratio to
the Markdown render of the same report in the same run.

    .venv/bin/python -m benchmarks.report_exports [--sections 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from pypdf import PdfReader
from tests.report_samples import english_report

from citeline.reports.export import ExportFormat, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, default=8, help="8 gives eight A4 pages")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    document = english_report(sections=options.sections)
    cold: dict[ExportFormat, float] = {}
    warm: dict[ExportFormat, list[float]] = {fmt: [] for fmt in ExportFormat}
    sizes: dict[ExportFormat, int] = {}
    for round_ in range(options.repeats + 1):
        for fmt in ExportFormat:  # interleaved, so a busy moment hits every format alike
            began = time.perf_counter()
            out = render(document, fmt)
            elapsed = (time.perf_counter() - began) * 1000
            if round_ == 0:
                cold[fmt] = elapsed
                sizes[fmt] = len(out)
            else:
                warm[fmt].append(elapsed)
    pages = len(PdfReader(io.BytesIO(render(document, ExportFormat.pdf))).pages)
    paragraphs = [*document.summary, *(p for sec in document.sections for p in sec.paragraphs)]
    cites = sum(len(s.citations) for p in paragraphs for s in p.sentences)
    print(
        f"report: {options.sections} sections, {cites} citations, "
        f"{len(document.references)} references, {pages} PDF pages; {options.repeats} warm runs"
    )
    base_time = statistics.median(warm[ExportFormat.md])
    base_size = sizes[ExportFormat.md]
    print(f"{'format':<6} {'cold ms':>9} {'median ms':>10} {'x md':>8} {'bytes':>9} {'x md':>6}")
    for fmt in ExportFormat:
        median = statistics.median(warm[fmt])
        print(
            f"{fmt.value:<6} {cold[fmt]:>9.1f} {median:>10.2f} {median / base_time:>8.1f} "
            f"{sizes[fmt]:>9} {sizes[fmt] / base_size:>6.2f}"
        )


if __name__ == "__main__":
    main()

"""Builds questions.jsonl from the FAQs in corpus/ (plain text from Debian's zlib1g-dev,
xz-utils, procps and base-files packages): each FAQ question with the text of its answer as
the gold passage. The gold text comes from the FAQ itself, never from Citeline's answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def zlib(text: str) -> list[tuple[str, str]]:
    items = re.split(r"\n ?(?=\d{1,2}\. )", text)[1:]
    out = []
    for item in items:
        head, _, body = item.partition("\n\n")
        out.append((_clean(re.sub(r"^\d+\.\s*", "", head)), _clean(body)))
    return out


def xz(text: str) -> list[tuple[str, str]]:
    out = []
    for block in re.split(r"\n(?=Q:)", text)[1:]:
        question, _, answer = block.partition("\nA:")
        out.append((_clean(question[2:]), _clean(answer)))
    return out


def procps(text: str) -> list[tuple[str, str]]:
    out = []
    for match in re.finditer(r"^(\S[^\n]*)\n((?:\n|\t[^\n]*\n)+)", text, re.MULTILINE):
        out.append((_clean(match.group(1)), _clean(match.group(2))))
    return out


def base_files(text: str) -> list[tuple[str, str]]:
    out = []
    for block in re.split(r"\n(?=Q\. )", text)[1:]:
        question, _, answer = block.partition("\nA. ")
        answer = re.split(r"\n\* |\n-- ", answer)[0]
        if answer.strip():
            out.append((_clean(question[2:]), _clean(answer)))
    return out


SOURCES = {
    "zlib-faq.txt": zlib,
    "xz-faq.txt": xz,
    "procps-faq.txt": procps,
    "base-files-faq.txt": base_files,
}


def main() -> None:
    lines: list[dict[str, object]] = []
    for name, parse in SOURCES.items():
        for question, gold in parse((HERE / "corpus" / name).read_text(encoding="utf-8")):
            if len(gold) > 20:
                lines.append({"id": len(lines), "question": question, "page": name, "gold": gold})
    with (HERE / "questions.jsonl").open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    print(len(lines), "questions")


if __name__ == "__main__":
    main()

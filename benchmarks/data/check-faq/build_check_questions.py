"""Builds questions.jsonl from the FAQs in corpus/ (plain text from Debian's valgrind, socat
and lsof packages): each FAQ question with the text of its answer as the gold passage. The
gold text comes from the FAQ itself by the patterns below, written for these files alone
(never from Citeline's parser or answers). lsof's FAQ has about 200 entries: every sixth
one is asked, the rest are distractors."""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
RULE = re.compile(r"^-{20,}\s*$", re.MULTILINE)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def valgrind(text: str) -> list[tuple[str, str]]:
    out = []
    for block in RULE.split(text):
        match = re.match(r"\s*\d+\.\d+\.\s+(.*?(?:\?|:|\.)) *\n(.*)", block, re.DOTALL)
        if match:
            out.append((_clean(match[1]), _clean(match[2])))
    return out


def socat(text: str) -> list[tuple[str, str]]:
    out = []
    for block in re.split(r"\n(?=Q: )", text)[1:]:
        question, _, answer = block.partition("\nA: ")
        out.append((_clean(question[3:]), _clean(answer)))
    return out


def lsof(text: str) -> list[tuple[str, str]]:
    entries = re.finditer(
        r"^\d+\.\d+(?:\.\d+)?\t([^\n]*\?)\n\n((?:\t[^\n]*\n|\n)+)", text, re.MULTILINE
    )
    out = [(_clean(m[1]), _clean(m[2])) for m in entries]
    return out[::6]


SOURCES = {"valgrind-faq.txt": valgrind, "socat-faq.txt": socat, "lsof-faq.txt": lsof}


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

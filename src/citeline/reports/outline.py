"""A report's outline: the sections a person fixes or the model plans, each with the
questions its research answers. Whatever the model returns is checked here, since llama.cpp can
ignore a schema on some paths: an outline is accepted only once it is clean."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citeline.errors import InvalidInput

MAX_SECTIONS = 12
MAX_TITLE = 100
MAX_QUESTION = 200
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PlannedSection:
    title: str
    questions: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "questions": list(self.questions)}


def clean(text: str, limit: int) -> str:
    return _SPACE.sub(" ", text).strip()[:limit].strip()


def check_titles(titles: Sequence[str]) -> list[str]:
    """A person's outline: 1 to MAX_SECTIONS distinct, non-empty titles."""
    if not titles:
        raise InvalidInput("an outline needs at least one section", field="outline")
    if len(titles) > MAX_SECTIONS:
        raise InvalidInput(
            f"an outline has at most {MAX_SECTIONS} sections, not {len(titles)}",
            field="outline",
        )
    out: list[str] = []
    for index, title in enumerate(titles):
        cleaned = clean(title, MAX_TITLE)
        if not cleaned:
            raise InvalidInput(f"section {index + 1} of the outline has no title", field="outline")
        if cleaned.lower() in (t.lower() for t in out):
            raise InvalidInput(f"the outline names {cleaned!r} twice", field="outline")
        out.append(cleaned)
    return out


def parse_plan(text: str, wanted: int) -> tuple[str | None, list[PlannedSection]]:
    """The model's plan: its title and the sections that are usable (titled, distinct, with
    questions); what is malformed is left out rather than trusted."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None, []
    if not isinstance(data, dict):
        return None, []
    title = clean(str(data.get("title") or ""), 120) or None
    sections: list[PlannedSection] = []
    seen: set[str] = set()
    for item in data.get("sections") or []:
        if not isinstance(item, dict):
            continue
        name = clean(str(item.get("title") or ""), MAX_TITLE)
        questions = parse_questions(item.get("questions"))
        if not name or name.lower() in seen or not questions:
            continue
        seen.add(name.lower())
        sections.append(PlannedSection(name, questions))
        if len(sections) == wanted:
            break
    return title, sections


def parse_questions(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    out: list[str] = []
    for item in raw:
        question = clean(str(item), MAX_QUESTION) if isinstance(item, str) else ""
        if len(question) >= 8 and question.lower() not in (q.lower() for q in out):
            out.append(question)
    return tuple(out[:4])


def questions_from_text(text: str) -> tuple[str, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return ()
    return parse_questions(data.get("questions") if isinstance(data, dict) else None)


def fallback_questions(topic: str, title: str) -> tuple[str, ...]:
    """Questions made from the words a person gave, when the model gives none usable."""
    return (f"{title}?" if not title.endswith("?") else title, f"What about {title} in {topic}?")

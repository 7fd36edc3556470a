"""Reading one message of a builder conversation: a small JSON-schema-constrained question to
the model for the current stage's field, whose answer is then checked in code.

The bundled model always writes valid JSON but invents values the person never gave, and
llama.cpp may ignore the schema on some paths. So every value is checked here: an enum value
counts only if the message holds a word for it, goals must share words with the message, and
anything else stays `unknown`, which makes the stage machine ask again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from citeline.agent_builder.stages import (
    AGENT_TYPES,
    FIELDS,
    MAX_GOAL_CHARS,
    MAX_GOALS,
    QUESTIONS,
    TONES,
    UNKNOWN,
    Stage,
)
from citeline.llm import ChatRequest, Message

# Words that count as the person saying a value (a prefix of a word in the message).
AGENT_TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "question_answering": ("question answer", "question-answer", "q&a", "faq", "answers question",
                           "answer question", "answering question", "questions"),
    "customer_support": ("customer", "support", "help desk", "helpdesk", "ticket"),
    "research": ("research", "investigat", "literature", "analys", "analyz"),
    "summarizer": ("summar", "digest", "condens", "tl;dr"),
    "writer": ("writer", "write", "writing", "draft", "compose", "blog", "copywrit"),
}  # fmt: skip
TONE_WORDS: dict[str, tuple[str, ...]] = {
    "formal": ("formal", "professional", "polite"),
    "friendly": ("friendly", "warm", "casual", "approachable", "cheerful"),
    "concise": ("concise", "brief", "short", "terse", "to the point", "succinct"),
    "technical": ("technical", "precise", "expert", "detailed"),
    "neutral": ("neutral", "plain", "objective", "impartial"),
}
REVIEW_WORDS: dict[str, tuple[str, ...]] = {
    "yes": ("yes", "yeah", "yep", "sure", "please", "review", "approv", "check", "always"),
    "no": ("no", "nope", "not", "don't", "dont", "without", "skip", "never", "automatic",
           "directly", "straight"),
}  # fmt: skip
CONFIRM_WORDS: dict[str, tuple[str, ...]] = {
    "yes": ("yes", "confirm", "ok", "okay", "looks good", "good", "done", "finish", "save",
            "approve", "great", "perfect", "correct", "fine", "ship it", "go ahead", "lgtm"),
    "no": ("no", "not yet", "wait", "wrong"),
}  # fmt: skip
TOOLS_WORDS: dict[str, tuple[str, ...]] = {
    "accept": ("yes", "ok", "okay", "confirm", "accept", "sure", "fine", "good", "all", "those",
               "them", "suggested", "keep", "use"),
    "none": ("none", "no tool", "no", "without", "nothing"),
}  # fmt: skip
CHANGE_WORDS = ("change", "instead", "actually", "switch", "make it", "rather", "go back",
                "update", "set the", "should be", "replace", "edit", "modify")  # fmt: skip
FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "agent_type": ("type", "kind of agent", "agent kind"),
    "goals": ("goal", "aim", "purpose", "objective"),
    "tone": ("tone", "style", "voice"),
    "tools": ("tool",),
    "human_review": ("review", "approval", "human"),
}
CHANGES = ("none", *FIELDS)
STOPWORDS = frozenset(
    [
        "that",
        "this",
        "with",
        "from",
        "into",
        "should",
        "would",
        "could",
        "about",
        "their",
        "there",
        "what",
        "when",
        "which",
        "while",
        "agent",
        "want",
        "wants",
        "like",
        "have",
        "make",
        "also",
        "them",
        "they",
        "then",
        "than",
        "just",
        "only",
        "some",
        "more",
        "most",
        "very",
        "will",
        "each",
        "every",
        "help",
        "helps",
        "other",
        "your",
        "yours",
    ]
)

MAX_TOKENS = 160
Ask = Callable[[ChatRequest], str]  # sends a request to the model, returns its text


def _words_re(word: str) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z0-9])" + re.escape(word))


def said(message: str, words: Iterable[str]) -> bool:
    text = message.lower()
    return any(_words_re(word).search(text) for word in words)


def evidenced(message: str, table: dict[str, tuple[str, ...]]) -> list[str]:
    """The values of `table` the message holds a word for."""
    return [value for value, words in table.items() if said(message, words)]


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 4} - STOPWORDS


def _enum(values: Iterable[str]) -> dict[str, Any]:
    return {"type": "string", "enum": [*values, UNKNOWN]}


GOALS_SCHEMA = {
    "type": "array",
    "items": {"type": "string", "maxLength": MAX_GOAL_CHARS},
    "maxItems": MAX_GOALS,
}
FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "agent_type": _enum(AGENT_TYPES),
    "goals": GOALS_SCHEMA,
    "tone": _enum(TONES),
    "tools": _enum(("accept", "none")),
    "human_review": _enum(("yes", "no")),
    "confirm": _enum(("yes", "no")),
}
# The keys each stage asks the model for.
STAGE_KEYS: dict[Stage, tuple[str, ...]] = {
    Stage.initial: ("agent_type", "goals", "tone"),
    Stage.agent_type: ("agent_type", "change"),
    Stage.goals: ("goals", "change"),
    Stage.tone: ("tone", "change"),
    Stage.tools: ("tools", "change"),
    Stage.workflow: ("human_review", "change"),
    Stage.review: ("confirm", "change"),
}


def schema_for(keys: Iterable[str]) -> dict[str, Any]:
    properties = {
        key: {"type": "string", "enum": list(CHANGES)} if key == "change" else FIELD_SCHEMAS[key]
        for key in keys
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SYSTEM = (
    "You read one message from a person who is describing an AI agent they want built. Fill "
    'each JSON field only with what the message itself says; write "unknown" for anything '
    "it does not state, never a guess. `goals` lists what the agent should achieve, in the "
    'person\'s words. `change` names a field the person asks to change, or "none".'
)


def request_for(keys: Iterable[str], asked: str, message: str) -> ChatRequest:
    keys = tuple(keys)
    return ChatRequest(
        messages=[
            Message.system(SYSTEM),
            Message.user(f"The person was asked: {asked}\nTheir message: {message}"),
        ],
        max_tokens=MAX_TOKENS,
        temperature=0.0,
        json_schema=schema_for(keys),
    )


def parse_json(raw: str) -> dict[str, Any]:
    """The model's object, or an empty one if it wrote something else (everything then stays
    unknown and the question is asked again)."""
    text = raw.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pick(model_value: object, message: str, table: dict[str, tuple[str, ...]]) -> str:
    """The model's value if the message holds a word for it; else the one value the message
    names, if exactly one; else unknown."""
    found = evidenced(message, table)
    if isinstance(model_value, str) and model_value in found:
        return model_value
    return found[0] if len(found) == 1 else UNKNOWN


def _naming_words() -> frozenset[str]:
    names = [*AGENT_TYPES, *TONES, "agent", "assistant", "bot"]
    for table in (AGENT_TYPE_WORDS, TONE_WORDS):
        names += [word for words in table.values() for word in words]
    return frozenset(w for name in names for w in re.findall(r"[a-z0-9]+", name.replace("_", " ")))


# Words that name a kind of agent or a tone: a "goal" made only of them ("customer support",
# "summarizer") restates the type, which the bundled model offers when no goal was given.
NAMING_WORDS = _naming_words()


def check_goals(model_value: object, message: str) -> list[str]:
    """The model's goals that share a word with the message (other than words naming a kind
    of agent or a tone), trimmed and without repeats."""
    if not isinstance(model_value, list):
        return []
    words = content_words(message) - NAMING_WORDS
    goals: list[str] = []
    for item in model_value:
        if not isinstance(item, str):
            continue
        goal = " ".join(item.split())[:MAX_GOAL_CHARS].strip(" .;")
        if not goal or goal.lower() == UNKNOWN or goal in goals:
            continue
        if content_words(goal) & words:
            goals.append(goal)
    return goals[:MAX_GOALS]


def named_tools(message: str, tools: Collection[str]) -> list[str]:
    """The available tools the message names (by name, or with spaces for underscores)."""
    text = message.lower()
    return [t for t in tools if t.lower() in text or t.lower().replace("_", " ") in text]


@dataclass
class Reading:
    """What code accepted from one message: field values, and the field it asks to change."""

    values: dict[str, Any] = field(default_factory=dict)
    change: str | None = None
    confirm: str = UNKNOWN
    tools_decision: str = UNKNOWN
    raw: list[str] = field(default_factory=list)  # the model's replies, for the history


def check_field(key: str, model_value: object, message: str, *, plain: bool = False) -> Any:
    """One field's value from the model, kept only if the message supports it; with `plain`,
    the message answered only this field's question."""
    if key == "agent_type":
        return pick(model_value, message, AGENT_TYPE_WORDS)
    if key == "tone":
        return pick(model_value, message, TONE_WORDS)
    if key == "human_review":
        return pick(model_value, message, REVIEW_WORDS)
    if key == "confirm":
        return pick(model_value, message, CONFIRM_WORDS)
    if key == "tools":
        return pick(model_value, message, TOOLS_WORDS)
    if key == "goals":
        goals = check_goals(model_value, message)
        # Asked only for goals, a plain answer is the goal itself.
        if not goals and plain and content_words(message) - NAMING_WORDS:
            goals = [" ".join(message.split())[:MAX_GOAL_CHARS].strip(" .;")]
        return goals or UNKNOWN
    raise ValueError(f"no field {key!r}")


def check_change(model_value: object, message: str, current: str | None) -> str | None:
    """The field the message asks to change: it must use a word of changing and name the field
    (or one of its values); the model's pick wins when several fit."""
    if not said(message, CHANGE_WORDS):
        return None
    tables = {"agent_type": AGENT_TYPE_WORDS, "tone": TONE_WORDS}
    named = [
        name
        for name in FIELDS
        if name != current
        and (
            said(message, FIELD_WORDS[name])
            or (name in tables and bool(evidenced(message, tables[name])))
        )
    ]
    if isinstance(model_value, str) and model_value in named:
        return model_value
    return named[0] if len(named) == 1 else None


class Reader:
    """Reads messages with the model behind `ask`; every value it returns was checked."""

    def __init__(self, ask: Ask, tools: Collection[str]) -> None:
        self.ask = ask
        self.tools = tools

    def _model(
        self, keys: tuple[str, ...], asked: str, message: str, reading: Reading
    ) -> dict[str, Any]:
        raw = self.ask(request_for(keys, asked, message))
        reading.raw.append(raw)
        return parse_json(raw)

    def read(self, stage: Stage, message: str) -> Reading:
        reading = Reading()
        keys = STAGE_KEYS[stage]
        answer = self._model(keys, QUESTIONS[stage], message, reading)
        current = keys[0] if stage is not Stage.initial else None
        if stage is not Stage.initial:
            change = check_change(answer.get("change"), message, current)
            if change is not None:
                reading.change = change
                reading.values[change] = self._changed(change, message, reading)
        for key in keys:
            if key == "change":
                continue
            plain = stage is Stage.goals and reading.change is None
            value = check_field(key, answer.get(key), message, plain=plain)
            if key == "confirm":
                reading.confirm = value
            elif key == "tools":
                chosen = named_tools(message, self.tools)
                if chosen:
                    reading.values["tools"] = chosen
                reading.tools_decision = value
            elif value != UNKNOWN and key not in reading.values:
                reading.values[key] = value
        return reading

    def _changed(self, name: str, message: str, reading: Reading) -> Any:
        """The new value of a field the person goes back to: from the message's own words when
        they name exactly one value, else from a second constrained reading."""
        if name == "tools":
            return named_tools(message, self.tools) or UNKNOWN  # asked again as a checklist
        tables = {"agent_type": AGENT_TYPE_WORDS, "tone": TONE_WORDS, "human_review": REVIEW_WORDS}
        if name in tables:
            found = evidenced(message, tables[name])
            if len(found) == 1:
                return found[0]
        answer = self._model((name,), f"What should {name.replace('_', ' ')} be?", message, reading)
        return check_field(name, answer.get(name), message)

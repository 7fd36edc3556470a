"""The builder's stage machine: the fields a session collects, the order it asks for them in,
and the question it asks next. Code decides every step; a model only reads the person's words.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

UNKNOWN = "unknown"


class Stage(StrEnum):
    initial = "initial"
    agent_type = "agent_type"
    goals = "goals"
    tone = "tone"
    tools = "tools"
    workflow = "workflow"
    review = "review"
    completed = "completed"


class SessionStatus(StrEnum):
    active = "active"
    completed = "completed"
    abandoned = "abandoned"


AGENT_TYPES = ("question_answering", "customer_support", "research", "summarizer", "writer")
TONES = ("formal", "friendly", "concise", "technical", "neutral")
YES_NO = ("yes", "no")

# The field each collecting stage fills; `workflow` asks whether a person reviews each output.
FIELD_OF: dict[Stage, str] = {
    Stage.agent_type: "agent_type",
    Stage.goals: "goals",
    Stage.tone: "tone",
    Stage.tools: "tools",
    Stage.workflow: "human_review",
}
FIELDS = tuple(FIELD_OF.values())
STAGE_OF = {field: stage for stage, field in FIELD_OF.items()}

MAX_GOALS = 5
MAX_GOAL_CHARS = 200

LABELS = {
    "agent_type": "the kind of agent",
    "goals": "its goals",
    "tone": "its tone",
    "tools": "its tools",
    "human_review": "whether a person reviews each output",
}

QUESTIONS: dict[Stage, str] = {
    Stage.initial: (
        "Describe the agent you want: what kind of agent it is (question answering, customer "
        "support, research, summarizer or writer), what it should achieve, and its tone."
    ),
    Stage.agent_type: (
        "What kind of agent is it: question answering, customer support, research, summarizer "
        "or writer?"
    ),
    Stage.goals: "What should the agent achieve? Name one to five goals.",
    Stage.tone: "Which tone should it use: formal, friendly, concise, technical or neutral?",
    Stage.tools: (
        "Which tools may it use? Confirm the suggested ones, name the ones you want, or say none."
    ),
    Stage.workflow: "Should a person review each output before it is sent (yes or no)?",
    Stage.review: (
        "Here is the agent: its prompt, tools and workflow. Confirm to finish, or say what to "
        "change (for example: change the tone to formal)."
    ),
    Stage.completed: "The agent is complete.",
}


def empty_fields() -> dict[str, Any]:
    return dict.fromkeys(FIELDS, UNKNOWN)


def known(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name, UNKNOWN)
    return value != UNKNOWN and value is not None


def missing(fields: dict[str, Any]) -> list[str]:
    return [name for name in FIELDS if not known(fields, name)]


def next_stage(fields: dict[str, Any]) -> Stage:
    """The first stage whose field is still unknown; review once every field is known."""
    for name in FIELDS:
        if not known(fields, name):
            return STAGE_OF[name]
    return Stage.review


def question(stage: Stage, fields: dict[str, Any], asked_again: list[str] | None = None) -> str:
    """What to say next: the stage's question, prefixed by what is still missing if the last
    message did not give it."""
    text = QUESTIONS[stage]
    if asked_again:
        names = ", ".join(LABELS[name] for name in asked_again)
        text = f"I still need {names}. {text}"
    return text

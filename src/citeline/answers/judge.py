"""Judging citations with another model than the writer, in a way a yes-sayer cannot pass.

Asked "does this passage support the sentence?", a small judge says yes to nearly anything
(Qwen2.5-Coder-0.5B said yes to every citation it was shown). So the judge is asked to choose:
given the sentence, the cited span and a control passage the sentence does not cite, which one
states what the sentence claims, or neither, once in each order. A citation is judged
supporting only when the judge picks its span both times: a judge that always says yes, or
always picks the first passage, credits nothing.

`benchmarks/judge_calibration.py` measures how often a judge credits spans known to support
a sentence and spans taken from another question's answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from citeline.llm import ChatRequest, ChatResult, Message

CHOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"passage": {"enum": ["1", "2", "neither"]}},
    "required": ["passage"],
}
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"supported": {"enum": ["yes", "no"]}},
    "required": ["supported"],
}
CHOOSE = (
    "You check citations. Read the sentence and the two passages, then say which passage "
    "states what the sentence claims: 1 or 2. Say neither if no passage states it."
)
VERDICT = "You check citations. Answer yes only if the passage states what the sentence claims."


class Completes(Protocol):
    def complete(self, target: str, request: ChatRequest, **kwargs: object) -> ChatResult: ...


@dataclass(frozen=True)
class Judge:
    models: Completes
    model: str
    subject: str = "eval"

    def supports(self, claim: str, span: str, control: str | None) -> bool:
        """The judge picks `span` over `control` in both orders (or, with no control to
        offer, says yes to `span` alone)."""
        if control is None:
            return self.says_yes(claim, span)
        return self.choose(claim, span, control) == "1" and self.choose(claim, control, span) == "2"

    def choose(self, claim: str, first: str, second: str) -> str:
        prompt = f"Sentence: {claim}\n\nPassage 1: {first}\n\nPassage 2: {second}\n\nWhich passage?"
        return self._ask(CHOOSE, prompt, CHOICE_SCHEMA, "passage")

    def says_yes(self, claim: str, span: str) -> bool:
        prompt = f"Passage: {span}\n\nSentence: {claim}\n\nDoes the passage support it?"
        return self._ask(VERDICT, prompt, VERDICT_SCHEMA, "supported") == "yes"

    def _ask(self, system: str, prompt: str, schema: dict[str, Any], field: str) -> str:
        request = ChatRequest(
            messages=[Message.system(system), Message.user(prompt)],
            max_tokens=16,
            temperature=0.0,
            json_schema=schema,
        )
        reply = self.models.complete(self.model, request, subject=self.subject)
        try:
            return str(json.loads(reply.text).get(field, ""))
        except (json.JSONDecodeError, AttributeError):
            return ""  # a reply that is not the schema's object credits nothing

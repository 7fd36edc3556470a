"""The citation judge credits a span only when the judge model picks it over a control passage
in both orders; yes-sayers and first-pickers credit nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

from citeline.answers.judge import Judge
from citeline.llm import ChatRequest, ChatResult
from citeline.llm.messages import FinishReason, Usage


class Scripted:
    """A judge model that answers each request from its user message."""

    def __init__(self, reply: Callable[[str], dict[str, str] | str]) -> None:
        self.reply = reply
        self.calls: list[str] = []

    def complete(self, target: str, request: ChatRequest, **kwargs: object) -> ChatResult:
        prompt = str(request.messages[-1].content)
        self.calls.append(prompt)
        out = self.reply(prompt)
        text = out if isinstance(out, str) else json.dumps(out)
        return ChatResult(text=text, finish_reason=FinishReason.stop, usage=Usage())


def picks_the_passage_with(word: str) -> Callable[[str], dict[str, str]]:
    def reply(prompt: str) -> dict[str, str]:
        first = prompt.split("Passage 1:")[1].split("Passage 2:", maxsplit=1)[0]
        second = prompt.split("Passage 2:")[1]
        if word in first:
            return {"passage": "1"}
        return {"passage": "2" if word in second else "neither"}

    return reply


def test_a_reading_judge_credits_the_span_that_states_the_claim_and_only_that() -> None:
    model = Scripted(picks_the_passage_with("zlib"))
    judge = Judge(model, "judge")
    assert judge.supports("zlib is thread safe.", "zlib is thread safe", "xz compresses")
    assert len(model.calls) == 2  # once in each order
    assert not judge.supports("zlib is thread safe.", "xz compresses", "zlib is thread safe")


def test_a_judge_that_always_picks_the_first_or_says_yes_credits_nothing() -> None:
    first = Judge(Scripted(lambda _: {"passage": "1"}), "judge")
    assert not first.supports("claim", "span", "control")
    yes = Judge(Scripted(lambda _: {"passage": "1", "supported": "yes"}), "judge")
    assert not yes.supports("claim", "span", "control")


def test_without_a_control_the_judge_is_asked_yes_or_no_and_garbage_is_no() -> None:
    assert Judge(Scripted(lambda _: {"supported": "yes"}), "judge").supports("c", "s", None)
    assert not Judge(Scripted(lambda _: "not json"), "judge").supports("c", "s", None)
    assert not Judge(Scripted(lambda _: "[1]"), "judge").supports("c", "s", "control")

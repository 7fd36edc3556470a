"""A scripted chat model for assistant tests (a remote provider, outside the system): it
calls the tool a test asks for, then answers from the tool's result, as a model would."""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any

from citeline.llm.messages import ToolCall
from tests.fake_llm_server import Reply

FOUNDED = "The lighthouse of Varnholm was built in 1847 by the harbour guild"
_MARKER = re.compile(r"^\[(\d+)\]")


class AssistantModel:
    """`plan` is the tool calls it makes before answering, one per step: (name, arguments).
    With `loop` it never stops calling tools."""

    def __init__(self) -> None:
        self.plan: list[tuple[str, dict[str, Any]]] = [("search_knowledge_base", {})]
        self.loop = False
        self.answer: str | None = None  # a fixed answer instead of one from the results
        self.offered: list[list[dict[str, Any]]] = []  # the tools of each request
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        asked = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        # Tool results since the user's last message.
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        results = [m for m in messages[last_user:] if m["role"] == "tool"]
        with self._lock:
            self.offered.append(list(body.get("tools") or []))
            step = len(results)
            if self.loop or step < len(self.plan):
                name, arguments = ("search_knowledge_base", {}) if self.loop else self.plan[step]
                if name == "search_knowledge_base" and not arguments:
                    arguments = {"query": asked}
                call = ToolCall(id=f"call_{next(self._ids)}", name=name, arguments=arguments)
                return Reply(tool_calls=(call,))
        if self.answer is not None:
            return Reply(text=self.answer, chunks=4)
        return Reply(text=_from_results(results), chunks=4)


def _from_results(results: list[dict[str, Any]]) -> str:
    for result in reversed(results):
        for line in str(result["content"]).splitlines():
            marker = _MARKER.match(line)
            if marker and "1847" in line:
                return f"{FOUNDED} [{marker.group(1)}]."
            if "Paris" in line:
                return line.strip()
    return "I could not find that."

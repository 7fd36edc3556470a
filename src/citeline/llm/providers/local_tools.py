"""Tool calling for local models that do not emit their chat template's tool-call markup (the
bundled Qwen2.5-Coder models answer tool requests with bare JSON that llama.cpp cannot parse).

The tools are described in the system message and the reply is held by a JSON-schema grammar
to either `{"answer": text}` or `{"tool": name, "arguments": {...}}`, so the model cannot
produce anything else; the reply is then read back into a text delta or a tool call.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from citeline.llm.messages import (
    ChatEvent,
    ChatRequest,
    Finish,
    FinishReason,
    Message,
    Role,
    TextDelta,
    ToolCall,
    ToolCallEvent,
    Usage,
)

INSTRUCTIONS = (
    "You can call these tools:\n{tools}\n"
    'Reply with JSON only: {{"tool": "<name>", "arguments": {{...}}}} to call a tool, '
    'or {{"answer": "<text>"}} to answer the user.'
)


def constrained(request: ChatRequest) -> ChatRequest:
    """The request with the tools moved into the system message and the reply's shape fixed."""
    listing = "\n".join(
        f"- {tool.name}: {tool.description} Arguments (JSON schema): "
        f"{json.dumps(tool.parameters, separators=(',', ':'))}"
        for tool in request.tools
    )
    instructions = INSTRUCTIONS.format(tools=listing)
    system = [m.content for m in request.messages if m.role is Role.system]
    rest = [m for m in request.messages if m.role is not Role.system]
    schema: dict[str, Any] = {
        "anyOf": [
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            },
            *(
                {
                    "type": "object",
                    "properties": {"tool": {"const": tool.name}, "arguments": tool.parameters},
                    "required": ["tool", "arguments"],
                }
                for tool in request.tools
            ),
        ]
    }
    return request.model_copy(
        update={
            "messages": [Message.system("\n\n".join([*system, instructions])), *rest],
            "tools": [],
            "json_schema": schema,
        }
    )


def read_reply(text: str, finish: Finish) -> list[ChatEvent]:
    """The constrained reply as the events a tool-aware model would have produced."""
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        reply = None  # cut off by max_tokens: hand over what there is
    if isinstance(reply, dict) and isinstance(reply.get("tool"), str):
        arguments = reply.get("arguments")
        call = ToolCall(
            id=f"call_{uuid.uuid4().hex[:12]}",
            name=reply["tool"],
            arguments=arguments if isinstance(arguments, dict) else {},
        )
        return [ToolCallEvent(call=call), _finish(FinishReason.tool_calls, finish.usage)]
    if isinstance(reply, dict) and isinstance(reply.get("answer"), str):
        return [TextDelta(text=reply["answer"]), finish]
    return [TextDelta(text=text), finish] if text else [finish]


def _finish(reason: FinishReason, usage: Usage) -> Finish:
    return Finish(reason=reason, usage=usage)


_ANSWER_OPENING = re.compile(r'\s*\{\s*"answer"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class AnswerStream:
    """Reads the constrained reply as it is generated, so an answer reaches the reader token by
    token rather than when the whole JSON is complete: once the reply opens with
    `{"answer": "`, the string's characters are handed on as they come (JSON escapes decoded);
    a tool call is only read whole, at the end."""

    def __init__(self) -> None:
        self.raw = ""
        self.answering = False
        self.closed = False  # the answer string ended
        self._pending = ""  # an escape sequence not yet complete

    def feed(self, delta: str) -> str:
        """The answer text that `delta` adds (empty while deciding, or for a tool call)."""
        self.raw += delta
        if not self.answering:
            opening = _ANSWER_OPENING.match(self.raw)
            if opening is None:
                return ""
            self.answering = True
            delta = self.raw[opening.end() :]
        return self._decode(delta)

    def _decode(self, text: str) -> str:
        out: list[str] = []
        text = self._pending + text
        self._pending = ""
        index = 0
        while index < len(text) and not self.closed:
            char = text[index]
            if char == '"':
                self.closed = True
            elif char == "\\":
                if index + 1 >= len(text):
                    self._pending = text[index:]
                    break
                code = text[index + 1]
                if code == "u":
                    if index + 6 > len(text):
                        self._pending = text[index:]
                        break
                    out.append(chr(int(text[index + 2 : index + 6], 16)))
                    index += 6
                    continue
                out.append(_ESCAPES.get(code, code))
                index += 2
                continue
            else:
                out.append(char)
            index += 1
        return "".join(out)

"""One assistant run: the model chooses tools, the loop checks and runs them (pausing for a
person's approval where the policy says ask), feeds the results back, and stops at the step
limit. Everything it does goes out as typed events and is recorded in PostgreSQL; its live
state goes to Redis.

A call whose policy is ask pauses the run: `go` records a checkpoint on the run's row (the
model's turns so far, the numbered passages, the usage) and returns with `paused` set, and
the job suspends, holding no worker. The decision queues the job again; its next attempt, on
any worker, rebuilds the model's messages from the user's message, the checkpoint and the
tool calls' rows, reads the decision from the waiting call's row and goes on.

Events: {type: token | tool_request | tool_result | thinking | error | complete, content,
metadata: {run_id, token_count, timestamp, state, ...}}.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from citeline.answers import Passage, content_words, from_hits, verify
from citeline.assistant import tools as toolkit
from citeline.assistant.auditing import decision_entry
from citeline.assistant.models import (
    AssistantConversation,
    AssistantMessage,
    AssistantRun,
    AssistantToolCall,
    RunState,
)
from citeline.assistant.state import LiveState
from citeline.assistant.tools import Toolbox
from citeline.auth import audit
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import CitelineError
from citeline.llm import (
    ChatRequest,
    Finish,
    Lease,
    Message,
    MessageRole,
    ModelService,
    TextDelta,
    ToolCall,
    ToolCallEvent,
)
from citeline.settings import Settings

if TYPE_CHECKING:
    from citeline.auth import Access
    from citeline.knowledge import KnowledgeService

SYSTEM = (
    "You are Citeline's assistant. Answer the user's question briefly. Call a tool when it "
    "helps. Facts from the knowledge base must come from search_knowledge_base: write the "
    "passage's marker, like [1], after each sentence that uses it. Say so when you do not know."
)
PASSAGE_CHARS = 700
QUOTE_CHARS = 300
TOOL_MATCH = 0.5  # share of a sentence's content words a tool result line must hold
_SPACE = re.compile(r"\s+")

Emit = Callable[[str, Mapping[str, Any] | None], object]
Resumed = tuple[list[Message], int, list[ToolCall], AssistantToolCall | None]


class AssistantDeps(Protocol):
    """What a run needs of the process it runs in (the composition root provides it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    def knowledge(self, access: Access | None = None) -> KnowledgeService: ...

    def models(
        self, access: Access | None = None, *, lease: Lease | None = None
    ) -> ModelService: ...

    def assistant_toolbox(self, workspace_id: str, owner: str | None) -> Toolbox | None: ...


@dataclasses.dataclass(frozen=True)
class Pause:
    """Where a run stopped for a person's decision on one tool call."""

    tool_call: uuid.UUID  # the waiting call's row
    name: str
    until: datetime  # then it is denied (the approval timed out)


@dataclasses.dataclass
class Hooks:
    """How the loop talks to the job running it."""

    emit: Emit
    check_cancelled: Callable[[], None]
    lease: Lease | None = None


class Run:
    def __init__(
        self,
        deps: AssistantDeps,
        live: LiveState,
        run_id: uuid.UUID,
        hooks: Hooks,
        owner: str | None,
        job_id: uuid.UUID | None = None,
    ) -> None:
        self.job_id = job_id
        self.deps = deps
        self.settings = deps.settings
        self.sessions = deps.sessions
        self.live = live
        self.run_id = run_id
        self.hooks = hooks
        self.owner = owner
        with self.sessions() as session:
            run = session.get_one(AssistantRun, run_id)
            conversation = session.get_one(AssistantConversation, run.conversation_id)
            session.expunge_all()
        self.run = run
        self.conversation = conversation
        self.state = RunState(run.state)
        self.tokens = 0
        self.buffer = ""
        self.passages: list[Passage] = []
        self.bases: dict[uuid.UUID, str] = {}  # chunk id -> its knowledge base
        self.results: dict[str, tuple[str, str]] = {}  # call id -> (tool name, result text)
        self.cited: list[dict[str, Any]] = []  # what the model cited with `cite`
        self.usage = [0, 0]
        # The model's turns that asked for tools: {step, text, calls}, kept in the checkpoint.
        self.turns: list[dict[str, Any]] = []
        self.paused: Pause | None = None  # set when `go` returned to wait for a decision
        self.until: datetime | None = None  # when the decision a resumed run waited for lapsed
        self.knowledge = deps.knowledge()
        self.toolbox = deps.assistant_toolbox(conversation.workspace_id, owner)
        self.kb_names = self._knowledge_bases()
        self.tools = toolkit.available(list(self.kb_names), self.toolbox, conversation.tools)

    # Events and state

    def emit(self, type_: str, content: str, **metadata: Any) -> None:
        self.hooks.emit(
            type_,
            {
                "content": content,
                "metadata": {
                    "run_id": str(self.run_id),
                    "conversation_id": str(self.conversation.id),
                    "token_count": self.tokens,
                    "timestamp": utcnow().isoformat(),
                    "state": self.state.value,
                    **metadata,
                },
            },
        )

    def enter(self, state: RunState, why: str = "", **live: Any) -> None:
        if state is self.state and not live:
            return
        self.state = state
        self.live.put(self.run_id, self.conversation.id, state=state.value, **live)
        if state in (RunState.awaiting_approval, RunState.processing) or state.ended:
            with unit_of_work(self.sessions) as session:
                session.execute(
                    update(AssistantRun)
                    .where(AssistantRun.id == self.run_id)
                    .values(state=state.value)
                )
        if why:
            self.emit("thinking", why)

    # The loop

    def go(self) -> dict[str, Any]:
        """Run from the start, or from where the last attempt paused for approval."""
        step = done = 0
        final = ""
        try:
            resumed = self._restore()
            if resumed is None:
                messages = self._prompt()
            else:
                messages, done, todo, waiting = resumed
                step = done
                if self._run_calls(step, todo, messages, waiting):
                    return self._pause(step)
            limit = self.settings.assistant_max_steps
            for step in range(done + 1, limit + 1):
                # The last step offers no tools: the model must answer from what it has.
                last = step == limit and limit > 1
                self.enter(
                    RunState.processing,
                    f"step {step}: asking the model"
                    + (" to answer (no more tool calls: the step limit)" if last else ""),
                )
                text, calls = self._generate(messages, step, offer_tools=not last)
                if not calls:
                    final = text
                    break
                if last:
                    return self._fail(_over_limit(limit), step)
                self.turns.append(
                    {"step": step, "text": text, "calls": [c.model_dump() for c in calls]}
                )
                messages.append(Message(role=MessageRole.assistant, content=text, tool_calls=calls))
                if self._run_calls(step, calls, messages):
                    return self._pause(step)
            else:
                return self._fail(_over_limit(limit), step)
        except CitelineError as exc:
            return self._fail(exc.detail, step)
        return self._complete(final, step)

    def _run_calls(
        self,
        step: int,
        calls: list[ToolCall],
        messages: list[Message],
        waiting: AssistantToolCall | None = None,
    ) -> bool:
        """Run a turn's calls in order, the first of them maybe the one a decision was waited
        for; True when one must wait for a person."""
        for index, call in enumerate(calls):
            result = self._call(step, call, waiting if index == 0 else None)
            if result is None:
                return True
            messages.append(Message(role=MessageRole.tool, content=result, tool_call_id=call.id))
        return False

    def _generate(
        self, messages: list[Message], step: int, *, offer_tools: bool = True
    ) -> tuple[str, list[ToolCall]]:
        models = self.deps.models(lease=self.hooks.lease)
        request = ChatRequest(
            messages=messages,
            max_tokens=self.settings.assistant_max_tokens,
            tools=[tool.spec for tool in self.tools.values()] if offer_tools else [],
        )
        reply = models.start(
            self.conversation.model,
            request,
            subject=self.owner,
            conversation=str(self.conversation.id),
            job_id=self.job_id,
            workspace_id=self.conversation.workspace_id,
        )
        text = ""
        calls: list[ToolCall] = []
        try:
            for event in reply:
                self.hooks.check_cancelled()
                if isinstance(event, TextDelta):
                    if self.state is not RunState.streaming:
                        self.enter(RunState.streaming)
                    text += event.text
                    self.tokens += 1
                    self.buffer = (self.buffer + event.text)[-2000:]
                    self.emit("token", event.text, step=step)
                elif isinstance(event, ToolCallEvent):
                    calls.append(event.call)
                elif isinstance(event, Finish):
                    self.usage[0] += event.usage.input_tokens
                    self.usage[1] += event.usage.output_tokens
                    self.tokens = self.usage[1]
        finally:
            reply.close()
        if text:
            self.live.put(self.run_id, self.conversation.id, buffer=self.buffer)
        return text, calls

    def _call(
        self, step: int, call: ToolCall, waited: AssistantToolCall | None = None
    ) -> str | None:
        """Check, run one call; what the model is told, or None when it must wait for a
        person's approval. `waited` is the call's row when a decision on it was waited for."""
        tool = self.tools.get(call.name)
        meta = {"tool_call_id": call.id, "name": call.name, "arguments": call.arguments}
        if waited is None:
            policy = tool.policy if tool is not None else "allow"
            problem = toolkit.problem(self.tools, call.name, call.arguments)
            row_id = self._record(step, call, policy, "invalid" if problem else "pending")
            self.emit(
                "tool_request", call.name, **meta, policy=policy, needs_approval=policy == "ask"
            )
            if problem is not None:
                self._finish_call(row_id, "invalid", problem, is_error=True, ms=0.0)
                self.emit("tool_result", problem, **meta, is_error=True, duration_ms=0.0)
                return problem
            assert tool is not None
            if tool.policy == "ask":
                self._wait(row_id, call.name, meta)
                return None
        else:
            row_id = waited.id
            decision = self._decision(row_id)
            if decision == "pending":  # queued again before anyone decided: wait on
                self.paused = Pause(row_id, call.name, self.until or utcnow())
                return None
            # A cancel that landed while the decision was read stops here, before any call.
            self.hooks.check_cancelled()
            if decision == "cancelled":
                raise CitelineError(f"the call to {call.name} was cancelled")
            self.live.put(self.run_id, self.conversation.id, pending=[])
            if decision != "approved":
                return self._refused(row_id, call.name, meta, timed_out=decision == "timed out")
            # What the person approved is what runs: the recorded arguments.
            call = ToolCall(id=call.id, name=call.name, arguments=waited.arguments)
            meta["arguments"] = call.arguments
            # The tool may have gone (its server removed) since the call was approved.
            problem = toolkit.problem(self.tools, call.name, call.arguments)
            if problem is not None:
                self._finish_call(row_id, "invalid", problem, is_error=True, ms=0.0)
                self.emit("tool_result", problem, **meta, is_error=True, duration_ms=0.0)
                return problem
            assert tool is not None
        return self._execute(row_id, call, tool, meta)

    def _execute(
        self, row_id: uuid.UUID, call: ToolCall, tool: toolkit.Tool, meta: dict[str, Any]
    ) -> str:
        """Run a checked (and, if it had to be, approved) call; what the model is told."""
        if not tool.built_in and not self._tool_allowed_now(call.name):
            told = (
                f"The tool {call.name} is over its limit of "
                f"{self.settings.assistant_tool_calls_per_minute} calls a minute; do without it."
            )
            self._finish_call(row_id, "limited", told, is_error=True, ms=0.0)
            self.emit("error", told, **meta)
            self.emit("tool_result", told, **meta, is_error=True, duration_ms=0.0)
            return told
        self.enter(RunState.tool_execution, f"calling {call.name}")
        started = time.perf_counter()
        truncated = False
        try:
            if tool.built_in:
                text, is_error = self._built_in(call)
            else:
                assert self.toolbox is not None
                result = self.toolbox.call(call.name, call.arguments, run_id=str(self.run_id))
                text, is_error, truncated = result.text, result.is_error, result.truncated
                if result.notice:
                    self.emit("error", result.notice, **meta)
        except CitelineError as exc:
            text, is_error = f"The tool {call.name} failed: {exc.detail}", True
            self.emit("error", text, **meta)
        ms = round((time.perf_counter() - started) * 1000, 1)
        if not is_error:
            self.results[call.id] = (call.name, text)
        self._finish_call(row_id, "error" if is_error else "done", text, is_error, ms, truncated)
        self.emit(
            "tool_result",
            text,
            **meta,
            is_error=is_error,
            duration_ms=ms,
            truncated=truncated,
        )
        return text

    def _wait(self, row_id: uuid.UUID, name: str, meta: dict[str, Any]) -> None:
        """Stop at a call that needs a person's approval (the job suspends)."""
        until = utcnow() + timedelta(seconds=self.settings.assistant_approval_timeout_seconds)
        self.enter(
            RunState.awaiting_approval, f"waiting for approval to call {name}", pending=[meta]
        )
        self.paused = Pause(row_id, name, until)

    def _decision(self, row_id: uuid.UUID) -> str:
        """After a pause, the waiting call's fate: approved, denied, pending, or timed out
        (nobody decided before the run's `until`: it is denied now)."""
        with unit_of_work(self.sessions) as session:
            status = str(
                session.scalar(
                    select(AssistantToolCall.status).where(AssistantToolCall.id == row_id)
                )
            )
            if status != "pending":
                return status
            # The database's clock, as the reaper's: a worker whose own clock lags would read
            # "pending" again and suspend anew at every sweep.
            if self.until is not None and session.scalar(select(func.now() < self.until)):
                return status
            # Guarded: an approval that lands now wins, and this attempt reads it.
            denied = session.execute(
                update(AssistantToolCall)
                .where(AssistantToolCall.id == row_id, AssistantToolCall.status == "pending")
                .values(status="denied")
                .returning(
                    AssistantToolCall.id, AssistantToolCall.name, AssistantToolCall.arguments
                )
            ).first()
            if denied is not None:
                seconds = self.settings.assistant_approval_timeout_seconds
                entry = decision_entry(
                    "system",
                    self.run,
                    denied,
                    approve=False,
                    reason=f"not approved within {seconds:g} s",
                )
                audit.add(session, entry)
                return "timed out"
            return str(
                session.scalar(
                    select(AssistantToolCall.status).where(AssistantToolCall.id == row_id)
                )
            )

    def _refused(
        self, row_id: uuid.UUID, name: str, meta: dict[str, Any], *, timed_out: bool
    ) -> str:
        """Tell the model (and the person) that a call was denied, or never approved."""
        extra: dict[str, Any] = {}
        if timed_out:
            seconds = self.settings.assistant_approval_timeout_seconds
            told = f"Nobody approved the call to {name} within {seconds:g} s; do without it."
            self.emit(
                "error", f"the call to {name} was not approved within {seconds:g} s: denied",
                **meta,
            )  # fmt: skip
            extra["timed_out"] = True
        else:
            told = f"The user did not allow the call to {name}; do without it."
        self._finish_call(row_id, "denied", told, is_error=True, ms=0.0)
        self.emit("tool_result", told, **meta, is_error=True, duration_ms=0.0, **extra)
        return told

    def _tool_allowed_now(self, name: str) -> bool:
        per_minute = self.settings.assistant_tool_calls_per_minute
        if per_minute == 0:
            return True
        storage = RedisStorage(
            "redis://", connection_pool=self.live.connection.connection_pool,
            key_prefix="citeline:limits",
        )  # fmt: skip
        limiter = SlidingWindowCounterRateLimiter(storage)
        key = ("assistant-tool", self.conversation.workspace_id, name)
        return bool(limiter.hit(RateLimitItemPerMinute(per_minute), *key))

    def still_waiting(self) -> bool:
        """Whether the call the run paused at still waits for a decision."""
        if self.paused is None:
            return False
        with self.sessions() as session:
            status = session.scalar(
                select(AssistantToolCall.status).where(
                    AssistantToolCall.id == self.paused.tool_call
                )
            )
        return status == "pending"

    # Built-in tools

    def _built_in(self, call: ToolCall) -> tuple[str, bool]:
        if call.name == toolkit.SEARCH:
            return self._search(call.arguments)
        return self._cite(call.arguments)

    def _search(self, arguments: dict[str, Any]) -> tuple[str, bool]:
        query = str(arguments["query"])
        named = arguments.get("knowledge_base")
        bases = [kb for kb, name in self.kb_names.items() if named in (None, name)]
        found: list[Passage] = []
        for kb in bases:
            hits = self.knowledge.search(kb, query, k=self.settings.assistant_search_passages)
            for passage in from_hits(hits):
                self.bases[passage.chunk_id] = kb
                found.append(passage)
        found.sort(key=lambda p: -p.score)
        found = found[: self.settings.assistant_search_passages]
        if not found:
            return "No passage matched that search.", False
        lines = []
        for passage in found:
            numbered = dataclasses.replace(passage, number=len(self.passages) + 1)
            self.passages.append(numbered)
            text = _SPACE.sub(" ", numbered.text)[:PASSAGE_CHARS]
            lines.append(
                f"[{numbered.number}] ({numbered.title}, passage {numbered.chunk_id}) {text}"
            )
        return "\n".join(lines), False

    def _cite(self, arguments: dict[str, Any]) -> tuple[str, bool]:
        source, quote = str(arguments["source"]).strip("[] "), str(arguments["quote"])
        wanted = _norm(quote)
        if source.isdigit() and 1 <= int(source) <= len(self.passages):
            passage = self.passages[int(source) - 1]
            if wanted in _norm(passage.text):
                return f"Cited: write [{passage.number}] after the sentence.", False
            return f"Passage [{source}] does not contain that quote word for word.", True
        if source in self.results:
            name, text = self.results[source]
            if wanted in _norm(text):
                marker = f"T{len(self.cited) + 1}"
                self.cited.append(
                    {"marker": marker, "tool_call_id": source, "tool": name, "quote": quote}
                )
                return f"Cited: write [{marker}] after the sentence.", False
            return f"The result of {source} does not contain that quote word for word.", True
        return f"No passage number or tool call id {source!r} in this conversation.", True

    # The end

    def _complete(self, final: str, steps: int) -> dict[str, Any]:
        final = final.strip() or "(the model wrote nothing)"
        citations, unsupported = self._citations(final)
        message_id = self._save_reply(final, citations)
        self.close(RunState.complete, steps, None)
        self.emit(
            "complete",
            final,
            citations=citations,
            unsupported=unsupported,
            message_id=str(message_id),
            steps=steps,
        )
        return {"state": "complete", "message_id": str(message_id), "steps": steps}

    def _fail(self, reason: str, steps: int) -> dict[str, Any]:
        self.state = RunState.error
        self.emit("error", reason)
        self.close(RunState.error, steps, reason)
        return {"state": "error", "error": reason, "steps": steps}

    def close(self, state: RunState, steps: int, error: str | None) -> None:
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(AssistantRun)
                .where(AssistantRun.id == self.run_id)
                .values(
                    state=state.value,
                    steps=steps,
                    error=error,
                    input_tokens=self.usage[0],
                    output_tokens=self.usage[1],
                    finished_at=utcnow(),
                )
            )
        self.state = state
        self.live.put(self.run_id, self.conversation.id, state=state.value, pending=[])

    def _citations(self, final: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Citations of the reply: document spans the answers' verifier finds support each
        claim, else a line of a tool's result that holds the claim's words; and the claims
        neither supports."""
        embedder = self.knowledge.embedder
        verified = verify(
            final, self.passages, embedder.embed, self.settings.answer_support_threshold
        )
        citations: list[dict[str, Any]] = []
        by_marker = {c.marker: c for c in verified.citations}
        for sentence in verified.sentences:
            for marker in sentence.markers:
                citation = by_marker[marker].as_json()
                citations.append(
                    {
                        "kind": "document",
                        **citation,
                        "knowledge_base_id": self.bases.get(
                            by_marker[marker].span.passage.chunk_id
                        ),
                        "sentence": sentence.text,
                    }
                )
        for cited in self.cited:
            citations.append({"kind": "tool", **cited, "sentence": None})
        unsupported: list[str] = []
        for sentence in verified.dropped:
            if sentence.dropped != "unsupported":
                continue
            found = self._tool_support(sentence.text)
            if found is None:
                unsupported.append(sentence.text)
            else:
                label = f"T{sum(c['kind'] == 'tool' for c in citations) + 1}"
                citations.append({"kind": "tool", "marker": label, **found})
        return citations, unsupported

    def _tool_support(self, sentence: str) -> dict[str, Any] | None:
        words = content_words(sentence)
        if not words:
            return None
        best: tuple[float, str, str, str] | None = None
        for call_id, (name, text) in self.results.items():
            if name == toolkit.SEARCH:
                continue  # passages are checked by the verifier
            for line in text.splitlines():
                share = len(words & content_words(line)) / len(words)
                if share >= TOOL_MATCH and (best is None or share > best[0]):
                    best = (share, call_id, name, line.strip()[:QUOTE_CHARS])
        if best is None:
            return None
        share, call_id, name, quote = best
        return {
            "tool_call_id": call_id,
            "tool": name,
            "quote": quote,
            "support": round(share, 4),
            "sentence": sentence,
        }

    # Pausing and going on

    def _pause(self, steps: int) -> dict[str, Any]:
        """Record what the next attempt needs to go on; the job suspends after this."""
        assert self.paused is not None
        checkpoint = {
            "turns": self.turns,
            "passages": [
                {**p.as_json(), "knowledge_base_id": self.bases.get(p.chunk_id)}
                for p in self.passages
            ],
            "cited": self.cited,
            "usage": self.usage,
            "tokens": self.tokens,
            "buffer": self.buffer,
            "until": self.paused.until.isoformat(),
        }
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(AssistantRun)
                .where(AssistantRun.id == self.run_id)
                .values(checkpoint=checkpoint, steps=steps)
            )
        return {"state": RunState.awaiting_approval.value, "steps": steps}

    def _restore(self) -> Resumed | None:
        """Where the last attempt paused: the model's messages up to the call that waited,
        its turn's step, that turn's calls from the waiting one on, and the waiting call's
        row; None for a run that has not paused."""
        with self.sessions() as session:
            checkpoint = session.scalar(
                select(AssistantRun.checkpoint).where(AssistantRun.id == self.run_id)
            )
            if checkpoint is None:
                return None
            rows = list(
                session.scalars(
                    select(AssistantToolCall)
                    .where(AssistantToolCall.run_id == self.run_id)
                    .order_by(AssistantToolCall.step, AssistantToolCall.created_at)
                )
            )
            session.expunge_all()
        for item in checkpoint["passages"]:
            passage = Passage.from_json(item)
            self.passages.append(passage)
            if item.get("knowledge_base_id"):
                self.bases[passage.chunk_id] = item["knowledge_base_id"]
        self.cited = list(checkpoint["cited"])
        self.usage = list(checkpoint["usage"])
        self.tokens = int(checkpoint["tokens"])
        self.buffer = str(checkpoint["buffer"])
        self.until = datetime.fromisoformat(checkpoint["until"])
        self.turns = list(checkpoint["turns"])
        by_step: dict[int, list[AssistantToolCall]] = defaultdict(list)
        for row in rows:
            by_step[row.step].append(row)
        messages = self._prompt()
        step = 0
        for turn in self.turns:
            step = int(turn["step"])
            calls = [ToolCall.model_validate(call) for call in turn["calls"]]
            messages.append(
                Message(role=MessageRole.assistant, content=turn["text"], tool_calls=calls)
            )
            recorded = _in_order(by_step.get(step, []), calls)
            for index, call in enumerate(calls):
                if index >= len(recorded) or recorded[index].result is None:
                    waiting = recorded[index] if index < len(recorded) else None
                    return messages, step, calls[index:], waiting
                result = str(recorded[index].result)
                messages.append(
                    Message(role=MessageRole.tool, content=result, tool_call_id=call.id)
                )
                if recorded[index].status == "done":
                    self.results[call.id] = (call.name, result)
        return messages, step, [], None

    # Records

    def _knowledge_bases(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for kb_id in self.conversation.knowledge_base_ids:
            try:
                names[kb_id] = self.knowledge.get(uuid.UUID(kb_id)).name
            except CitelineError:
                continue  # deleted since the conversation began
        return names

    def _prompt(self) -> list[Message]:
        system = SYSTEM
        if self.kb_names:
            system += " Knowledge bases: " + ", ".join(self.kb_names.values()) + "."
        if self.conversation.system_prompt:
            system += "\n\n" + self.conversation.system_prompt
        with self.sessions() as session:
            rows = list(
                session.scalars(
                    select(AssistantMessage)
                    .where(AssistantMessage.conversation_id == self.conversation.id)
                    .order_by(AssistantMessage.ordinal.desc())
                    .limit(2 * self.settings.assistant_history_turns + 1)
                )
            )
        rows.reverse()
        history = [
            Message(role=MessageRole(row.role), content=row.content)
            for row in rows
            if row.id != self.run.message_id
        ]
        asked = next(row for row in rows if row.id == self.run.message_id)
        return [Message.system(system), *history, Message.user(asked.content)]

    def _record(self, step: int, call: ToolCall, policy: str, status: str) -> uuid.UUID:
        row = AssistantToolCall(
            id=uuid.uuid4(),
            run_id=self.run_id,
            call_id=call.id[:100],
            step=step,
            name=call.name[:200],
            arguments=call.arguments,
            policy=policy,
            status=status,
            is_error=False,
            truncated=False,
        )
        with unit_of_work(self.sessions) as session:
            session.add(row)
        return row.id

    def _finish_call(
        self,
        row_id: uuid.UUID,
        status: str,
        result: str,
        is_error: bool,
        ms: float,
        truncated: bool = False,
    ) -> None:
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(AssistantToolCall)
                .where(AssistantToolCall.id == row_id, AssistantToolCall.status != "cancelled")
                .values(
                    status=status,
                    result=result,
                    is_error=is_error,
                    duration_ms=ms,
                    truncated=truncated,
                    finished_at=utcnow(),
                )
            )

    def _save_reply(self, text: str, citations: list[dict[str, Any]]) -> uuid.UUID:
        with unit_of_work(self.sessions) as session:
            last = session.scalar(
                select(func.max(AssistantMessage.ordinal)).where(
                    AssistantMessage.conversation_id == self.conversation.id
                )
            )
            message = AssistantMessage(
                id=uuid.uuid4(),
                conversation_id=self.conversation.id,
                run_id=self.run_id,
                ordinal=(last or 0) + 1,
                role="assistant",
                content=text,
                citations=citations,
            )
            session.add(message)
        return message.id


def _over_limit(limit: int) -> str:
    return (
        f"stopped after {limit} steps without a final answer (the step limit): the model "
        "kept calling tools; ask again more narrowly"
    )


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _in_order(rows: list[AssistantToolCall], calls: list[ToolCall]) -> list[AssistantToolCall]:
    """A turn's recorded calls in the order the model made them: by the model's call ids when
    they tell them apart, else as recorded."""
    by_id = {row.call_id: row for row in rows}
    if len(by_id) != len(rows) or len({call.id for call in calls}) != len(calls):
        return rows
    ordered = []
    for call in calls:
        row = by_id.get(call.id)
        if row is None:
            break
        ordered.append(row)
    return ordered

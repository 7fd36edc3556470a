"""A builder session's live state in Redis under `citeline:session:{id}`, kept for the TTL
after its last use; the database row is the permanent copy written at the same time."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis

from citeline.agent_builder.models import BuilderSession
from citeline.errors import ServiceUnavailable


def session_key(session_id: uuid.UUID) -> str:
    return f"citeline:session:{session_id}"


def lock_key(session_id: uuid.UUID) -> str:
    return f"citeline:session:{session_id}:lock"


@dataclass
class LiveState:
    id: str
    workspace_id: str
    owner: str | None
    status: str
    stage: str
    fields: dict[str, Any]
    suggested_tools: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    workflow: dict[str, Any] | None = None
    final_prompt: str | None = None
    tools_config: list[dict[str, Any]] | None = None
    created_at: str = ""
    last_active_at: str = ""
    completed_at: str | None = None

    @classmethod
    def of(cls, row: BuilderSession) -> LiveState:
        return cls(
            id=str(row.id),
            workspace_id=row.workspace_id,
            owner=row.owner,
            status=row.status,
            stage=row.stage,
            fields=dict(row.fields),
            suggested_tools=list(row.suggested_tools),
            history=list(row.history),
            workflow=row.workflow_json,
            final_prompt=row.final_prompt,
            tools_config=row.tools_config,
            created_at=row.created_at.isoformat(),
            last_active_at=row.last_active_at.isoformat(),
            completed_at=row.completed_at.isoformat() if row.completed_at else None,
        )

    def write_to(self, row: BuilderSession) -> None:
        row.status = self.status
        row.stage = self.stage
        row.fields = self.fields
        row.suggested_tools = self.suggested_tools
        row.history = self.history
        row.workflow_json = self.workflow
        row.final_prompt = self.final_prompt
        row.tools_config = self.tools_config
        row.last_active_at = datetime.fromisoformat(self.last_active_at)
        row.completed_at = datetime.fromisoformat(self.completed_at) if self.completed_at else None


class LiveStore:
    def __init__(self, connection: redis.Redis, ttl_seconds: int) -> None:
        self.connection = connection
        self.ttl = ttl_seconds

    def get(self, session_id: uuid.UUID) -> LiveState | None:
        try:
            raw = self.connection.get(session_key(session_id))
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis unavailable: {exc}") from exc
        if raw is None:
            return None
        return LiveState(**json.loads(raw))

    def put(self, state: LiveState) -> None:
        try:
            self.connection.set(
                session_key(uuid.UUID(state.id)), json.dumps(asdict(state)), ex=self.ttl
            )
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis unavailable: {exc}") from exc

    def delete(self, session_id: uuid.UUID) -> None:
        try:
            self.connection.delete(session_key(session_id), lock_key(session_id))
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis unavailable: {exc}") from exc

    def lock(self, session_id: uuid.UUID, seconds: float, token: str) -> bool:
        return bool(
            self.connection.set(lock_key(session_id), token, nx=True, px=int(seconds * 1000))
        )

    def unlock(self, session_id: uuid.UUID, token: str) -> None:
        key = lock_key(session_id)
        if self.connection.get(key) == token.encode():
            self.connection.delete(key)

"""A run's live state in Redis, with a TTL: its state, the tool calls waiting for approval,
and the last part of the text written. Any API process reads it; when it has expired the
run's record in PostgreSQL answers instead."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis

BUFFER_CHARS = 2000


def run_key(run_id: uuid.UUID) -> str:
    return f"citeline:assistant:run:{run_id}"


def session_key(conversation_id: uuid.UUID) -> str:
    return f"citeline:assistant:session:{conversation_id}"


class LiveState:
    def __init__(self, connection: redis.Redis, ttl_seconds: int) -> None:
        self.connection = connection
        self.ttl = ttl_seconds

    def get(self, run_id: uuid.UUID) -> dict[str, Any] | None:
        raw = self.connection.get(run_key(run_id))
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    def put(self, run_id: uuid.UUID, conversation_id: uuid.UUID, **fields: Any) -> None:
        """Merge `fields` into the run's state and renew its TTL (and the session's)."""
        current = self.get(run_id) or {"run_id": str(run_id), "pending": [], "buffer": ""}
        current.update(fields)
        current["conversation_id"] = str(conversation_id)
        current["buffer"] = current.get("buffer", "")[-BUFFER_CHARS:]
        pipe = self.connection.pipeline()
        pipe.set(run_key(run_id), json.dumps(current), ex=self.ttl)
        pipe.set(
            session_key(conversation_id),
            json.dumps({"run_id": str(run_id), "state": current.get("state")}),
            ex=self.ttl,
        )
        pipe.execute()

    def session(self, conversation_id: uuid.UUID) -> dict[str, Any] | None:
        raw = self.connection.get(session_key(conversation_id))
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    def forget(self, conversation_id: uuid.UUID, run_ids: list[uuid.UUID]) -> None:
        keys = [session_key(conversation_id), *(run_key(r) for r in run_ids)]
        self.connection.delete(*keys)

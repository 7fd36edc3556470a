"""What a completed builder session produced, for the agent registry (which sits below this
domain and reaches it only through the composition root, as its `BuilderSessions`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from citeline.agent_builder.models import BuilderSession
from citeline.agent_builder.stages import SessionStatus
from citeline.auth import Access
from citeline.errors import Conflict, NotFound


class CompletedSessions:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def completed_agent(self, access: Access, session_id: str) -> Mapping[str, Any]:
        """The agent a session built: prompt, workflow, tools and a description; NotFound for
        a session the caller cannot see, Conflict for one not completed."""
        try:
            key = uuid.UUID(session_id)
        except ValueError:
            raise NotFound(f"builder session {session_id} not found") from None
        with self.sessions() as session:
            row = session.get(BuilderSession, key)
            if row is None or not access.sees(row.workspace_id):
                raise NotFound(f"builder session {session_id} not found")
            if row.status != SessionStatus.completed:
                raise Conflict(
                    f"builder session {session_id} is {row.status}; finish it before registering "
                    "its agent"
                )
            fields = row.fields
            goals: list[str] = fields["goals"] if isinstance(fields.get("goals"), list) else []
            kind = str(fields.get("agent_type", "agent")).replace("_", " ")
            return {
                "system_prompt": row.final_prompt or "",
                "workflow": row.workflow_json,
                "tools": [tool["name"] for tool in row.tools_config or []],
                "tools_config": row.tools_config or [],
                "description": f"{kind}: {'; '.join(goals)}"[:500],
            }

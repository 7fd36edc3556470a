"""The audit log: who signed in or failed to, made or revoked keys, changed roles, deleted
things or ran tools; appended by the services that do those things, read by admins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth.access import Access, Role
from citeline.auth.models import AuditEvent
from citeline.db.base import utcnow
from citeline.db.engine import Statements, unit_of_work
from citeline.observability.logs import request_id_var

MAX_PAGE = 500


@dataclass(frozen=True)
class Entry:
    action: str  # "auth.sign_in", "api_key.create", "member.role", "knowledge_base.delete", ...
    actor: str
    workspace_id: str | None = None
    target: str | None = None
    outcome: str = "ok"  # ok | denied | failed
    client: str | None = None
    detail: dict[str, Any] | None = None
    # When it happened and in which request, if not now and the current one (an entry written
    # later, in a batch, carries its own).
    at: datetime | None = None
    request_id: str | None = None


def add(session: Session, entry: Entry) -> None:
    """Record `entry` in the caller's transaction, so it stands or falls with the change."""
    session.add(
        AuditEvent(
            actor=entry.actor,
            workspace_id=entry.workspace_id,
            action=entry.action,
            target=entry.target,
            outcome=entry.outcome,
            client=entry.client,
            request_id=request_id_var.get() or None,
            detail=entry.detail or {},
        )
    )


def record(sessions: sessionmaker[Session], entry: Entry) -> None:
    """Record `entry` on its own (a refused sign-in has no other change to join)."""
    with unit_of_work(sessions) as session:
        add(session, entry)


def by(access: Access, action: str, target: str, **detail: Any) -> Entry:
    return Entry(action, access.subject, access.workspace_id, target, detail=detail or None)


def query(
    sessions: sessionmaker[Session],
    access: Access,
    *,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Newest first. Workspace admins see their workspace's events; instance admins all."""
    access.require(Role.admin, "read the audit log")
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, MAX_PAGE))
    if not access.instance_admin:
        statement = statement.where(AuditEvent.workspace_id == access.workspace_id)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    if actor is not None:
        statement = statement.where(AuditEvent.actor == actor)
    if since is not None:
        statement = statement.where(AuditEvent.at >= since)
    if before_id is not None:
        statement = statement.where(AuditEvent.id < before_id)
    with sessions() as session:
        return list(session.scalars(statement))


def append(statements: Statements, entry: Entry | Sequence[Entry]) -> None:
    """Record `entry` (or several, in one multi-row INSERT) on its own in one autocommitted
    statement: the cheap path for events written at a high rate beside the work they record
    (MCP tool calls, batched by `citeline.mcp.auditing`)."""
    entries = [entry] if isinstance(entry, Entry) else list(entry)
    if not entries:
        return
    request_id = request_id_var.get() or None
    now = utcnow()
    statements.run(
        insert(AuditEvent),
        [
            {
                "at": item.at or now,
                "actor": item.actor,
                "workspace_id": item.workspace_id,
                "action": item.action,
                "target": item.target,
                "outcome": item.outcome,
                "client": item.client,
                "request_id": item.request_id or request_id,
                "detail": item.detail or {},
            }
            for item in entries
        ],
    )

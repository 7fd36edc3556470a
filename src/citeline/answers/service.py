"""Asking: validate the question, open or continue a conversation, enqueue the answer job;
and reading back its status, result and the conversation's turns."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from citeline.answers.job import ANSWER_KIND
from citeline.answers.models import Conversation, Turn
from citeline.auth import Role
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.jobs.models import Job, JobState
from citeline.jobs.service import JobService
from citeline.knowledge import KnowledgeBase, KnowledgeService, check_query

# What /job-status reports: a scheduled retry is still waiting to run, as far as a client cares.
STATUS = {JobState.scheduled.value: "queued"}


class AnswerService:
    def __init__(
        self, sessions: sessionmaker[Session], jobs: JobService, knowledge: KnowledgeService
    ) -> None:
        self.sessions = sessions
        self.jobs = jobs
        self.knowledge = knowledge
        self.access = knowledge.access

    def ask(
        self,
        query: str,
        knowledge_base: str | None,
        *,
        conversation_id: uuid.UUID | None = None,
        options: dict[str, Any] | None = None,
        owner: str | None = None,
        new_conversation: bool = True,
    ) -> tuple[Job, uuid.UUID | None]:
        """Enqueue an answer; the job and the conversation it belongs to."""
        query, kb, conversation_id = self.prepare(
            query, knowledge_base, conversation_id, owner=owner, new_conversation=new_conversation
        )
        job = self.jobs.enqueue(
            ANSWER_KIND,
            {
                "query": query,
                "knowledge_base_id": str(kb.id),
                "conversation_id": str(conversation_id) if conversation_id else None,
                "options": options or {},
            },
            owner=owner,
            workspace_id=kb.workspace_id,
        )
        return job, conversation_id

    def prepare(
        self,
        query: str,
        knowledge_base: str | None,
        conversation_id: uuid.UUID | None,
        *,
        owner: str | None = None,
        new_conversation: bool = True,
    ) -> tuple[str, KnowledgeBase, uuid.UUID | None]:
        """Check a question before answering it: the cleaned query, the knowledge base, and
        the conversation (new unless one is given or `new_conversation` is false). Without a
        knowledge base the question goes to the default one."""
        query = check_query(query, field="query")
        kb = (
            self.knowledge.default()
            if knowledge_base is None
            else self.knowledge.get(knowledge_base)
        )
        if kb.chunk_count == 0:
            raise Conflict(
                f"knowledge base {kb.name!r} has no indexed documents yet; ingest some first"
            )
        if conversation_id is not None:
            conversation = self.conversation(conversation_id)
            if conversation.knowledge_base_id != kb.id:
                raise InvalidInput(
                    "that conversation is about another knowledge base", field="conversation_id"
                )
        elif new_conversation:
            with unit_of_work(self.sessions) as session:
                created = Conversation(
                    knowledge_base_id=kb.id,
                    workspace_id=kb.workspace_id,
                    owner=owner or self.access.subject,
                    title=query[:200],
                )
                session.add(created)
                session.flush()
                conversation_id = created.id
        return query, kb, conversation_id

    def status(self, job_id: uuid.UUID) -> dict[str, Any]:
        job = self._answer_job(job_id)
        timings = None
        if isinstance(job.result, dict):
            timings = job.result.get("timings")
        return {
            "job_id": str(job.id),
            "status": STATUS.get(job.state, job.state),
            "progress": job.progress,
            "error": job.error,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "timings": timings,
        }

    def result(self, job_id: uuid.UUID) -> dict[str, Any]:
        job = self._answer_job(job_id)
        if job.state != JobState.finished.value:
            raise Conflict(
                f"the answer is {STATUS.get(job.state, job.state)}; it exists once finished"
            )
        result: dict[str, Any] = dict(job.result or {})
        result["result"] = result.get("answer", "")
        return result

    def conversation(self, conversation_id: uuid.UUID) -> Conversation:
        with self.sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or not self.access.sees(conversation.workspace_id):
                raise NotFound(f"no conversation {conversation_id}")
            session.expunge(conversation)
            return conversation

    def conversations(
        self, *, title: str | None = None, limit: int = 50
    ) -> list[tuple[Conversation, int]]:
        """The caller's conversations in this workspace, newest activity first, each with its
        number of turns; `title` keeps those whose title contains it (any case)."""
        turn_count = (
            select(func.count(Turn.id))
            .where(Turn.conversation_id == Conversation.id)
            .scalar_subquery()
        )
        query = select(Conversation, turn_count).order_by(Conversation.updated_at.desc())
        if not self.access.is_system:
            query = query.where(
                Conversation.workspace_id == self.access.workspace_id,
                Conversation.owner == self.access.subject,
            )
        if title:
            escaped = title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(Conversation.title.ilike(f"%{escaped}%", escape="\\"))
        with self.sessions() as session:
            rows = [(row[0], int(row[1])) for row in session.execute(query.limit(limit))]
            session.expunge_all()
            return rows

    def rename(self, conversation_id: uuid.UUID, title: str) -> Conversation:
        title = title.strip()
        if not title:
            raise InvalidInput("a conversation needs a title", field="title")
        self._owned(conversation_id, "rename")
        with unit_of_work(self.sessions) as session:
            conversation = session.get_one(Conversation, conversation_id)
            conversation.title = title[:200]
            conversation.updated_at = utcnow()
        return self.conversation(conversation_id)

    def delete_conversation(self, conversation_id: uuid.UUID) -> None:
        self._owned(conversation_id, "delete")
        with unit_of_work(self.sessions) as session:
            session.execute(delete(Conversation).where(Conversation.id == conversation_id))

    def _owned(self, conversation_id: uuid.UUID, verb: str) -> Conversation:
        """The conversation, if the caller may change it: its owner, or a workspace admin."""
        conversation = self.conversation(conversation_id)
        self.access.require(Role.member, f"{verb} conversations")
        if conversation.owner != self.access.subject and not self.access.role >= Role.admin:
            raise NotFound(f"no conversation {conversation_id}")
        return conversation

    def turns(self, conversation_id: uuid.UUID) -> list[Turn]:
        self.conversation(conversation_id)
        with self.sessions() as session:
            turns = list(
                session.scalars(
                    select(Turn)
                    .where(Turn.conversation_id == conversation_id)
                    .order_by(Turn.ordinal)
                )
            )
            session.expunge_all()
            return turns

    def _answer_job(self, job_id: uuid.UUID) -> Job:
        job = self.jobs.get(job_id)
        if job.kind != ANSWER_KIND:
            raise NotFound(f"no answer job {job_id}")
        return job

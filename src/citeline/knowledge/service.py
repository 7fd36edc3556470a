"""Knowledge bases and their documents: create, upload, list, delete, search."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access, Role, audit
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, InvalidInput, NotFound, UpstreamError
from citeline.jobs.service import JobService
from citeline.knowledge import index
from citeline.knowledge.models import Chunk, Document, DocumentStatus, KnowledgeBase
from citeline.knowledge.parsing import InvalidDocument, media_type_for
from citeline.knowledge.retrieval import Filters, Hit, search
from citeline.llm import Embedder
from citeline.observability.tracing import tracer
from citeline.settings import Settings
from citeline.storage import ObjectStore, ObjectStream

log = logging.getLogger(__name__)

INGEST_KIND = "knowledge.ingest"
MAX_QUERY_CHARS = 2000
COPY_BLOCK = 1 << 20
PREVIEW_CHARS = 200_000  # a preview shows this much of a document's text


class KnowledgeDeps(Protocol):
    """What the knowledge jobs need of the process they run in (the composition root
    provides it)."""

    @property
    def store(self) -> ObjectStore: ...


@dataclass(frozen=True)
class Upload:
    """A file received into scratch space, not yet attached to a document."""

    source: str  # the name or relative path the user gave
    path: Path
    size: int
    sha256: str

    @classmethod
    def receive(
        cls, stream: BinaryIO, source: str, scratch: Path, limit: int | None = None
    ) -> Upload:
        """Copy `stream` into scratch space, hashing as it goes; past `limit` bytes it stops
        (the size then says so, and the service refuses the file)."""
        target = scratch / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        with target.open("wb") as out:
            while block := stream.read(COPY_BLOCK):
                size += len(block)
                if limit is not None and size > limit:
                    break
                digest.update(block)
                out.write(block)
        return cls(source, target, size, digest.hexdigest())

    @classmethod
    def copy_of(cls, path: Path, source: str, scratch: Path) -> Upload:
        """Stage a local file (CLI, scripts) the way the API stages a received one."""
        with path.open("rb") as stream:
            return cls.receive(stream, source, scratch)


@dataclass(frozen=True)
class UploadOutcome:
    source: str
    status: str  # queued | unchanged | rejected
    document_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    error: str | None = None


class KnowledgeService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: JobService,
        store: ObjectStore,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        access: Access | None = None,
    ) -> None:
        self.sessions = sessions
        self.jobs = jobs
        self.store = store
        self.settings = settings
        self._embedder = embedder
        self.access = access or Access.system()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from citeline.llm import embedder_for

            self._embedder = embedder_for(self.settings)
        return self._embedder

    # knowledge bases

    def create(
        self, name: str, description: str = "", *, workspace_id: str | None = None
    ) -> KnowledgeBase:
        """A new, empty knowledge base in the caller's workspace (the system may name one)."""
        self.access.require(Role.member, "create knowledge bases")
        if not self.access.is_system or workspace_id is None:
            workspace_id = self.access.owned_workspace()
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("the name must be 1 to 200 characters", field="name")
        embedder = self.embedder
        kb = KnowledgeBase(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            name=name,
            description=description,
            embedding_model=embedder.name,
            embedding_dim=embedder.dim,
            chunk_tokens=self.settings.chunk_tokens,
            chunk_overlap=self.settings.chunk_overlap,
            chunk_count=0,
            total_terms=0,
        )
        try:
            with unit_of_work(self.sessions) as session:
                session.add(kb)
                session.flush()
                index.create_vector_index(session, kb.id, kb.embedding_dim)
        except IntegrityError:
            raise Conflict(f"a knowledge base named {name!r} already exists") from None
        return kb

    def all(self) -> list[KnowledgeBase]:
        with self.sessions() as session:
            statement = select(KnowledgeBase).order_by(KnowledgeBase.name)
            if not self.access.is_system:
                statement = statement.where(KnowledgeBase.workspace_id == self.access.workspace_id)
            return list(session.scalars(statement))

    def all_with_counts(self) -> list[tuple[KnowledgeBase, dict[str, int]]]:
        """Every knowledge base the caller may see, with its documents by status: one
        grouped query for all of them, not one per knowledge base."""
        bases = self.all()
        counts: dict[uuid.UUID, dict[str, int]] = {kb.id: {} for kb in bases}
        if not bases:
            return []
        with self.sessions() as session:
            rows = session.execute(
                select(Document.knowledge_base_id, Document.status, func.count())
                .where(Document.knowledge_base_id.in_(list(counts)))
                .group_by(Document.knowledge_base_id, Document.status)
            ).all()
        for kb_id, status, count in rows:
            counts[kb_id][status] = count
        return [(kb, counts[kb.id]) for kb in bases]

    def get(self, ref: uuid.UUID | str) -> KnowledgeBase:
        """By id, or by name."""
        with self.sessions() as session:
            kb = None
            try:
                kb = session.get(KnowledgeBase, uuid.UUID(str(ref)))
            except ValueError:
                statement = select(KnowledgeBase).where(KnowledgeBase.name == str(ref))
                if not self.access.is_system:
                    statement = statement.where(
                        KnowledgeBase.workspace_id == self.access.workspace_id
                    )
                kb = session.scalars(statement).first()
            if kb is None or not self.access.sees(kb.workspace_id):
                raise NotFound(f"knowledge base {ref} not found")
            return kb

    def default(self) -> KnowledgeBase:
        """Where a question that names no knowledge base goes: the configured default
        (CITELINE_DEFAULT_KNOWLEDGE_BASE), else the workspace's only knowledge base."""
        configured = self.settings.default_knowledge_base
        if configured:
            return self.get(configured)
        bases = self.all()
        if len(bases) == 1:
            return bases[0]
        if not bases:
            raise Conflict("this workspace has no knowledge base yet: create one and add documents")
        names = ", ".join(repr(kb.name) for kb in bases)
        raise Conflict(
            f"name a knowledge base: this workspace has several ({names}) and no default "
            "(CITELINE_DEFAULT_KNOWLEDGE_BASE)"
        )

    def delete(self, ref: uuid.UUID | str) -> None:
        kb = self.get(ref)
        self.access.require(Role.admin, "delete knowledge bases")
        with unit_of_work(self.sessions) as session:
            index.drop_vector_index(session, kb.id)
            index.remove_knowledge_base_postings(session, kb.id)
            session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb.id))
            audit.add(session, self._audit("knowledge_base.delete", f"kb:{kb.id}", kb, kb.name))
        try:
            self.store.delete_prefix(str(kb.id))
        except UpstreamError as exc:
            _left_behind(f"{kb.id}/", exc)

    # documents

    def add(
        self,
        ref: uuid.UUID | str,
        uploads: Sequence[Upload],
        *,
        owner: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[UploadOutcome]:
        """Attach uploaded files; each supported, changed file gets its own ingestion job.
        The scratch files are removed whatever happens."""
        try:
            kb = self.get(ref)
            self.access.require(Role.member, "upload documents")
            return [self._add_one(kb, upload, owner, metadata) for upload in uploads]
        finally:
            for upload in uploads:
                upload.path.unlink(missing_ok=True)

    def _add_one(
        self, kb: KnowledgeBase, upload: Upload, owner: str | None, metadata: dict[str, Any] | None
    ) -> UploadOutcome:
        source = _clean_source(upload.source)
        try:
            if not source:
                raise InvalidDocument("the file has no name")
            media_type = media_type_for(source)
            if upload.size > self.settings.max_upload_bytes:
                raise InvalidDocument(
                    f"the file is {upload.size / 2**20:.1f} MiB, over the "
                    f"{self.settings.max_upload_bytes / 2**20:.0f} MiB limit"
                )
            if upload.size == 0:
                raise InvalidDocument("the file is empty")
        except InvalidDocument as exc:
            return UploadOutcome(upload.source, "rejected", error=exc.detail)
        digest = upload.sha256
        with unit_of_work(self.sessions) as session:
            document = session.scalars(
                select(Document)
                .where(Document.knowledge_base_id == kb.id, Document.source == source)
                .with_for_update()
            ).first()
            if document is not None and metadata is not None:
                document.metadata_ = metadata
            if (
                document is not None
                and document.content_hash == digest
                and document.upload_hash is None
            ):
                return UploadOutcome(source, "unchanged", document.id, None)
            if document is None:
                document = Document(
                    id=uuid.uuid4(),
                    knowledge_base_id=kb.id,
                    source=source,
                    filename=PurePath(source).name,
                    media_type=media_type,
                    metadata_=metadata or {},
                    chunk_count=0,
                )
                session.add(document)
            key = f"{kb.id}/{document.id}/{digest}{PurePath(source).suffix.lower()}"
            # Inside the transaction: if the store fails, no row points at a missing file.
            self.store.put_file(key, upload.path, content_type=media_type)
            document.upload_hash = digest
            document.upload_key = key
            document.upload_size = upload.size
            document.media_type = media_type
            document.status = DocumentStatus.queued.value
            document.error = None
            session.flush()
            document_id = document.id
        job = self.jobs.enqueue(
            INGEST_KIND,
            {"document_id": str(document_id)},
            owner=owner,
            workspace_id=kb.workspace_id,
        )
        with unit_of_work(self.sessions) as session:
            session.get_one(Document, document_id).job_id = job.id
        return UploadOutcome(source, "queued", document_id, job.id)

    def reindex(self, ref: uuid.UUID | str, *, owner: str | None = None) -> list[uuid.UUID]:
        """Re-chunk and re-embed every document with the current embedder and chunk settings."""
        kb = self.get(ref)
        self.access.require(Role.admin, "re-index knowledge bases")
        embedder = self.embedder
        with unit_of_work(self.sessions) as session:
            locked = index.lock_knowledge_base(session, kb.id)
            index.drop_vector_index(session, kb.id)
            locked.embedding_model, locked.embedding_dim = embedder.name, embedder.dim
            locked.chunk_tokens = self.settings.chunk_tokens
            locked.chunk_overlap = self.settings.chunk_overlap
            index.create_vector_index(session, kb.id, embedder.dim)
            documents = session.scalars(
                select(Document).where(
                    Document.knowledge_base_id == kb.id, Document.storage_key.is_not(None)
                )
            ).all()
            for document in documents:
                document.upload_key = document.storage_key
                document.upload_hash = document.content_hash
                document.upload_size = document.size_bytes
                document.status = DocumentStatus.queued.value
            document_ids = [document.id for document in documents]
        job_ids = []
        for document_id in document_ids:
            job = self.jobs.enqueue(
                INGEST_KIND,
                {"document_id": str(document_id)},
                owner=owner,
                workspace_id=kb.workspace_id,
            )
            job_ids.append(job.id)
        return job_ids

    def documents(self, ref: uuid.UUID | str) -> list[Document]:
        kb = self.get(ref)
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Document)
                    .where(Document.knowledge_base_id == kb.id)
                    .order_by(Document.source)
                )
            )

    def document(self, ref: uuid.UUID | str, document_id: uuid.UUID) -> Document:
        return self._document(self.get(ref), document_id)

    def _document(self, kb: KnowledgeBase, document_id: uuid.UUID) -> Document:
        with self.sessions() as session:
            document = session.get(Document, document_id)
            if document is None or document.knowledge_base_id != kb.id:
                raise NotFound(f"document {document_id} not found in knowledge base {kb.name!r}")
            return document

    def original(
        self, ref: uuid.UUID | str, document_id: uuid.UUID
    ) -> tuple[Document, ObjectStream]:
        """The document and its uploaded file, opened for streaming (close it when done)."""
        document = self.document(ref, document_id)
        key = document.storage_key or document.upload_key
        if key is None:
            raise NotFound(f"document {document_id} has no stored file")
        try:
            return document, self.store.open(key)
        except NotFound:
            raise NotFound(f"the original file of document {document_id} is missing") from None

    def delete_document(self, ref: uuid.UUID | str, document_id: uuid.UUID) -> None:
        kb = self.get(ref)
        document = self._document(kb, document_id)
        self.access.require(Role.member, "delete documents")
        with unit_of_work(self.sessions) as session:
            index.lock_knowledge_base(session, document.knowledge_base_id)
            index.remove_document_chunks(session, document.knowledge_base_id, document.id)
            session.execute(delete(Document).where(Document.id == document.id))
            target = f"document:{document.id}"
            audit.add(session, self._audit("document.delete", target, kb, document.source))
        for key in {document.storage_key, document.upload_key} - {None}:
            try:
                self.store.delete(str(key))
            except UpstreamError as exc:
                _left_behind(str(key), exc)
        if document.job_id is not None and document.status in ("queued", "processing"):
            try:
                self.jobs.cancel(document.job_id, "document deleted")
            except (Conflict, NotFound):
                log.info("ingestion job had already ended", extra={"job": str(document.job_id)})

    def preview(
        self, ref: uuid.UUID | str, document_id: uuid.UUID, *, limit: int = PREVIEW_CHARS
    ) -> tuple[Document, list[Chunk], bool]:
        """The indexed document (its text cut at `limit` characters), its chunks there, and
        whether the text was cut."""
        document = self.document(ref, document_id)
        if document.text is None:
            if document.status == DocumentStatus.failed.value:
                raise Conflict(f"{document.source} could not be read: {document.error}")
            raise Conflict(
                f"{document.source} is still being indexed; its preview is ready when it is"
            )
        with self.sessions() as session:
            chunks = list(
                session.scalars(
                    select(Chunk)
                    .where(Chunk.document_id == document.id, Chunk.start < limit)
                    .order_by(Chunk.ordinal)
                )
            )
            session.expunge_all()
        truncated = len(document.text) > limit
        document.text = document.text[:limit]
        return document, chunks, truncated

    def retry(self, ref: uuid.UUID | str, document_id: uuid.UUID) -> Document:
        """Ingest a failed document's last upload again."""
        kb = self.get(ref)
        self.access.require(Role.member, "retry documents")
        with unit_of_work(self.sessions) as session:
            document = session.get(Document, document_id, with_for_update=True)
            if document is None or document.knowledge_base_id != kb.id:
                raise NotFound(f"document {document_id} not found in knowledge base {kb.name!r}")
            if document.status != DocumentStatus.failed.value or document.upload_key is None:
                raise Conflict(
                    f"{document.source} is {document.status}: only a failed document can be retried"
                )
            document.status = DocumentStatus.queued.value
            document.error = None
        job = self.jobs.enqueue(
            INGEST_KIND, {"document_id": str(document_id)}, workspace_id=kb.workspace_id
        )
        with unit_of_work(self.sessions) as session:
            session.get_one(Document, document_id).job_id = job.id
        return self._document(kb, document_id)

    def _audit(self, action: str, target: str, kb: KnowledgeBase, name: str) -> audit.Entry:
        return audit.Entry(
            action, self.access.subject, kb.workspace_id, target, detail={"name": name}
        )

    def count_documents(self, ref: uuid.UUID | str) -> dict[str, int]:
        kb = self.get(ref)
        with self.sessions() as session:
            rows = session.execute(
                select(Document.status, func.count())
                .where(Document.knowledge_base_id == kb.id)
                .group_by(Document.status)
            ).all()
        return {status: count for status, count in rows}

    # search

    def search(
        self,
        ref: uuid.UUID | str,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        filters: Filters | None = None,
    ) -> list[Hit]:
        query = check_query(query, field="q")
        if mode not in ("hybrid", "keyword", "dense"):
            raise InvalidInput("mode must be hybrid, keyword or dense", field="mode")
        kb = self.get(ref)
        if kb.embedding_model != self.embedder.name:
            raise Conflict(
                f"knowledge base {kb.name!r} was embedded with {kb.embedding_model}, but this "
                f"server uses {self.embedder.name}; run `citeline reindex --kb {kb.name}`"
            )
        attributes = {"citeline.knowledge_base": str(kb.id), "citeline.search.mode": mode}
        with (
            tracer.start_as_current_span("knowledge.search", attributes=attributes) as span,
            unit_of_work(self.sessions) as session,
        ):
            hits = search(
                session, kb, self.embedder, query, k=k, mode=mode, filters=filters or Filters()
            )
            span.set_attribute("citeline.search.hits", len(hits))
            return hits


def check_query(query: str, *, field: str) -> str:
    """The query without surrounding whitespace; empty or over-long ones are refused."""
    query = query.strip()
    if not query:
        raise InvalidInput("the query is empty", field=field)
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(
            f"the query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}", field=field
        )
    return query


def _left_behind(key: str, exc: UpstreamError) -> None:
    """The rows are gone but the store failed to delete their files: say which, so that an
    operator can remove them (the deletion itself stands)."""
    log.error(
        "stored files were left behind after a deletion",
        extra={"key": key, "error": exc.detail},
    )


def _clean_source(source: str) -> str:
    parts = [p for p in PurePath(source.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    return "/".join(parts)[:1000]


def hit_json(hit: Hit) -> dict[str, Any]:
    details = hit.details
    return {
        "chunk_id": str(hit.chunk_id),
        "document_id": str(details.get("document_id")),
        "title": details.get("title"),
        "source": details.get("source"),
        "heading_path": details.get("heading_path") or [],
        "page": details.get("page"),
        "start": details.get("start"),
        "end": details.get("end"),
        "text": details.get("text"),
        "score": hit.score,
        "ranks": hit.ranks,
        "scores": hit.scores,
    }

"""Knowledge base API: bases, document upload and download, search."""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from citeline.api.deps import KnowledgeServiceDep, SettingsDep
from citeline.errors import InvalidInput, PayloadTooLarge
from citeline.knowledge.parsing import SUPPORTED_SUFFIXES
from citeline.knowledge.retrieval import Filters
from citeline.knowledge.schemas import (
    DocumentList,
    DocumentOut,
    DocumentPreview,
    FormatList,
    KnowledgeBaseIn,
    KnowledgeBaseList,
    KnowledgeBaseOut,
    PreviewChunk,
    ReindexOut,
    SearchHit,
    SearchResponse,
    UploadResponse,
    UploadResult,
)
from citeline.knowledge.service import Upload, hit_json
from citeline.knowledge.storage import scratch_dir
from citeline.storage.http import download

router = APIRouter(prefix="/v1/knowledge-bases", tags=["knowledge"])

MAX_FILES_PER_REQUEST = 1000


@router.post("", status_code=status.HTTP_201_CREATED)
def create_knowledge_base(
    body: KnowledgeBaseIn, knowledge: KnowledgeServiceDep
) -> KnowledgeBaseOut:
    return KnowledgeBaseOut.of(knowledge.create(body.name, body.description))


@router.get("")
def list_knowledge_bases(knowledge: KnowledgeServiceDep) -> KnowledgeBaseList:
    return KnowledgeBaseList(
        knowledge_bases=[
            KnowledgeBaseOut.of(kb, counts) for kb, counts in knowledge.all_with_counts()
        ]
    )


@router.get("/formats")
def supported_formats() -> FormatList:
    """The file types ingestion reads (by file name suffix)."""
    return FormatList(suffixes=list(SUPPORTED_SUFFIXES))


@router.get("/{kb_id}")
def get_knowledge_base(kb_id: uuid.UUID, knowledge: KnowledgeServiceDep) -> KnowledgeBaseOut:
    return KnowledgeBaseOut.of(knowledge.get(kb_id))


@router.delete("/{kb_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_knowledge_base(kb_id: uuid.UUID, knowledge: KnowledgeServiceDep) -> Response:
    knowledge.delete(kb_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{kb_id}/reindex", status_code=status.HTTP_202_ACCEPTED)
def reindex_knowledge_base(kb_id: uuid.UUID, knowledge: KnowledgeServiceDep) -> ReindexOut:
    """Re-chunk and re-embed every document with the current embedder and chunk settings:
    one ingestion job per document (admins)."""
    return ReindexOut(job_ids=knowledge.reindex(kb_id))


@router.post(
    "/{kb_id}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    responses={413: {"description": "the request is over the size limit"}},
)
async def upload_documents(
    kb_id: uuid.UUID, request: Request, knowledge: KnowledgeServiceDep, settings: SettingsDep
) -> UploadResponse:
    """Multipart upload of one or more files (field `files`), with an optional JSON object
    `metadata` stored on each document for filtering; one ingestion job per file."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > settings.max_request_bytes:
        raise PayloadTooLarge(
            f"the request is {declared / 2**20:.0f} MiB, over the "
            f"{settings.max_request_bytes / 2**20:.0f} MiB limit"
        )
    knowledge.get(kb_id)
    form = await request.form(max_files=MAX_FILES_PER_REQUEST)
    try:
        files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
        if not files:
            raise InvalidInput(
                "send one or more files in the multipart field `files`", field="files"
            )
        metadata = _metadata(form.get("metadata"))
        scratch = scratch_dir(settings.data_path / "files")
        uploads = []
        for item in files:
            item.file.seek(0)
            uploads.append(
                Upload.receive(item.file, item.filename or "", scratch, settings.max_upload_bytes)
            )
    finally:
        await form.close()
    outcomes = await run_in_threadpool(partial(knowledge.add, kb_id, uploads, metadata=metadata))
    results = [UploadResult(**outcome.__dict__) for outcome in outcomes]
    return UploadResponse(documents=results, job_ids=[r.job_id for r in results if r.job_id])


def _metadata(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"metadata is not JSON: {exc}", field="metadata") from None
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    return value


@router.get("/{kb_id}/documents")
def list_documents(kb_id: uuid.UUID, knowledge: KnowledgeServiceDep) -> DocumentList:
    return DocumentList(documents=[DocumentOut.of(d) for d in knowledge.documents(kb_id)])


@router.get("/{kb_id}/documents/{document_id}")
def get_document(
    kb_id: uuid.UUID, document_id: uuid.UUID, knowledge: KnowledgeServiceDep
) -> DocumentOut:
    return DocumentOut.of(knowledge.document(kb_id, document_id))


@router.get(
    "/{kb_id}/documents/{document_id}/file",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
def download_original(
    kb_id: uuid.UUID, document_id: uuid.UUID, knowledge: KnowledgeServiceDep
) -> StreamingResponse:
    """The uploaded file, streamed from storage, always as an attachment; should a browser
    render it anyway, the sandbox keeps it from running script or reading anything of this
    origin."""
    document, original = knowledge.original(kb_id, document_id)
    return download(original, document.media_type, document.filename)


@router.get(
    "/{kb_id}/documents/{document_id}/preview",
    responses={409: {"description": "the document is not indexed yet, or could not be read"}},
)
def preview_document(
    kb_id: uuid.UUID, document_id: uuid.UUID, knowledge: KnowledgeServiceDep
) -> DocumentPreview:
    """The extracted text with its chunk boundaries and page starts: what was indexed."""
    document, chunks, truncated = knowledge.preview(kb_id, document_id)
    return DocumentPreview(
        document=DocumentOut.of(document),
        text=document.text or "",
        truncated=truncated,
        page_starts=document.page_starts,
        chunks=[PreviewChunk.model_validate(chunk) for chunk in chunks],
    )


@router.post(
    "/{kb_id}/documents/{document_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "the document has not failed"}},
)
def retry_document(
    kb_id: uuid.UUID, document_id: uuid.UUID, knowledge: KnowledgeServiceDep
) -> DocumentOut:
    """Ingest a failed document's last upload again (to replace it, upload a file with the
    same name)."""
    return DocumentOut.of(knowledge.retry(kb_id, document_id))


@router.delete("/{kb_id}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(
    kb_id: uuid.UUID, document_id: uuid.UUID, knowledge: KnowledgeServiceDep
) -> Response:
    knowledge.delete_document(kb_id, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{kb_id}/search")
def search_knowledge_base(
    kb_id: uuid.UUID,
    knowledge: KnowledgeServiceDep,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    mode: Annotated[str, Query(pattern="^(hybrid|keyword|dense)$")] = "hybrid",
    document_id: Annotated[list[uuid.UUID] | None, Query()] = None,
    metadata: Annotated[
        str | None, Query(description="JSON object the document metadata must contain")
    ] = None,
) -> SearchResponse:
    meta = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"metadata is not JSON: {exc}", field="metadata") from None
        if not isinstance(meta, dict):
            raise InvalidInput("metadata must be a JSON object", field="metadata")
    hits = knowledge.search(kb_id, q, k=k, mode=mode, filters=Filters(document_id, meta))
    return SearchResponse(hits=[SearchHit.model_validate(hit_json(hit)) for hit in hits])

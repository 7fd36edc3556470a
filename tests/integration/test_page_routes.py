"""The routes the web page needs beyond the core API: the list of past conversations (search,
rename, delete), a document's preview as indexed, and a failed document's retry; with the bad
input each can meet (a conversation that is gone, a preview of a document still processing,
a retry of a document that did not fail)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from citeline.answers.models import Conversation, Turn
from citeline.auth.access import Access
from citeline.auth.accounts import Accounts
from citeline.db.base import utcnow
from citeline.resources import Resources
from tests.conftest import WorkerFactory, wait_for
from tests.fixtures_docs import pdf_bytes
from tests.integration.test_knowledge import create_kb, documents, settled, upload

pytestmark = pytest.mark.slow

GUIDE = b"# Guide\n\nInstall packages with apt.\n\n## Upgrades\n\nRun apt upgrade often.\n"


def test_conversations_list_search_rename_delete(resources: Resources, api_url: str) -> None:
    kb = create_kb(api_url)
    local_user = Accounts(resources.sessions, Access.system()).ensure_local_user()
    subject = f"user:{local_user.id}"  # whom local mode acts as
    now = utcnow()
    with resources.sessions() as session:
        rows = [
            Conversation(
                knowledge_base_id=uuid.UUID(kb["id"]),
                workspace_id="default",
                owner=owner,
                title=title,
                updated_at=now - timedelta(minutes=age),
            )
            for title, owner, age in [
                ("When was the lighthouse built?", subject, 5),
                ("100% of the bakery_hours", subject, 1),
                ("someone else's question", "user:other", 0),
            ]
        ]
        session.add_all(rows)
        session.flush()
        session.add(Turn(conversation_id=rows[0].id, ordinal=1, question="q", search_query="q",
                         status="answered", answer="a", citations=[]))  # fmt: skip
        session.commit()
        lighthouse, bakery = str(rows[0].id), str(rows[1].id)

    listed = httpx.get(f"{api_url}/v1/conversations").json()["conversations"]
    mine = [c for c in listed if c["title"] != "someone else's question"]
    assert [c["id"] for c in mine] == [bakery, lighthouse]  # most recently active first
    assert [c["turn_count"] for c in mine] == [0, 1]
    found = httpx.get(f"{api_url}/v1/conversations", params={"title": "LIGHTHOUSE"}).json()
    assert [c["id"] for c in found["conversations"]] == [lighthouse]
    # % and _ are letters to search for, not patterns.
    percent = httpx.get(f"{api_url}/v1/conversations", params={"title": "100%"}).json()
    assert [c["id"] for c in percent["conversations"]] == [bakery]
    assert httpx.get(f"{api_url}/v1/conversations", params={"title": "y_h"}).json()[
        "conversations"
    ] == [c for c in percent["conversations"]]

    renamed = httpx.patch(f"{api_url}/v1/conversations/{lighthouse}", json={"title": " Tower "})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Tower"
    blank = httpx.patch(f"{api_url}/v1/conversations/{lighthouse}", json={"title": "   "})
    assert blank.status_code == 422 and "needs a title" in blank.json()["detail"]
    assert httpx.get(f"{api_url}/v1/conversations/{lighthouse}").json()["title"] == "Tower"

    assert httpx.delete(f"{api_url}/v1/conversations/{lighthouse}").status_code == 204
    gone = httpx.get(f"{api_url}/v1/conversations/{lighthouse}")
    assert gone.status_code == 404 and "no conversation" in gone.json()["detail"]
    assert httpx.delete(f"{api_url}/v1/conversations/{lighthouse}").status_code == 404
    left = httpx.get(f"{api_url}/v1/conversations").json()["conversations"]
    assert lighthouse not in [c["id"] for c in left] and bakery in [c["id"] for c in left]
    with resources.sessions() as session:
        assert session.query(Turn).count() == 0  # the turns went with it


def settle(api: str, kb: str) -> dict[str, dict[str, Any]]:
    docs = wait_for(lambda: settled(api, kb), timeout=120)
    assert isinstance(docs, dict)
    return docs


def test_preview_and_retry_of_documents(api_url: str, start_worker: WorkerFactory) -> None:
    kb = create_kb(api_url)["id"]
    upload(api_url, kb, [("guide.md", GUIDE), ("broken.pdf", b"%PDF-1.4\nnot really a pdf")])
    docs = documents(api_url, kb)
    base = f"{api_url}/v1/knowledge-bases/{kb}/documents"
    waiting = httpx.get(f"{base}/{docs['guide.md']['id']}/preview")
    assert waiting.status_code == 409
    assert "guide.md is still being indexed" in waiting.json()["detail"]

    start_worker("inprocess")
    docs = settle(api_url, kb)
    preview = httpx.get(f"{base}/{docs['guide.md']['id']}/preview").json()
    assert preview["text"].startswith("# Guide") or preview["text"].startswith("Guide")
    assert preview["truncated"] is False
    assert preview["chunks"] and all(
        0 <= c["start"] < c["end"] <= len(preview["text"]) for c in preview["chunks"]
    )
    assert any("Upgrades" in c["heading_path"] for c in preview["chunks"])

    broken = docs["broken.pdf"]
    assert broken["status"] == "failed"
    unreadable = httpx.get(f"{base}/{broken['id']}/preview")
    assert unreadable.status_code == 409 and "could not be read" in unreadable.json()["detail"]
    not_failed = httpx.post(f"{base}/{docs['guide.md']['id']}/retry")
    assert not_failed.status_code == 409
    assert "only a failed document can be retried" in not_failed.json()["detail"]
    retried = httpx.post(f"{base}/{broken['id']}/retry")
    # The worker may take the job before the reply reads the document back.
    assert retried.status_code == 202 and retried.json()["status"] in {"queued", "processing"}
    assert retried.json()["job_id"] != broken["job_id"]
    again = settle(api_url, kb)
    assert again["broken.pdf"]["status"] == "failed"  # still corrupt

    # Replacing is an upload under the same name: the document keeps its id.
    upload(api_url, kb, [("broken.pdf", pdf_bytes(["Now a real page of text."]))])
    fixed = settle(api_url, kb)
    assert fixed["broken.pdf"]["status"] == "ready"
    assert fixed["broken.pdf"]["id"] == broken["id"]
    pages = httpx.get(f"{base}/{broken['id']}/preview").json()
    assert "Now a real page of text." in pages["text"] and pages["page_starts"] == [0]
    assert httpx.get(f"{base}/{uuid.uuid4()}/preview").status_code == 404

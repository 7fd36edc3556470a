"""`Annotated` dependency aliases for routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from citeline.auth.access import Access
from citeline.auth.identify import Gatekeeper
from citeline.jobs.service import JobService
from citeline.jobs.stream import StreamHub
from citeline.knowledge.service import KnowledgeService
from citeline.resources import Resources
from citeline.settings import Settings


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_stream_hub(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.stream_hub
    return hub


def get_gatekeeper(request: Request) -> Gatekeeper:
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return gatekeeper


async def get_access(request: Request) -> Access:
    """Who is calling; every protected router depends on it, so it runs once per request."""
    gatekeeper = get_gatekeeper(request)
    access, quota = await run_in_threadpool(gatekeeper.identify, request)
    request.state.rate_quota = quota  # RequestContext adds the RateLimit headers
    request.state.access = access  # a refusal is audited under it (api.errors)
    return access


AccessDep = Annotated[Access, Depends(get_access)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_knowledge_service(resources: ResourcesDep, access: AccessDep) -> KnowledgeService:
    return resources.knowledge(access)


def get_job_service(resources: ResourcesDep, access: AccessDep) -> JobService:
    return resources.jobs(access)


SubjectLabels = Callable[[set[str]], dict[str, str]]


def get_subject_labels(resources: ResourcesDep, access: AccessDep) -> SubjectLabels:
    """How "user:<id>" and "key:<id>" appear to the caller (see `Accounts.labels`)."""
    accounts = resources.accounts(access)
    return lambda subjects: accounts.labels(access.workspace_id, subjects)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SubjectLabelsDep = Annotated[SubjectLabels, Depends(get_subject_labels)]
StreamHubDep = Annotated[StreamHub, Depends(get_stream_hub)]
GatekeeperDep = Annotated[Gatekeeper, Depends(get_gatekeeper)]
JobServiceDep = Annotated[JobService, Depends(get_job_service)]
KnowledgeServiceDep = Annotated[KnowledgeService, Depends(get_knowledge_service)]

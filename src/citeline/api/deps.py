"""`Annotated` dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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


def get_knowledge_service(
    resources: Annotated[Resources, Depends(get_resources)],
) -> KnowledgeService:
    return resources.knowledge()


def get_job_service(resources: Annotated[Resources, Depends(get_resources)]) -> JobService:
    return resources.jobs()


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StreamHubDep = Annotated[StreamHub, Depends(get_stream_hub)]
JobServiceDep = Annotated[JobService, Depends(get_job_service)]
KnowledgeServiceDep = Annotated[KnowledgeService, Depends(get_knowledge_service)]

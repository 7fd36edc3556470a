"""`Annotated` dependency aliases for routes: the one place that says how a request gets its
caller, the process's resources, and each service acting for that caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from opentelemetry import trace
from starlette.concurrency import run_in_threadpool

from citeline.agent_builder import BuilderService
from citeline.agents import AgentService
from citeline.answers.service import AnswerService
from citeline.assistant.service import AssistantService
from citeline.auth.access import Access
from citeline.auth.accounts import Accounts
from citeline.auth.api_keys import ApiKeys
from citeline.auth.identify import Gatekeeper
from citeline.auth.invitations import Invitations
from citeline.jobs.service import JobService
from citeline.jobs.stream import StreamHub
from citeline.knowledge.service import KnowledgeService
from citeline.llm.service import ModelService
from citeline.mcp import McpServers
from citeline.reports.service import ReportService
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
    span = trace.get_current_span()
    span.set_attribute("enduser.id", access.subject)
    span.set_attribute("citeline.workspace", access.workspace_id or "")
    return access


async def socket_access(websocket: WebSocket) -> Access:
    """Who opened a WebSocket: as for a request (a browser offers its credential as a
    `bearer.<token>` subprotocol), counted against the same rate limits."""
    gatekeeper: Gatekeeper = websocket.app.state.gatekeeper
    access, _ = await run_in_threadpool(gatekeeper.identify, websocket)
    return access


def socket_resources(websocket: WebSocket) -> Resources:
    resources: Resources = websocket.app.state.resources
    return resources


def socket_hub(websocket: WebSocket) -> StreamHub:
    hub: StreamHub = websocket.app.state.stream_hub
    return hub


AccessDep = Annotated[Access, Depends(get_access)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StreamHubDep = Annotated[StreamHub, Depends(get_stream_hub)]
GatekeeperDep = Annotated[Gatekeeper, Depends(get_gatekeeper)]


# Services, each acting for the caller.


def get_job_service(resources: ResourcesDep, access: AccessDep) -> JobService:
    return resources.jobs(access)


def get_knowledge_service(resources: ResourcesDep, access: AccessDep) -> KnowledgeService:
    return resources.knowledge(access)


def get_answer_service(resources: ResourcesDep, access: AccessDep) -> AnswerService:
    return resources.answers(access)


def get_model_service(resources: ResourcesDep, access: AccessDep) -> ModelService:
    return resources.models(access)


def get_report_service(resources: ResourcesDep, access: AccessDep) -> ReportService:
    return resources.reports(access)


def get_builder_service(resources: ResourcesDep, access: AccessDep) -> BuilderService:
    return resources.builder(access)


def get_agent_service(resources: ResourcesDep, access: AccessDep) -> AgentService:
    return resources.agents(access)


def get_assistant_service(resources: ResourcesDep, access: AccessDep) -> AssistantService:
    return resources.assistant(access)


def get_accounts(resources: ResourcesDep, access: AccessDep) -> Accounts:
    return resources.accounts(access)


def get_invitations(resources: ResourcesDep, access: AccessDep) -> Invitations:
    return Invitations(resources.sessions, access)


def get_api_keys(resources: ResourcesDep, access: AccessDep) -> ApiKeys:
    return ApiKeys(resources.sessions, access)


SubjectLabels = Callable[[set[str]], dict[str, str]]


def get_subject_labels(accounts: Annotated[Accounts, Depends(get_accounts)]) -> SubjectLabels:
    """How "user:<id>" and "key:<id>" appear to the caller (see `Accounts.labels`)."""
    return lambda subjects: accounts.labels(accounts.access.workspace_id, subjects)


JobServiceDep = Annotated[JobService, Depends(get_job_service)]
KnowledgeServiceDep = Annotated[KnowledgeService, Depends(get_knowledge_service)]
AnswerServiceDep = Annotated[AnswerService, Depends(get_answer_service)]
ModelServiceDep = Annotated[ModelService, Depends(get_model_service)]
ReportServiceDep = Annotated[ReportService, Depends(get_report_service)]
AssistantServiceDep = Annotated[AssistantService, Depends(get_assistant_service)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
InvitationsDep = Annotated[Invitations, Depends(get_invitations)]
ApiKeysDep = Annotated[ApiKeys, Depends(get_api_keys)]
SubjectLabelsDep = Annotated[SubjectLabels, Depends(get_subject_labels)]
BuilderServiceDep = Annotated[BuilderService, Depends(get_builder_service)]
AgentServiceDep = Annotated[AgentService, Depends(get_agent_service)]


def get_mcp_servers(resources: ResourcesDep, access: AccessDep) -> McpServers:
    return resources.mcp_servers(access)


McpServersDep = Annotated[McpServers, Depends(get_mcp_servers)]

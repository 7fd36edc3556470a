"""`/v1/models`: OpenAI's model list, and the registry of versions and aliases behind it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from citeline.api.deps import JobServiceDep, ModelServiceDep, ResourcesDep, StreamHubDep
from citeline.db.base import utcnow
from citeline.errors import NotFound
from citeline.jobs.runtime import error_from_event
from citeline.jobs.stream import terminal_event
from citeline.llm.predict import PREDICT_KIND, PredictIn, PredictOut, target_of
from citeline.llm.registry import NewVersion, VersionSpec
from citeline.llm.schemas import (
    AliasEntry,
    AliasStats,
    Entry,
    ModelEntry,
    ModelList,
    RouteOut,
    RoutesIn,
    UsageList,
    UsageRow,
    VariantStats,
    VersionIn,
    VersionList,
    VersionOut,
)
from citeline.llm.service import ModelService

router = APIRouter(prefix="/v1", tags=["models"])
gateway = APIRouter(tags=["models"])


def _route(models: ModelService, version: VersionSpec, weight: float) -> RouteOut:
    loaded_on = models.loaded_on(version)
    loaded = None if loaded_on is None else loaded_on > 0
    return RouteOut(
        model=version.label,
        weight=weight,
        loaded=loaded,
        loaded_on=loaded_on,
        load_seconds=None if loaded_on is None else models.load_seconds(version),
    )


def _entries(models: ModelService) -> list[Entry]:
    registry = models.registry
    registry.ensure_defaults()
    entries: list[Entry] = []
    for alias, routes in registry.aliases():
        fallback = alias.fallback_version_id
        entries.append(
            AliasEntry(
                id=alias.name,
                created=int(alias.updated_at.timestamp()),
                workspace=alias.workspace_id or None,
                routes=[_route(models, v, w) for v, w in routes],
                fallback=registry.version_label(fallback) if fallback else None,
            )
        )
    latest = {version.name: version for version in registry.versions()}
    for name, version in latest.items():
        entries.append(
            ModelEntry(
                id=name,
                created=int(version.created_at.timestamp()),
                latest=version.label,
                provider=version.provider,
            )
        )
    return entries


@router.get("/models")
def list_models(models: ModelServiceDep) -> ModelList:
    """Aliases and model names, in OpenAI's list format (with Citeline's details added)."""
    return ModelList(data=_entries(models))


@router.post("/models", status_code=status.HTTP_201_CREATED)
def add_version(body: VersionIn, models: ModelServiceDep) -> VersionOut:
    """Register a new version of a model (the first version creates the model)."""
    row = models.registry.add_version(NewVersion(**body.model_dump()))
    return VersionOut.of(row)


@router.get("/models/{name}")
def get_model(name: str, models: ModelServiceDep) -> Entry:
    for entry in _entries(models):
        if entry.id == name:
            return entry
    raise NotFound(f"no model or alias named {name!r}")


@router.get("/models/{name}/versions")
def list_versions(name: str, models: ModelServiceDep) -> VersionList:
    return VersionList(versions=[VersionOut.of(row) for row in models.registry.versions(name)])


@router.delete("/models/{name}/versions/{number}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(
    name: str, number: Annotated[int, Path(ge=1, le=2**31 - 1)], models: ModelServiceDep
) -> Response:
    models.registry.delete_version(f"{name}@{number}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/models/{alias}/routes")
def set_routes(alias: str, body: RoutesIn, models: ModelServiceDep) -> Entry:
    """Point an alias at one version, or split its traffic between versions by weight."""
    models.registry.set_routes(
        alias, [(r.model, r.weight) for r in body.routes], body.fallback, shared=body.shared
    )
    return get_model(alias, models)


@router.delete("/models/{alias}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(
    alias: str,
    models: ModelServiceDep,
    shared: Annotated[bool, Query(description="the shared alias, not your workspace's")] = False,
) -> Response:
    """Delete your workspace's alias (the shared one of that name applies again), or with
    `shared=true` the shared one."""
    models.registry.delete_alias(alias, shared=shared)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/models/{alias}/stats")
def alias_stats(
    alias: str,
    models: ModelServiceDep,
    hours: Annotated[float, Query(gt=0, le=24 * 366)] = 24.0,
) -> AliasStats:
    """Compare the versions that served `alias`: volume, errors, latency and tokens."""
    since = utcnow() - timedelta(hours=hours)
    variants = [VariantStats(**row) for row in models.stats(alias, since)]
    return AliasStats(alias=alias, since=since, variants=variants)


@router.get("/usage")
def token_usage(
    models: ModelServiceDep,
    subject: Annotated[
        str | None, Query(description="whose usage (default: yours); admins may name anyone")
    ] = None,
) -> UsageList:
    """Tokens per model and day for one user or API key."""
    rows = [
        UsageRow(
            subject=row.subject,
            model=row.model_name,
            day=row.day.isoformat(),
            requests=row.requests,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
        )
        for row in models.usage(subject)
    ]
    return UsageList(usage=rows)


@gateway.post("/models/{model_id}/predict", responses={502: {"description": "the model failed"}})
@router.post("/models/{model_id}/predict", include_in_schema=False)
async def predict(
    model_id: str,
    body: PredictIn,
    models: ModelServiceDep,
    jobs: JobServiceDep,
    resources: ResourcesDep,
    hub: StreamHubDep,
) -> PredictOut:
    """Run each input through a model (an alias, with its A/B split, or `version`), on a
    worker; answers when all predictions are made."""
    target = target_of(model_id, body.version)
    await run_in_threadpool(models.registry.resolve, target, None, None)
    args = {"model": model_id, "target": target, **body.model_dump(exclude={"version"})}
    job = await run_in_threadpool(jobs.enqueue, PREDICT_KIND, args)
    ended, data = await terminal_event(job.id, events=resources.events, hub=hub)
    if ended != "finished":
        raise error_from_event(ended, data)
    result = await run_in_threadpool(jobs.result, job.id)
    return PredictOut.model_validate(result)

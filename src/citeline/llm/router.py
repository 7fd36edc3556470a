"""`/v1/models`: OpenAI's model list, and the registry of versions and aliases behind it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from citeline.api.deps import AccessDep, ResourcesDep
from citeline.db.base import utcnow
from citeline.errors import NotFound
from citeline.llm.registry import ModelRegistry, NewVersion
from citeline.llm.schemas import AliasStats, RoutesIn, UsageRow, VariantStats, VersionIn, VersionOut
from citeline.llm.service import ModelService

router = APIRouter(prefix="/v1", tags=["models"])


def get_model_service(resources: ResourcesDep, access: AccessDep) -> ModelService:
    return resources.models(access)


ModelServiceDep = Annotated[ModelService, Depends(get_model_service)]


def _entries(registry: ModelRegistry) -> list[dict[str, Any]]:
    registry.ensure_defaults()
    entries = []
    for alias, routes in registry.aliases():
        entries.append(
            {
                "id": alias.name,
                "object": "model",
                "created": int(alias.updated_at.timestamp()),
                "owned_by": "citeline",
                "kind": "alias",
                "workspace": alias.workspace_id or None,  # None: shared by every workspace
                "routes": [{"model": v.label, "weight": w} for v, w in routes],
                "fallback": (
                    registry.version_label(alias.fallback_version_id)
                    if alias.fallback_version_id
                    else None
                ),
            }
        )
    latest: dict[str, Any] = {}
    for version in registry.versions():
        latest[version.name] = version
    for name, version in latest.items():
        entries.append(
            {
                "id": name,
                "object": "model",
                "created": int(version.created_at.timestamp()),
                "owned_by": "citeline",
                "kind": "model",
                "latest": version.label,
                "provider": version.provider,
            }
        )
    return entries


@router.get("/models")
def list_models(models: ModelServiceDep) -> dict[str, Any]:
    """Aliases and model names, in OpenAI's list format (with Citeline's details added)."""
    return {"object": "list", "data": _entries(models.registry)}


@router.post("/models", status_code=status.HTTP_201_CREATED)
def add_version(body: VersionIn, models: ModelServiceDep) -> VersionOut:
    """Register a new version of a model (the first version creates the model)."""
    row = models.registry.add_version(NewVersion(**body.model_dump()))
    return VersionOut.of(row)


@router.get("/models/{name}")
def get_model(name: str, models: ModelServiceDep) -> dict[str, Any]:
    for entry in _entries(models.registry):
        if entry["id"] == name:
            return entry
    raise NotFound(f"no model or alias named {name!r}")


@router.get("/models/{name}/versions")
def list_versions(name: str, models: ModelServiceDep) -> dict[str, list[VersionOut]]:
    return {"versions": [VersionOut.of(row) for row in models.registry.versions(name)]}


@router.delete("/models/{name}/versions/{number}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(
    name: str, number: Annotated[int, Path(ge=1, le=2**31 - 1)], models: ModelServiceDep
) -> Response:
    models.registry.delete_version(f"{name}@{number}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/models/{alias}/routes")
def set_routes(alias: str, body: RoutesIn, models: ModelServiceDep) -> dict[str, Any]:
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
) -> dict[str, list[UsageRow]]:
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
    return {"usage": rows}

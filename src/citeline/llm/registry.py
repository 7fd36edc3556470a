"""Named models with numbered versions, and aliases that route to them by weight.

A version is immutable once created: changing a model's provider, id, parameters or prompt
template makes a new version, so every recorded generation says exactly what served it.
A reference to a version is `name@N`, or `name` for its newest version.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from citeline.auth import Access, Role, audit
from citeline.db.base import utcnow
from citeline.db.engine import unit_of_work
from citeline.errors import Conflict, InvalidInput, NotFound
from citeline.llm.bundled import BUNDLED
from citeline.llm.models import Generation, ModelAlias, ModelVersion, ProviderKind
from citeline.llm.routing import choose
from citeline.outbound import check_url

STANDARD_ALIASES = ("default", "answer", "report", "assistant")
SHARED = ""  # the workspace id of aliases every workspace sees
# The version every standard alias starts on: the local provider with CITELINE_LLM_MODEL.
BUILTIN_NAME = "local"
FOLLOWS_SETTINGS = "default"

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class VersionParameters(BaseModel):
    """Defaults a version applies to requests that do not set them, and local-model options."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    stop: list[str] | None = None
    seed: int | None = None
    context_tokens: int | None = Field(default=None, ge=256, le=131072)
    threads: int | None = Field(default=None, ge=1, le=64)


@dataclass(frozen=True)
class VersionSpec:
    """A version detached from its session, safe to hand to providers and other threads."""

    id: uuid.UUID
    name: str
    version: int
    provider: str
    model: str
    base_url: str | None
    credential: str | None
    parameters: dict[str, Any]
    prompt_template: str | None

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def of(cls, row: ModelVersion) -> VersionSpec:
        return cls(
            row.id,
            row.name,
            row.version,
            row.provider,
            row.model,
            row.base_url,
            row.credential,
            dict(row.parameters or {}),
            row.prompt_template,
        )


@dataclass(frozen=True)
class Route:
    """What serves one request: the chosen version, and the one to try if it fails."""

    alias: str | None
    version: VersionSpec
    fallback: VersionSpec | None
    workspace_id: str | None = None  # whose request it is (for per-workspace statistics)


@dataclass(frozen=True)
class NewVersion:
    name: str
    provider: str
    model: str
    base_url: str | None = None
    credential: str | None = None
    parameters: dict[str, Any] | None = None
    prompt_template: str | None = None
    description: str = ""


class ModelRegistry:
    """Model versions (which providers exist) are shared and only instance administrators
    change them. Aliases are either shared (instance administrators) or a workspace's own
    (its admins), and a workspace's alias hides the shared one of the same name there."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        access: Access | None = None,
        *,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.sessions = sessions
        self.access = access or Access.system()
        self.allowed_hosts = list(allowed_hosts)  # internal hosts providers may live at

    def ensure_defaults(self) -> None:
        """Create the built-in local version and point the standard aliases at it, unless
        they exist. Safe to run from many processes at once."""
        with unit_of_work(self.sessions) as session:
            builtin = session.scalar(
                select(ModelVersion).where(ModelVersion.name == BUILTIN_NAME).limit(1)
            )
            if builtin is None:
                session.execute(
                    insert(ModelVersion)
                    .values(
                        id=uuid.uuid4(),
                        name=BUILTIN_NAME,
                        version=1,
                        provider=ProviderKind.local.value,
                        model=FOLLOWS_SETTINGS,
                        parameters={},
                        description="the bundled local model named by CITELINE_LLM_MODEL",
                        created_at=utcnow(),
                    )
                    .on_conflict_do_nothing()
                )
                builtin = session.scalars(
                    select(ModelVersion).where(ModelVersion.name == BUILTIN_NAME)
                ).one()
            for alias in STANDARD_ALIASES:
                session.execute(
                    insert(ModelAlias)
                    .values(
                        workspace_id=SHARED,
                        name=alias,
                        routes=[{"version_id": str(builtin.id), "weight": 1.0}],
                        updated_at=utcnow(),
                    )
                    .on_conflict_do_nothing()
                )

    # Versions

    def add_version(self, new: NewVersion) -> ModelVersion:
        self.access.require_instance_admin("register models")
        _check_name(new.name, "name")
        if new.provider not in {kind.value for kind in ProviderKind}:
            kinds = ", ".join(kind.value for kind in ProviderKind)
            raise InvalidInput(f"provider must be one of {kinds}", field="provider")
        model = new.model.strip()
        if not model:
            raise InvalidInput("model must name the provider's model", field="model")
        if new.provider == ProviderKind.local and not _local_model_ok(model):
            raise InvalidInput(
                f"a local model is {FOLLOWS_SETTINGS!r}, a bundled model "
                f"({', '.join(BUNDLED)}) or a path to a .gguf file",
                field="model",
            )
        if new.base_url is not None:
            check_url(new.base_url, self.allowed_hosts, field="base_url")
        try:
            parameters = VersionParameters.model_validate(new.parameters or {})
        except ValidationError as exc:
            raise InvalidInput(_first_error(exc), field="parameters") from None
        for attempt in range(3):
            try:
                with unit_of_work(self.sessions) as session:
                    if session.scalar(
                        select(ModelAlias.name).where(ModelAlias.name == new.name).limit(1)
                    ):
                        raise Conflict(f"{new.name!r} is an alias; a model needs its own name")
                    latest = session.scalar(
                        select(func.max(ModelVersion.version)).where(ModelVersion.name == new.name)
                    )
                    row = ModelVersion(
                        name=new.name,
                        version=(latest or 0) + 1,
                        provider=new.provider,
                        model=model,
                        base_url=new.base_url,
                        credential=new.credential,
                        parameters=parameters.model_dump(exclude_none=True),
                        prompt_template=new.prompt_template,
                        description=new.description,
                    )
                    session.add(row)
                    session.flush()
                    session.expunge(row)
                    return row
            except IntegrityError:
                if attempt == 2:
                    raise Conflict(f"model {new.name} is being changed concurrently") from None
        raise AssertionError("unreachable")

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        with self.sessions() as session:
            query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
            if name is not None:
                query = query.where(ModelVersion.name == name)
            rows = list(session.scalars(query))
        if name is not None and not rows:
            raise NotFound(f"no model named {name!r}")
        return rows

    def version(self, ref: str) -> VersionSpec:
        with self.sessions() as session:
            return VersionSpec.of(_version_row(session, ref))

    def version_label(self, version_id: uuid.UUID) -> str | None:
        with self.sessions() as session:
            row = session.get(ModelVersion, version_id)
            return row.label if row else None

    def delete_version(self, ref: str) -> None:
        self.access.require_instance_admin("delete model versions")
        with unit_of_work(self.sessions) as session:
            row = _version_row(session, ref)
            users = [
                alias.name
                for alias in session.scalars(select(ModelAlias))
                if alias.fallback_version_id == row.id
                or any(r["version_id"] == str(row.id) for r in alias.routes)
            ]
            if users:
                raise Conflict(
                    f"{row.label} is routed by alias {', '.join(sorted(users))}; "
                    "route the alias elsewhere first"
                )
            session.execute(delete(ModelVersion).where(ModelVersion.id == row.id))
            audit.add(session, audit.by(self.access, "model.delete", row.label))

    # Aliases

    def set_routes(
        self,
        alias: str,
        routes: Sequence[tuple[str, float]],
        fallback: str | None = None,
        *,
        shared: bool = False,
    ) -> ModelAlias:
        """Create or re-route an alias of the caller's workspace, or with `shared` (and
        always for the system) the one every workspace sees."""
        scope = self._writable_scope(shared, "route model aliases")
        _check_name(alias, "alias")
        if not routes:
            raise InvalidInput("an alias needs at least one route", field="routes")
        if any(weight < 0 for _, weight in routes) or sum(w for _, w in routes) <= 0:
            raise InvalidInput("weights must be ≥ 0 and not all zero", field="routes")
        with unit_of_work(self.sessions) as session:
            if session.scalar(select(ModelVersion.id).where(ModelVersion.name == alias).limit(1)):
                raise Conflict(f"{alias!r} is a model name; an alias needs a name of its own")
            resolved = [(_version_row(session, ref), float(w)) for ref, w in routes]
            ids = [row.id for row, _ in resolved]
            if len(set(ids)) != len(ids):
                raise InvalidInput("each version may appear once in an alias", field="routes")
            fallback_row = _version_row(session, fallback) if fallback else None
            values = {
                "routes": [{"version_id": str(row.id), "weight": w} for row, w in resolved],
                "fallback_version_id": fallback_row.id if fallback_row else None,
                "updated_at": utcnow(),
            }
            session.execute(
                insert(ModelAlias)
                .values(workspace_id=scope, name=alias, **values)
                .on_conflict_do_update(
                    index_elements=[ModelAlias.workspace_id, ModelAlias.name], set_=values
                )
            )
            row = session.get_one(ModelAlias, (scope, alias), populate_existing=True)
            session.expunge(row)
            return row

    def aliases(self) -> list[tuple[ModelAlias, list[tuple[VersionSpec, float]]]]:
        """The aliases in effect for the caller: shared ones, hidden by the workspace's own."""
        scopes = [SHARED, self.access.workspace_id or SHARED]
        with self.sessions() as session:
            effective: dict[str, ModelAlias] = {}
            for alias in session.scalars(
                select(ModelAlias)
                .where(ModelAlias.workspace_id.in_(scopes))
                .order_by(ModelAlias.name, ModelAlias.workspace_id)
            ):
                effective[alias.name] = alias  # the workspace's sorts after "" and wins
            return [(alias, _routes(session, alias)) for alias in effective.values()]

    def delete_alias(self, alias: str, *, shared: bool = False) -> None:
        scope = self._writable_scope(shared, "delete model aliases")
        with unit_of_work(self.sessions) as session:
            if session.get(ModelAlias, (scope, alias)) is None:
                where = "shared" if scope == SHARED else f"of workspace {scope}"
                raise NotFound(f"no alias named {alias!r} {where}")
            session.execute(
                delete(ModelAlias).where(ModelAlias.workspace_id == scope, ModelAlias.name == alias)
            )
            entry = audit.Entry("alias.delete", self.access.subject, scope or None, alias)
            audit.add(session, entry)

    def _writable_scope(self, shared: bool, action: str) -> str:
        if shared or self.access.workspace_id is None:
            self.access.require_instance_admin(f"{action} shared by every workspace")
            return SHARED
        self.access.require(Role.admin, action)
        return self.access.workspace_id

    def resolve(
        self, target: str, key: str | None = None, workspace_id: str | None = None
    ) -> Route:
        """The version serving `target` (an alias or a version reference) for this key, in
        `workspace_id` (default: the caller's)."""
        workspace_id = workspace_id or self.access.workspace_id
        with self.sessions() as session:
            alias = None
            if workspace_id:
                alias = session.get(ModelAlias, (workspace_id, target))
            alias = alias or session.get(ModelAlias, (SHARED, target))
            if alias is None and target in STANDARD_ALIASES:
                session.close()
                self.ensure_defaults()
                return self.resolve(target, key, workspace_id)
            if alias is None:
                version = VersionSpec.of(_version_row(session, target))
                return Route(None, version, None, workspace_id)
            routes = _routes(session, alias)
            if not routes:
                raise NotFound(f"alias {target!r} routes to no existing version")
            chosen = choose(target, routes, key)
            fallback = (
                session.get(ModelVersion, alias.fallback_version_id)
                if alias.fallback_version_id
                else None
            )
            return Route(
                target, chosen, VersionSpec.of(fallback) if fallback else None, workspace_id
            )


def _routes(session: Session, alias: ModelAlias) -> list[tuple[VersionSpec, float]]:
    out = []
    for route in alias.routes:
        row = session.get(ModelVersion, uuid.UUID(route["version_id"]))
        if row is not None:
            out.append((VersionSpec.of(row), float(route["weight"])))
    return out


def _version_row(session: Session, ref: str) -> ModelVersion:
    try:
        return _find_version(session, ref)
    except NotFound:
        if ref.partition("@")[0] != BUILTIN_NAME:
            raise
    # The built-in version is created on first use (or was removed by hand): recreate it.
    ModelRegistry(sessionmaker(bind=session.get_bind())).ensure_defaults()
    return _find_version(session, ref)


def _find_version(session: Session, ref: str) -> ModelVersion:
    name, at, number = ref.partition("@")
    query = select(ModelVersion).where(ModelVersion.name == name)
    if at:
        if not number.isdigit():
            raise InvalidInput(f"{ref!r}: a version is name@N with N a number", field="model")
        query = query.where(ModelVersion.version == int(number))
    row = session.scalar(query.order_by(ModelVersion.version.desc()).limit(1))
    if row is None:
        raise NotFound(f"no model, version or alias named {ref!r}")
    return row


def _check_name(name: str, field: str) -> None:
    if not NAME.match(name):
        raise InvalidInput(
            f"{field} {name!r} must be 1-100 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit",
            field=field,
        )


def _local_model_ok(model: str) -> bool:
    return model == FOLLOWS_SETTINGS or model in BUNDLED or model.lower().endswith(".gguf")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


def forget_workspace(session: Session, workspace_id: str) -> None:
    """Before a workspace is deleted: drop its own aliases and its generations' records, so a
    later workspace of the same id starts with neither."""
    session.execute(delete(ModelAlias).where(ModelAlias.workspace_id == workspace_id))
    session.execute(delete(Generation).where(Generation.workspace_id == workspace_id))

"""Request and response bodies of the model registry API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citeline.llm.models import ModelVersion


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The model's name; a new version is numbered after the last")
    provider: str = Field(description="local, openai or anthropic")
    model: str = Field(description="Bundled model, GGUF path or 'default' (local); model id")
    base_url: str | None = None
    credential: str | None = Field(
        default=None, description="Key name in CITELINE_PROVIDER_API_KEYS"
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    prompt_template: str | None = Field(
        default=None, description="System prompt; '{system}' marks where the caller's goes"
    )
    description: str = ""


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    version: int
    ref: str
    provider: str
    model: str
    base_url: str | None
    credential: str | None
    parameters: dict[str, Any]
    prompt_template: str | None
    description: str
    created_at: datetime

    @classmethod
    def of(cls, row: ModelVersion) -> VersionOut:
        return cls.model_validate({**vars(row), "ref": row.label})


class VersionList(BaseModel):
    versions: list[VersionOut]


class RouteOut(BaseModel):
    model: str = Field(description="The version: name@N")
    weight: float
    loaded: bool | None = Field(
        default=None, description="Whether a live worker keeps it loaded; None for remote models"
    )
    loaded_on: int | None = Field(
        default=None, description="How many live workers keep it loaded; None for remote models"
    )
    load_seconds: float | None = Field(
        default=None, description="How long the last load took on a worker; None if unknown"
    )


class AliasEntry(BaseModel):
    """An alias, as OpenAI's model list shows a model, with where it routes."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "citeline"
    kind: Literal["alias"] = "alias"
    workspace: str | None = Field(description="None: shared by every workspace")
    routes: list[RouteOut]
    fallback: str | None


class ModelEntry(BaseModel):
    """A registered model, by its newest version."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "citeline"
    kind: Literal["model"] = "model"
    latest: str
    provider: str


Entry = Annotated[AliasEntry | ModelEntry, Field(discriminator="kind")]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Entry]


class RouteIn(BaseModel):
    model: str = Field(description="A version: name@N, or name for its newest")
    weight: float = Field(default=1.0, ge=0)


class RoutesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[RouteIn] = Field(min_length=1)
    fallback: str | None = None
    shared: bool = Field(
        default=False,
        description="route the alias every workspace sees (instance administrators) instead "
        "of your workspace's own",
    )


class VariantStats(BaseModel):
    version: str
    requests: int
    errors: int
    error_rate: float
    fallbacks: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    first_token_ms_avg: float | None
    input_tokens: int
    output_tokens: int
    output_tokens_per_second: float | None


class AliasStats(BaseModel):
    alias: str
    since: datetime
    variants: list[VariantStats]


class UsageRow(BaseModel):
    subject: str
    model: str
    day: str
    requests: int
    input_tokens: int
    output_tokens: int


class UsageList(BaseModel):
    usage: list[UsageRow]

"""The one place Citeline reads its configuration: `CITELINE_*` variables and an optional .env."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# A list setting: JSON or comma-separated in the environment.
Names = Annotated[list[str], NoDecode]


SECRETS_DIR = "/run/secrets"


class LogFormat(StrEnum):
    json = "json"
    text = "text"


def _default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


class Settings(BaseSettings):
    """Everything configurable about a Citeline process."""

    # Errors never echo the input: it holds every variable, secrets included. A setting can
    # also come from a file named after its variable in lower case in /run/secrets (Compose
    # and Kubernetes mount secrets there); the environment wins over a file.
    model_config = SettingsConfigDict(
        env_prefix="CITELINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
        secrets_dir=SECRETS_DIR,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The secrets directory only when it exists (pydantic-settings warns otherwise)."""
        directory = getattr(file_secret_settings, "secrets_dir", None)
        if isinstance(directory, str | os.PathLike) and Path(directory).is_dir():
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=0, le=64)] = Field(default_factory=_default_workers)

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.json

    job_timeout_seconds: Annotated[int, Field(ge=1)] = 3600
    job_max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    job_retry_backoff_seconds: Annotated[float, Field(ge=0)] = 2.0
    job_heartbeat_seconds: Annotated[float, Field(gt=0)] = 2.0
    job_lost_after_seconds: Annotated[float, Field(gt=0)] = 10.0
    # A worker reports each local model it keeps loaded for this long, renewed while it lives.
    loaded_model_ttl_seconds: Annotated[float, Field(ge=0.3)] = 45.0
    job_reaper_interval_seconds: Annotated[float, Field(gt=0)] = 2.0
    job_event_stream_ttl_seconds: Annotated[int, Field(ge=60)] = 86400
    # After SIGTERM a worker's running job has this long to end before it is handed back;
    # keep it under the orchestrator's grace period (Kubernetes: 30s unless set).
    worker_stop_seconds: Annotated[float, Field(gt=0)] = 25.0

    max_upload_bytes: Annotated[int, Field(ge=1)] = 100 * 2**20
    max_request_bytes: Annotated[int, Field(ge=1)] = 1024 * 2**20
    # Bodies that are parsed whole in memory (JSON, forms without files) get a smaller limit.
    max_json_bytes: Annotated[int, Field(ge=1024)] = 2 * 2**20
    max_header_bytes: Annotated[int, Field(ge=1024, le=2**20)] = 32 * 1024
    # Browser origins allowed to call the API with credentials; "*" is refused (see below).
    cors_origins: Names = Field(default_factory=list)

    embedding_provider: Literal["local", "openai"] = "local"
    embedding_url: str | None = None
    embedding_model: str | None = None
    embedding_dim: Annotated[int | None, Field(ge=1, le=16000)] = None
    embedding_api_key: str | None = None
    embedding_threads: Annotated[int, Field(ge=1, le=64)] = 1
    chunk_tokens: Annotated[int, Field(ge=32, le=256)] = 200
    chunk_overlap: Annotated[int, Field(ge=0, le=100)] = 32

    # The model the `default` alias serves until the registry routes it elsewhere: a bundled
    # model name (see citeline.llm.bundled) or a path to a GGUF file.
    llm_model: str = "qwen2.5-coder-1.5b"
    models_dir: Path | None = None  # where bundled models are rebuilt; default <data dir>/models
    llm_threads: Annotated[int, Field(ge=1, le=64)] = 1
    llm_context_tokens: Annotated[int, Field(ge=256, le=131072)] = 4096
    llm_cache_ram_mib: Annotated[int, Field(ge=0)] = 256
    # `serve` runs the default local model in one llama.cpp server that all its workers share
    # (citeline.llm.model_server); off, each worker loads its own copy.
    llm_shared_server: bool = True
    # Generations batched at once; default: one per worker (each runs one job at a time).
    llm_server_slots: Annotated[int | None, Field(ge=1, le=32)] = None
    # Default: every core. The server batches its slots' generations into one pass, so a
    # generation running alone gets every core and several share them; llama.cpp's threads
    # wait passively (citeline.llm.llama), so a core taken by other work slows, not stalls, it.
    llm_server_threads: Annotated[int | None, Field(ge=1, le=64)] = None
    # Set by `serve` in its workers' environment: where the shared server listens, and its key.
    llm_server_url: str | None = None
    llm_server_key: SecretStr | None = None
    llm_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0
    llm_retry_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    llm_retry_base_seconds: Annotated[float, Field(ge=0)] = 0.5
    llm_breaker_failures: Annotated[int, Field(ge=1)] = 5
    llm_breaker_cool_down_seconds: Annotated[float, Field(gt=0)] = 30.0
    llm_max_concurrency: Annotated[int, Field(ge=1)] = 8  # per provider endpoint, all workers
    llm_daily_token_quota: Annotated[int | None, Field(ge=1)] = None  # per user, all models
    # Credentials for remote providers by name (JSON in CITELINE_PROVIDER_API_KEYS); a model
    # version names the one it uses, and defaults to its provider's name ("openai", ...).
    provider_api_keys: dict[str, SecretStr] = Field(default_factory=dict)

    # Grounded answers: what the model reads, when to say "not found", what counts as support.
    answer_model: str = "answer"
    # Where a question that names no knowledge base goes (a name or id); unset: the
    # workspace's only knowledge base.
    default_knowledge_base: str | None = None
    answer_candidates: Annotated[int, Field(ge=1, le=50)] = 8
    answer_context_tokens: Annotated[int, Field(ge=100, le=32000)] = 700
    answer_max_tokens: Annotated[int, Field(ge=16, le=4096)] = 256
    answer_min_relevance: Annotated[float, Field(ge=-1, le=1)] = 0.35
    answer_support_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    # The model reads the passages whose similarity to the question is within this margin of
    # the best one's (chosen on the Debian FAQ set: the gold passage kept for 100 of 100
    # questions, 1.7 passages read on average), at most `answer_max_passages`.
    answer_relevance_margin: Annotated[float, Field(ge=0, le=2)] = 0.10
    answer_max_passages: Annotated[int, Field(ge=1, le=50)] = 4
    # 1 since 2026-12-01: a floor of 2 made the model read (and cite) a passage about another
    # question. Chosen on the Debian slice (strict precision 0.80 -> 0.81, not_found on
    # answerable 3/12 -> 2/12, first token p50 17.7 -> 13.5 s). An earlier test saw the 1.5B
    # model reply "1" to a single passage: no claim, so the answer is not_found, not wrong.
    answer_min_passages: Annotated[int, Field(ge=1, le=50)] = 1

    # Reports: passages per question and knowledge base, what a section's writer reads (the
    # bundled model reads about 4k tokens in all), how long a section may be, and how
    # relevant the knowledge bases must be to the topic at all.
    report_candidates: Annotated[int, Field(ge=1, le=50)] = 6
    report_section_context_tokens: Annotated[int, Field(ge=200, le=32000)] = 2500
    report_section_max_tokens: Annotated[int, Field(ge=32, le=4096)] = 320
    report_min_relevance: Annotated[float, Field(ge=-1, le=1)] = 0.35

    # Agent builder sessions: how long a session's live state stays in Redis without activity
    # (then it is abandoned until resumed), the model alias that reads each message, and how
    # long one reading may take.
    agent_builder_ttl_seconds: Annotated[int, Field(ge=1)] = 3600
    agent_builder_model: str = "assistant"
    agent_builder_model_timeout_seconds: Annotated[float, Field(gt=0)] = 300.0
    # The assistant: tool steps per reply, reply length, passages per search, how long a
    # run's live state stays in Redis, how long a tool call waits for approval, and limits
    # per conversation (messages per minute, 0 turns it off; characters per message).
    assistant_max_steps: Annotated[int, Field(ge=1, le=20)] = 4
    assistant_max_tokens: Annotated[int, Field(ge=16, le=4096)] = 384
    assistant_search_passages: Annotated[int, Field(ge=1, le=20)] = 3
    assistant_history_turns: Annotated[int, Field(ge=0, le=50)] = 3
    assistant_state_ttl_seconds: Annotated[int, Field(ge=1)] = 3600
    assistant_approval_timeout_seconds: Annotated[float, Field(gt=0)] = 600.0
    assistant_messages_per_minute: Annotated[int, Field(ge=0)] = 20
    # External tool calls per minute, per workspace and tool (0 turns it off).
    assistant_tool_calls_per_minute: Annotated[int, Field(ge=0)] = 60
    assistant_max_message_chars: Annotated[int, Field(ge=1, le=1_000_000)] = 20000

    # Who may call the API. `local`: one local user is signed in automatically, allowed only
    # when the server binds to loopback. `required`: every request carries a bearer token or
    # an API key (see docs/auth.md).
    auth: Literal["local", "required"] = "required"
    jwt_secret: SecretStr | None = None  # default: generated once and kept in the database
    # Keys that still verify access tokens after CITELINE_JWT_SECRET changed (JSON list).
    jwt_previous_secrets: list[SecretStr] = Field(default_factory=list)
    access_token_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15.0
    refresh_token_days: Annotated[float, Field(gt=0, le=365)] = 30.0
    # Requests per minute; 0 turns a limit off.
    rate_limit_user_per_minute: Annotated[int, Field(ge=0)] = 600
    rate_limit_api_key_per_minute: Annotated[int, Field(ge=0)] = 1200
    rate_limit_global_per_minute: Annotated[int, Field(ge=0)] = 20000
    # Failed sign-ins per account and client address before each attempt must wait, twice as
    # long after every failure (see citeline.auth.throttle).
    sign_in_failures_allowed: Annotated[int, Field(ge=1)] = 5
    sign_in_max_delay_seconds: Annotated[float, Field(gt=0)] = 900.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client.
    trusted_proxies: Names = Field(default_factory=list)
    # Hosts, addresses or networks that model providers and MCP servers may be reached at
    # although they are loopback, link-local or private (see citeline.outbound).
    outbound_allowed_hosts: Names = Field(default_factory=list)
    # OpenID Connect login (authorization code with PKCE); on when issuer and client id are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_url: str | None = None  # default: <this server>/v1/auth/oidc/callback
    oidc_workspace: str = "default"  # where first-time OIDC users become members
    oidc_default_role: Literal["viewer", "member", "admin"] = "viewer"

    # Where uploaded originals and exports are kept: `local`, files under <data dir>/files, or
    # `s3`, a bucket of any S3-compatible service (see docs/storage.md).
    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None  # e.g. https://s3.eu-west-1.amazonaws.com
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""  # keys go under `<prefix>/` in the bucket

    # MCP servers (citeline.mcp). Executables an instance administrator may register as stdio
    # servers (absolute paths or names looked up on PATH); empty: no stdio server at all.
    mcp_stdio_commands: Names = Field(default_factory=list)
    mcp_init_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    mcp_call_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    mcp_result_max_chars: Annotated[int, Field(ge=100)] = 20000
    mcp_tools_cache_seconds: Annotated[int, Field(ge=1)] = 300
    mcp_tool_calls_per_minute: Annotated[int, Field(ge=0)] = 60  # per caller and tool; 0: off
    # Calls into Citeline's own MCP server (`/mcp`), per caller and tool; 0: off.
    mcp_server_tool_calls_per_minute: Annotated[int, Field(ge=0)] = 60
    mcp_stdio_cpu_seconds: Annotated[int, Field(ge=1)] = 120
    mcp_stdio_memory_mib: Annotated[int, Field(ge=64)] = 2048
    mcp_stdio_max_seconds: Annotated[float, Field(gt=0)] = 900.0  # a stdio server's lifetime
    # Encrypts stored secrets (MCP server env and headers); default: a key generated once and
    # kept in the database.
    secret_key: SecretStr | None = None

    sse_heartbeat_seconds: Annotated[float, Field(gt=0)] = 15.0
    request_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0

    @field_validator(
        "cors_origins",
        "trusted_proxies",
        "outbound_allowed_hosts",
        "mcp_stdio_commands",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """A list from the environment: JSON (`["a", "b"]`) or comma-separated (`a,b`)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError(
                "CITELINE_CORS_ORIGINS may not contain '*': the API takes credentials, so "
                "list the origins that may call it"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"CITELINE_TRUSTED_PROXIES: {entry!r} is not an address or a network"
                ) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return upper

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if not value:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"CITELINE_S3_ENDPOINT_URL must be an http(s) URL, such as "
                f"https://s3.us-east-1.amazonaws.com (got {value!r})"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(
                "CITELINE_S3_ENDPOINT_URL takes no credentials, query or fragment: put the "
                "keys in CITELINE_S3_ACCESS_KEY_ID and CITELINE_S3_SECRET_ACCESS_KEY"
            )
        return value.strip().rstrip("/")

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        prefix = value.strip().strip("/")
        if prefix and any(
            part in ("", ".", "..") or part.startswith(".") for part in prefix.split("/")
        ):
            raise ValueError(
                f"CITELINE_S3_PREFIX {value!r} must be '/'-separated names, none empty or "
                "starting with '.'"
            )
        return prefix

    @model_validator(mode="after")
    def _storage_complete(self) -> Settings:
        problem = self.s3_incomplete()
        if problem:
            raise ValueError(problem)
        return self

    def s3_incomplete(self) -> str | None:
        """What the s3 storage backend lacks, if it is chosen and lacks anything."""
        if self.storage_backend != "s3":
            return None
        missing = [
            f"CITELINE_{name.upper()}"
            for name in ("s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_secret_access_key")
            if not getattr(self, name)
        ]
        if not missing:
            return None
        return (
            f"CITELINE_STORAGE_BACKEND=s3 needs {', '.join(missing)} to be set "
            "(see docs/storage.md), or CITELINE_STORAGE_BACKEND=local to keep files in the data dir"
        )

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def models_path(self) -> Path:
        if self.models_dir is not None:
            return self.models_dir.expanduser().resolve()
        return self.data_path / "models"

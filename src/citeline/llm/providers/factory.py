"""Building the provider for a model version, once per process per distinct endpoint."""

from __future__ import annotations

import threading

from citeline.errors import ConfigurationError
from citeline.llm.bundled import gguf_path
from citeline.llm.model_server import SharedModel
from citeline.llm.models import ProviderKind
from citeline.llm.providers.base import ChatProvider
from citeline.llm.providers.local import LocalModelConfig, LocalProvider, held_name
from citeline.llm.registry import FOLLOWS_SETTINGS, VersionSpec
from citeline.outbound import check_url
from citeline.settings import Settings

_lock = threading.Lock()
_providers: dict[tuple[object, ...], ChatProvider] = {}


def local_config(version: VersionSpec, settings: Settings) -> LocalModelConfig:
    model = settings.llm_model if version.model == FOLLOWS_SETTINGS else version.model
    return LocalModelConfig(
        path=gguf_path(model, settings.models_path),
        context_tokens=int(version.parameters.get("context_tokens", settings.llm_context_tokens)),
        threads=int(version.parameters.get("threads", settings.llm_threads)),
        cache_ram_mib=settings.llm_cache_ram_mib,
        name=model,
        server=shared_server(model, settings),
    )


def shared_server(model: str, settings: Settings) -> SharedModel | None:
    """The shared llama.cpp server, for the one model it holds (the settings' default)."""
    if settings.llm_server_url is None or settings.llm_server_key is None:
        return None
    if model != settings.llm_model:
        return None
    return SharedModel(settings.llm_server_url, settings.llm_server_key.get_secret_value())


def loaded_name(version: VersionSpec, settings: Settings) -> str | None:
    """The name workers report `version`'s model loaded under; None for remote providers."""
    if version.provider != ProviderKind.local:
        return None
    return held_name(settings.llm_model if version.model == FOLLOWS_SETTINGS else version.model)


def provider_for(version: VersionSpec, settings: Settings) -> ChatProvider:
    if version.provider == ProviderKind.local:
        config = local_config(version, settings)
        key: tuple[object, ...] = (ProviderKind.local, config)
    else:
        secret = settings.provider_api_keys.get(version.credential or version.provider)
        if version.credential and secret is None:
            raise ConfigurationError(
                f"{version.label} uses credential {version.credential!r}, which "
                "CITELINE_PROVIDER_API_KEYS does not define"
            )
        api_key = secret.get_secret_value() if secret else None
        key = (version.provider, version.base_url, api_key, settings.llm_timeout_seconds)
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = _build(version, key, settings)
        return provider


def _build(version: VersionSpec, key: tuple[object, ...], settings: Settings) -> ChatProvider:
    if version.provider == ProviderKind.local:
        config = key[1]
        assert isinstance(config, LocalModelConfig)
        return LocalProvider(config, timeout_seconds=settings.llm_timeout_seconds)
    if version.base_url is not None:
        # Checked again here: the name may resolve elsewhere than when it was registered.
        check_url(version.base_url, settings.outbound_allowed_hosts, field="base_url")
    api_key = key[2] if isinstance(key[2], str) else None
    if version.provider == ProviderKind.openai:
        from citeline.llm.providers.openai_compat import OpenAICompatibleProvider

        return OpenAICompatibleProvider(
            version.base_url, api_key, timeout_seconds=settings.llm_timeout_seconds
        )
    if version.provider == ProviderKind.anthropic:
        from citeline.llm.providers.anthropic import AnthropicProvider

        return AnthropicProvider(
            api_key, base_url=version.base_url, timeout_seconds=settings.llm_timeout_seconds
        )
    raise ConfigurationError(f"{version.label}: unknown provider {version.provider!r}")

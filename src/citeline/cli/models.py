"""`citeline models ...` and `citeline chat`: the model registry and a quick generation."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from citeline.cli.client import CliError, ServerError, read_events
from citeline.cli.remote import DataDirOption, JsonOption, client, print_json, table

app = typer.Typer(
    help="Register model versions, route aliases, compare them.", no_args_is_help=True
)


@app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """Aliases with their routes, then each model with its newest version."""
    data = client().request("GET", "/v1/models")["data"]
    aliases = [
        {"alias": e["id"], "routes": e["routes"], "fallback": e["fallback"]}
        for e in data
        if e.get("kind") == "alias"
    ]
    models = [
        {"model": e["id"], "latest": e["latest"], "provider": e["provider"]}
        for e in data
        if e.get("kind") == "model"
    ]
    if as_json:
        print_json({"aliases": aliases, "models": models})
        return
    table(
        ["ALIAS", "ROUTES"],
        [
            [
                a["alias"],
                ", ".join(f"{r['model']} weight {r['weight']:g}" for r in a["routes"])
                + (f" (fallback {a['fallback']})" if a["fallback"] else ""),
            ]
            for a in aliases
        ],
        empty="no aliases",
    )
    typer.echo("")
    table(
        ["MODEL", "NEWEST", "PROVIDER"],
        [[m["model"], m["latest"], m["provider"]] for m in models],
        empty="no models",
    )


@app.command("versions")
def versions(name: str, as_json: JsonOption = False) -> None:
    """Every version of model NAME."""
    rows = client().request("GET", f"/v1/models/{name}/versions")["versions"]
    if as_json:
        print_json(rows)
        return
    table(
        ["VERSION", "PROVIDER", "MODEL", "BASE URL"],
        [[v["ref"], v["provider"], v["model"], v["base_url"] or ""] for v in rows],
        empty=f"no versions of {name}",
    )


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
    body = {
        "name": name,
        "provider": provider,
        "model": model,
        "base_url": base_url,
        "credential": credential,
        "parameters": _parameters(param or []),
        "prompt_template": template,
        "description": description,
    }
    typer.echo(client().request("POST", "/v1/models", json=body)["ref"])


@app.command("remove")
def remove(ref: Annotated[str, typer.Argument(help="name@N")]) -> None:
    """Delete a version no alias routes to."""
    name, _, number = ref.rpartition("@")
    if not name or not number.isdigit():
        raise CliError("name the version to delete as name@N")
    client().request("DELETE", f"/v1/models/{name}/versions/{number}")
    typer.echo(f"removed {ref}")


@app.command("route")
def route(
    alias: str,
    targets: Annotated[list[str], typer.Argument(help="name[@N][=WEIGHT] ...")],
    fallback: Annotated[str | None, typer.Option(help="Version to try if the chosen fails")] = None,
) -> None:
    """Point ALIAS at one version or split its traffic: `route answer a@1=0.9 b@2=0.1`."""
    routes = []
    for target in targets:
        ref, _, weight = target.partition("=")
        try:
            routes.append({"model": ref, "weight": float(weight) if weight else 1.0})
        except ValueError:
            raise CliError(f"{target!r}: the weight must be a number") from None
    entry = client().request(
        "PUT", f"/v1/models/{alias}/routes", json={"routes": routes, "fallback": fallback}
    )
    shown = ", ".join(f"{r['model']} weight {r['weight']:g}" for r in entry["routes"])
    typer.echo(f"{alias} → {shown}")


@app.command("stats")
def stats(
    alias: str,
    hours: Annotated[float, typer.Option(help="Look back this many hours")] = 24.0,
    as_json: JsonOption = False,
) -> None:
    """Compare the versions that served ALIAS."""
    answer = client().request("GET", f"/v1/models/{alias}/stats", params={"hours": hours})
    if as_json:
        print_json(answer)
        return

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value / 1000:.1f} s"

    table(
        ["VERSION", "REQUESTS", "ERRORS", "TYPICAL TIME", "SLOW (P95)", "TOKENS/S"],
        [
            [
                v["version"],
                v["requests"],
                f"{v['errors']} ({v['error_rate']:.0%})",
                ms(v["latency_ms_p50"]),
                ms(v["latency_ms_p95"]),
                "-"
                if v["output_tokens_per_second"] is None
                else f"{v['output_tokens_per_second']:.1f}",
            ]
            for v in answer["variants"]
        ],
        empty=f"{alias} served nothing in the last {hours:g} hours",
    )


@app.command("usage")
def usage(
    subject: Annotated[str | None, typer.Argument(help="Whose (default: yours).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tokens per model and day for one user."""
    rows = client().request("GET", "/v1/usage", params={"subject": subject})["usage"]
    if as_json:
        print_json(rows)
        return
    table(
        ["DAY", "MODEL", "REQUESTS", "TOKENS IN", "TOKENS OUT"],
        [
            [r["day"], r["model"], r["requests"], r["input_tokens"], r["output_tokens"]]
            for r in rows
        ],
        empty="no usage",
    )


@app.command("pull")
def pull(
    name: Annotated[
        str | None, typer.Argument(help="Bundled model (default: CITELINE_LLM_MODEL)")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Rebuild a bundled model from its packages into this machine's models directory and
    check its sha256."""
    from citeline.cli.common import fail, load_settings
    from citeline.errors import CitelineError
    from citeline.llm.bundled import BUNDLED, gguf_path

    settings = load_settings(data_dir, announce=True)
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
    """Generate a reply with a registered model on the server, streamed to the terminal."""
    messages = [{"role": "system", "content": system}] if system else []
    body = {
        "model": model,
        "messages": [*messages, {"role": "user", "content": message}],
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = client().request("POST", "/v1/chat/completions", json=body, stream=True, timeout=600)
    finish, served = None, model
    with response:
        for event in read_events(response):
            chunk: dict[str, Any] = event.data
            if "error" in chunk:
                raise ServerError(str(chunk["error"].get("message")))
            served = chunk.get("model", served)
            for choice in chunk.get("choices", []):
                sys.stdout.write(choice.get("delta", {}).get("content") or "")
                sys.stdout.flush()
                finish = choice.get("finish_reason") or finish
            if usage := chunk.get("usage"):
                typer.echo("")
                typer.secho(
                    f"[{served}: {usage['prompt_tokens']} in, {usage['completion_tokens']} out, "
                    f"{finish}]",
                    err=True,
                    fg=typer.colors.BRIGHT_BLACK,
                )


def _parameters(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CliError(f"--param {item!r} must be NAME=VALUE")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out

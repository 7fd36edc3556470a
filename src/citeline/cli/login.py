"""`citeline login`, `logout`, `whoami`: which server the CLI talks to, and as whom."""

from __future__ import annotations

from typing import Annotated

import typer

from citeline.cli.client import Client, CliError, normalise_server
from citeline.cli.credentials import DEFAULT_SERVER, CredentialStore, Login
from citeline.cli.remote import JsonOption, Target, print_json


def login(
    email: Annotated[
        str | None, typer.Option(help="Your account's email (prompted for when omitted).")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="The password (prompted for, hidden, when omitted).", show_default=False),
    ] = None,
    api_key: Annotated[
        bool, typer.Option("--api-key", help="Sign in with an API key (prompted for, hidden).")
    ] = False,
    workspace: Annotated[str | None, typer.Option(help="Workspace to act in.")] = None,
) -> None:
    """Sign in to a server (`--server`, CITELINE_URL, or 127.0.0.1:8000) and remember it:
    later commands use it until you log in elsewhere. The credentials are kept in your config
    directory, readable by you only."""
    store = CredentialStore()
    server = normalise_server(Target.server or store.default_server() or DEFAULT_SERVER)
    anonymous = Client(server, None, store)
    mode = anonymous.request("GET", "/v1/auth/config")["mode"]
    if mode == "local" and not api_key and email is None:
        store.put(Login(server))
        typer.echo(f"{server} runs in local mode: no sign-in needed; commands now use it")
        return
    if api_key:
        key: str = typer.prompt("API key", hide_input=True)
        entry = Login(server, kind="api_key", api_key=key.strip())
    else:
        email = email or typer.prompt("Email")
        secret = password if password is not None else typer.prompt("Password", hide_input=True)
        form = {"grant_type": "password", "username": email, "password": secret}
        if workspace:
            form["workspace"] = workspace
        tokens = anonymous.request("POST", "/v1/auth/token", form=form)
        entry = Login(
            server,
            kind="password",
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            email=email,
            workspace=tokens["workspace_id"],
        )
    signed = Client(server, entry, store)
    if entry.kind == "api_key":
        signed.request("GET", "/v1/jobs", params={"limit": 1})  # refused unless the key works
        store.put(entry)
        typer.echo(f"signed in to {server} with an API key")
        return
    me = signed.request("GET", "/v1/auth/me")
    entry.email = me["user"]["email"]
    entry.workspace = me["workspace"]["id"]
    store.put(entry)
    typer.echo(f"signed in to {server} as {entry.email}, {me['role']} of {me['workspace']['name']}")


def logout() -> None:
    """End the sign-in to the server and forget its credentials."""
    store = CredentialStore()
    server = normalise_server(Target.server or store.default_server() or DEFAULT_SERVER)
    entry = store.get(server)
    if entry is None:
        typer.echo(f"not signed in to {server}")
        return
    if entry.kind == "password" and entry.refresh_token:
        try:
            Client(server, None, store).request(
                "POST", "/v1/auth/logout", json={"refresh_token": entry.refresh_token}
            )
        except CliError as exc:
            typer.secho(
                f"warning: the server did not end the sign-in ({exc.message})",
                err=True,
                fg=typer.colors.YELLOW,
            )
    store.remove(server)
    typer.echo(f"signed out of {server}")


def whoami(as_json: JsonOption = False) -> None:
    """The server the commands talk to, and who you are there."""
    client = Client.connect(Target.server)
    if client.login is not None and client.login.kind == "api_key":
        client.request("GET", "/v1/jobs", params={"limit": 1})
        if as_json:
            print_json({"server": client.server, "api_key": True})
        else:
            typer.echo(f"an API key at {client.server}")
        return
    me = client.request("GET", "/v1/auth/me")
    if as_json:
        print_json({"server": client.server, **me})
        return
    user = me["user"]
    typer.echo(f"{user['email']} at {client.server}")
    typer.echo(f"{me['role']} of {me['workspace']['name']} ({me['workspace']['id']})")
    if me["mode"] == "local":
        typer.echo("local mode: no sign-in needed")

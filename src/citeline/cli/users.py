"""`citeline users ...` and `citeline workspaces ...`: accounts, roles and API keys through the
server's API, as the signed-in user (most of them need an instance administrator, which the
local mode's user is). Two stay on the server's machine and open its data directory:
`users create-admin`, which makes the first account before anyone can sign in, and
`users rotate-signing-key`, which the API does not offer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any, Literal

import typer

from citeline.cli.client import Client, CliError
from citeline.cli.remote import DataDirOption, JsonOption, client, print_json, table

# Spelled here, not imported: importing the auth package would slow every command's start.
DEFAULT_WORKSPACE = "default"
RoleName = Literal["viewer", "member", "admin", "owner"]


class ScopeName(StrEnum):
    api_keys = "api_keys"
    members = "members"


app = typer.Typer(help="Users, their roles, and API keys.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Workspaces.", no_args_is_help=True)

PasswordOption = Annotated[
    str | None,
    typer.Option(help="The password (prompted for, hidden, when omitted).", show_default=False),
]
WorkspaceOption = Annotated[
    str | None, typer.Option(help="Workspace id (default: the one you signed in to).")
]
RoleOption = Annotated[RoleName, typer.Option(help="Role in the workspace.")]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask.")]


def _password(password: str | None) -> str:
    if password is not None:
        return password
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _in(workspace: str | None) -> dict[str, str]:
    """The header that makes a request act in `workspace` (none: the sign-in's own)."""
    return {"X-Workspace": workspace} if workspace else {}


def _user(server: Client, email: str) -> dict[str, Any]:
    for user in server.request("GET", "/v1/users")["users"]:
        if user["email"] == email.strip().lower():
            return dict(user)
    raise CliError(f"no user with the email {email} at {server.server}")


@contextmanager
def _machine(data_dir: DataDirOption) -> Iterator[Any]:
    """This machine's resources, with the schema up to date: for the commands that must
    work without a server."""
    from citeline.cli.common import fail, load_settings, opened
    from citeline.errors import CitelineError

    settings = load_settings(data_dir, announce=True)
    try:
        with opened(settings) as resources:
            yield resources
    except CitelineError as exc:
        raise fail(exc) from exc


@app.command("create-admin")
def create_admin(
    email: str,
    password: PasswordOption = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Make an instance administrator, owner of the default workspace (the first account), in
    this machine's data directory: it works before any server runs or anyone can sign in."""
    from citeline.auth.access import Access, Role

    with _machine(data_dir) as resources:
        user = resources.accounts(Access.system()).create_user(
            email,
            _password(password),
            name=name,
            is_admin=True,
            workspace_id=DEFAULT_WORKSPACE,
            role=Role.owner,
        )
    typer.echo(f"created administrator {user.email} ({user.id})")


@app.command("create")
def create(
    email: str,
    password: PasswordOption = None,
    role: RoleOption = "member",
    workspace: WorkspaceOption = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    sso_only: Annotated[bool, typer.Option(help="No password; signs in by OIDC.")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="An instance administrator.")] = False,
) -> None:
    """Add a user to a workspace (instance administrators)."""
    body = {
        "email": email,
        "password": None if sso_only else _password(password),
        "name": name,
        "role": role,
        "workspace_id": workspace,
        "is_admin": admin,
    }
    user = client().request("POST", "/v1/users", json=body)
    where = workspace or "your workspace"
    typer.echo(f"created {user['email']} ({user['id']}) as {role} of {where}")


@app.command("list")
def list_users(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Users with their roles: the members of a workspace, or (for an instance administrator
    without --workspace) everyone."""
    server = client()
    if workspace:
        users = server.request("GET", f"/v1/workspaces/{workspace}/members")["members"]
    else:
        users = server.request("GET", "/v1/users")["users"]
    rows = [
        {
            "id": u["id"],
            "email": u["email"],
            "name": u["name"],
            "role": u["role"],
            "admin": u["is_admin"],
            "disabled": u["disabled"],
            "sso": u["sso"],
        }
        for u in users
    ]
    if as_json:
        print_json(rows)
        return
    table(
        ["EMAIL", "ROLE", "FLAGS", "ID"],
        [[r["email"], r["role"] or "-", _flags(r), r["id"]] for r in rows],
        empty=f"no users at {server.server}",
    )


def _flags(row: dict[str, Any]) -> str:
    flags = [name for name in ("admin", "disabled", "sso") if row[name]]
    return ",".join(flags) or "-"


@app.command("set-role")
def set_role(email: str, role: RoleName, workspace: WorkspaceOption = None) -> None:
    """Give a user a role in a workspace (adding them to it if needed)."""
    server = client()
    user = _user(server, email)
    target = workspace or _signed_in_workspace(server)
    server.request("PUT", f"/v1/workspaces/{target}/members/{user['id']}", json={"role": role})
    typer.echo(f"{user['email']} is now {role} of {target}")


def _signed_in_workspace(server: Client) -> str:
    me = server.request("GET", "/v1/auth/me")
    return str(me["workspace"]["id"])


@app.command("password")
def set_password(
    email: str,
    password: PasswordOption = None,
    current_password: Annotated[
        str | None,
        typer.Option(help="Your current password, to change your own.", show_default=False),
    ] = None,
) -> None:
    """Set a user's password."""
    server = client()
    user = _user(server, email)
    body = {"password": _password(password), "current_password": current_password}
    server.request("PATCH", f"/v1/users/{user['id']}", json=body)
    typer.echo(f"password of {user['email']} changed")


@app.command("disable")
def disable(email: str) -> None:
    """Stop a user from signing in or using their tokens."""
    server = client()
    user = _user(server, email)
    server.request("PATCH", f"/v1/users/{user['id']}", json={"disabled": True})
    typer.echo(f"{user['email']} disabled")


@app.command("enable")
def enable(email: str) -> None:
    """Let a disabled user sign in again."""
    server = client()
    user = _user(server, email)
    server.request("PATCH", f"/v1/users/{user['id']}", json={"disabled": False})
    typer.echo(f"{user['email']} enabled")


@app.command("delete")
def delete(email: str, yes: YesOption = False) -> None:
    """Delete a user's account."""
    server = client()
    user = _user(server, email)
    if not yes:
        typer.confirm(f"Delete the account of {user['email']}?", abort=True)
    server.request("DELETE", f"/v1/users/{user['id']}")
    typer.echo(f"{user['email']} deleted")


@app.command("create-key")
def create_key(
    name: str,
    role: RoleOption = "member",
    workspace: WorkspaceOption = None,
    expires_in_days: Annotated[float | None, typer.Option(min=0.001)] = None,
    scope: Annotated[
        list[ScopeName] | None,
        typer.Option(help="What the key may do beyond its role (repeatable)."),
    ] = None,
) -> None:
    """Make an API key for a service, with at most your role; the key is printed once and
    never again."""
    body = {
        "name": name,
        "role": role,
        "expires_in_days": expires_in_days,
        "scopes": [s.value for s in scope or []],
    }
    key = client().request("POST", "/v1/api-keys", json=body, headers=_in(workspace))
    typer.echo(
        f"API key {key['id']} ({key['role']} of {key['workspace_id']}); "
        "store it now, it is not shown again:"
    )
    typer.echo(key["key"])


@app.command("list-keys")
def list_keys(workspace: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """The API keys of a workspace."""
    server = client()
    keys = server.request("GET", "/v1/api-keys", headers=_in(workspace))["api_keys"]
    if as_json:
        print_json(keys)
        return
    table(
        ["NAME", "ROLE", "STATE", "CREATED BY", "ID"],
        [
            [k["name"], k["role"], "revoked" if k["revoked_at"] else "active", k["created_by"],
             k["id"]]
            for k in keys
        ],
        empty="no API keys",
    )  # fmt: skip


@app.command("revoke-key")
def revoke_key(key_id: str, workspace: WorkspaceOption = None) -> None:
    """Revoke an API key: it stops working at once."""
    client().request("DELETE", f"/v1/api-keys/{key_id}", headers=_in(workspace))
    typer.echo(f"API key {key_id} revoked")


@app.command("rotate-signing-key")
def rotate_key(data_dir: DataDirOption = None) -> None:
    """Sign access tokens with a new key; the old one verifies until the next rotation. Runs on
    the server's machine, on its data directory."""
    from citeline.auth.tokens import rotate_signing_key
    from citeline.cli.common import fail, load_settings
    from citeline.errors import ConfigurationError

    if load_settings(data_dir).jwt_secret is not None:
        raise fail(
            ConfigurationError(
                "CITELINE_JWT_SECRET is set: change it, and list the old one in "
                "CITELINE_JWT_PREVIOUS_SECRETS until its tokens have expired"
            )
        )
    with _machine(data_dir) as resources:
        rotate_signing_key(resources.sessions)
    typer.echo("new signing key in use within 30 s; tokens signed with the old one stay valid")


@workspaces_app.command("create")
def create_workspace(
    name: str,
    owner: Annotated[
        str | None, typer.Option(help="Email of the owner (default: you).", show_default=False)
    ] = None,
    workspace_id: Annotated[
        str | None, typer.Option("--id", help="Default: from the name.")
    ] = None,
) -> None:
    """Make a workspace (instance administrators)."""
    server = client()
    owner_id = _user(server, owner)["id"] if owner else None
    body = {"name": name, "id": workspace_id, "owner_id": owner_id}
    workspace = server.request("POST", "/v1/workspaces", json=body)
    whom = f", owned by {owner}" if owner else ""
    typer.echo(f"created workspace {workspace['id']} ({workspace['name']}){whom}")


@workspaces_app.command("list")
def list_workspaces(as_json: JsonOption = False) -> None:
    """The workspaces you can see, with your role in each."""
    server = client()
    workspaces = server.request("GET", "/v1/workspaces")["workspaces"]
    if as_json:
        print_json(workspaces)
        return
    table(
        ["ID", "NAME", "YOUR ROLE"],
        [[w["id"], w["name"], w["role"] or "-"] for w in workspaces],
        empty=f"no workspaces at {server.server}",
    )


@workspaces_app.command("delete")
def delete_workspace(workspace_id: str, yes: YesOption = False) -> None:
    """Delete a workspace with everything stored in it."""
    if not yes:
        typer.confirm(f"Delete workspace {workspace_id} and everything in it?", abort=True)
    client().request("DELETE", f"/v1/workspaces/{workspace_id}")
    typer.echo(f"deleted workspace {workspace_id}")

"""`citeline users ...` and `citeline workspaces ...`: accounts, roles and API keys, run on
the server's machine as the system itself (no sign-in), on the data directory they name."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from citeline.cli.client import CliError

if TYPE_CHECKING:
    from citeline.auth.access import Role
    from citeline.auth.accounts import Accounts

# Spelled here, not imported: importing the auth package would slow every command's start.
DEFAULT_WORKSPACE = "default"
RoleName = Literal["viewer", "member", "admin", "owner"]


class ScopeName(StrEnum):
    api_keys = "api_keys"
    members = "members"


app = typer.Typer(help="Users, their roles, and API keys.", no_args_is_help=True)
workspaces_app = typer.Typer(help="Workspaces.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where embedded data lives (CITELINE_DATA_DIR).")
]
PasswordOption = Annotated[
    str | None,
    typer.Option(help="The password (prompted for, hidden, when omitted).", show_default=False),
]
WorkspaceOption = Annotated[str, typer.Option(help="Workspace id.")]
RoleOption = Annotated[RoleName, typer.Option(help="Role in the workspace.")]


@contextmanager
def _as_system(data_dir: Path | None, workspace: str | None = None) -> Iterator[Accounts]:
    from citeline.auth.access import Access, Role
    from citeline.cli.common import fail, load_settings, opened
    from citeline.errors import CitelineError

    settings = load_settings(data_dir, announce=True)
    try:
        with opened(settings) as resources:
            access = Access.system()
            if workspace is not None:
                access = Access("system", workspace, Role.owner, instance_admin=True)
            yield resources.accounts(access)
    except CitelineError as exc:
        raise fail(exc) from exc


def _role(name: str) -> Role:
    from citeline.auth.access import Role

    return Role(name)


def _password(password: str | None) -> str:
    if password is not None:
        return password
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@app.command("create-admin")
def create_admin(
    email: str,
    password: PasswordOption = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Make an instance administrator, owner of the default workspace (the first account)."""
    with _as_system(data_dir) as accounts:
        user = accounts.create_user(
            email,
            _password(password),
            name=name,
            is_admin=True,
            workspace_id=DEFAULT_WORKSPACE,
            role=_role("owner"),
        )
    typer.echo(f"created administrator {user.email} ({user.id})")


@app.command("create")
def create(
    email: str,
    password: PasswordOption = None,
    role: RoleOption = "member",
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    sso_only: Annotated[bool, typer.Option(help="No password; signs in by OIDC.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Add a user to a workspace."""
    with _as_system(data_dir) as accounts:
        secret = None if sso_only else _password(password)
        user = accounts.create_user(
            email,
            secret,
            name=name,
            workspace_id=workspace,
            role=_role(role),
        )
    typer.echo(f"created {user.email} ({user.id}) as {role} of {workspace}")


@app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Every user, with their role in the workspace listed first for them."""
    with _as_system(data_dir) as accounts:
        members = accounts.users()
    rows = [
        {
            "id": str(m.user.id),
            "email": m.user.email,
            "role": m.role.value,
            "admin": m.user.is_admin,
            "disabled": m.user.disabled,
        }
        for m in members
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        flags = " admin" * bool(row["admin"]) + " disabled" * bool(row["disabled"])
        typer.echo(f"{row['id']}  {row['email']:40}  {row['role']:7}{flags}")


def _user_id(accounts: Accounts, email: str) -> uuid.UUID:
    user = accounts.by_email(email)
    if user is None:
        raise CliError(f"no user with the email {email}")
    return user.id


@app.command("set-role")
def set_role(
    email: str,
    role: RoleName,
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    data_dir: DataDirOption = None,
) -> None:  # fmt: skip
    """Give a user a role in a workspace (adding them to it if needed)."""
    with _as_system(data_dir) as accounts:
        accounts.set_member(workspace, _user_id(accounts, email), _role(role))
    typer.echo(f"{email} is now {role} of {workspace}")


@app.command("password")
def set_password(
    email: str, password: PasswordOption = None, data_dir: DataDirOption = None
) -> None:
    """Set a user's password."""
    with _as_system(data_dir) as accounts:
        accounts.update_user(_user_id(accounts, email), password=_password(password))
    typer.echo(f"password of {email} changed")


@app.command("disable")
def disable(email: str, data_dir: DataDirOption = None) -> None:
    """Stop a user from signing in or using their tokens."""
    with _as_system(data_dir) as accounts:
        accounts.update_user(_user_id(accounts, email), disabled=True)
    typer.echo(f"{email} disabled")


@app.command("enable")
def enable(email: str, data_dir: DataDirOption = None) -> None:
    with _as_system(data_dir) as accounts:
        accounts.update_user(_user_id(accounts, email), disabled=False)
    typer.echo(f"{email} enabled")


@app.command("delete")
def delete(email: str, data_dir: DataDirOption = None) -> None:
    with _as_system(data_dir) as accounts:
        accounts.delete_user(_user_id(accounts, email))
    typer.echo(f"{email} deleted")


@app.command("create-key")
def create_key(
    name: str,
    role: RoleOption = "member",
    workspace: WorkspaceOption = DEFAULT_WORKSPACE,
    expires_in_days: Annotated[float | None, typer.Option(min=0.001)] = None,
    scope: Annotated[
        list[ScopeName] | None,
        typer.Option(help="What the key may do beyond its role (repeatable)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make an API key for a service; the key is printed once and never again. A key made
    here belongs to the system (no person's authority bounds it): revoke it when done."""
    from citeline.auth.api_keys import ApiKeys

    with _as_system(data_dir, workspace) as accounts:
        keys = ApiKeys(accounts.sessions, accounts.access)
        row, secret = keys.create(
            name,
            _role(role),
            expires_in_days=expires_in_days,
            scopes=[s.value for s in scope or []],
        )
    typer.echo(f"API key {row.id} ({role} of {workspace}); store it now, it is not shown again:")
    typer.echo(secret)


@app.command("list-keys")
def list_keys(
    workspace: WorkspaceOption = DEFAULT_WORKSPACE, data_dir: DataDirOption = None
) -> None:
    from citeline.auth.api_keys import ApiKeys

    with _as_system(data_dir, workspace) as accounts:
        rows = ApiKeys(accounts.sessions, accounts.access).list()
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        typer.echo(f"{row.id}  {row.name:30}  {row.role:7}  {state}")


@app.command("revoke-key")
def revoke_key(key_id: uuid.UUID, data_dir: DataDirOption = None) -> None:
    from citeline.auth.api_keys import ApiKeys

    with _as_system(data_dir) as accounts:
        ApiKeys(accounts.sessions, accounts.access).revoke(key_id)
    typer.echo(f"API key {key_id} revoked")


@app.command("rotate-signing-key")
def rotate_key(data_dir: DataDirOption = None) -> None:
    """Sign access tokens with a new key; the old one verifies until the next rotation."""
    from citeline.auth.tokens import rotate_signing_key
    from citeline.cli.common import fail, load_settings, opened
    from citeline.errors import CitelineError, ConfigurationError

    settings = load_settings(data_dir, announce=True)
    if settings.jwt_secret is not None:
        raise fail(
            ConfigurationError(
                "CITELINE_JWT_SECRET is set: change it, and list the old one in "
                "CITELINE_JWT_PREVIOUS_SECRETS until its tokens have expired"
            )
        )
    try:
        with opened(settings) as resources:
            rotate_signing_key(resources.sessions)
    except CitelineError as exc:
        raise fail(exc) from exc
    typer.echo("new signing key in use within 30 s; tokens signed with the old one stay valid")


@workspaces_app.command("create")
def create_workspace(
    name: str,
    owner: Annotated[str, typer.Option(help="Email of the owner (a workspace always has one).")],
    workspace_id: Annotated[
        str | None, typer.Option("--id", help="Default: from the name.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make a workspace owned by an existing account."""
    with _as_system(data_dir) as accounts:
        workspace = accounts.create_workspace(
            name, workspace_id, owner_id=_user_id(accounts, owner)
        )
    typer.echo(f"created workspace {workspace.id} ({workspace.name}), owned by {owner}")


@workspaces_app.command("list")
def list_workspaces(data_dir: DataDirOption = None) -> None:
    with _as_system(data_dir) as accounts:
        for workspace, _ in accounts.workspaces():
            typer.echo(f"{workspace.id:30}  {workspace.name}")

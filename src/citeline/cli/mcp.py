"""`citeline mcp`: the MCP servers of a workspace on a running server.

citeline mcp add NAME --url URL [--header 'Authorization: Bearer ...']
citeline mcp add NAME --command /path/to/server [--arg ARG ...] [--env NAME=VALUE ...]
citeline mcp list | tools NAME | remove NAME
citeline mcp add NAME --url URL --user-header Authorization   (each user sets their own)
citeline mcp credentials set NAME --header Authorization      (asks for the value, hidden)
citeline mcp credentials show NAME | clear NAME
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from citeline.cli.client import CliError
from citeline.cli.remote import JsonOption, client, print_json, table

app = typer.Typer(help="MCP servers whose tools the assistant may use.", no_args_is_help=True)
credentials_app = typer.Typer(
    help="Your own credentials for a server whose registration asks each user for theirs.",
    no_args_is_help=True,
)
app.add_typer(credentials_app, name="credentials")


def _pairs(values: list[str] | None, separator: str, what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values or []:
        name, sep, rest = value.partition(separator)
        if not sep or not name.strip():
            raise CliError(f"{what} {value!r} must look like NAME{separator}VALUE")
        found[name.strip()] = rest.strip() if separator == ":" else rest
    return found


@app.command("add")
def add_server(
    name: Annotated[str, typer.Argument(help="Letters, digits, '_' and '-'.")],
    url: Annotated[str | None, typer.Option(help="A streamable HTTP MCP endpoint.")] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="'Name: value', stored encrypted.")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(help="A stdio server's executable (instance administrators only)."),
    ] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="One argument (repeat).")] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="NAME=VALUE the server may see (repeat).")
    ] = None,
    user_header: Annotated[
        list[str] | None,
        typer.Option("--user-header", help="A header each user sets for themselves (repeat)."),
    ] = None,
    user_env: Annotated[
        list[str] | None,
        typer.Option("--user-env", help="A variable each user sets for themselves (repeat)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an MCP server: --url for HTTP, or --command for stdio."""
    if (url is None) == (command is None):
        raise CliError("give either --url (an HTTP server) or --command (a stdio server)")
    body: dict[str, Any] = {"name": name}
    if url is not None:
        body |= {
            "transport": "http",
            "url": url,
            "headers": _pairs(header, ":", "header"),
            "user_headers": user_header or [],
        }
    else:
        body |= {
            "transport": "stdio",
            "command": command,
            "args": arg or [],
            "env": _pairs(env, "=", "--env"),
            "user_env": user_env or [],
        }
    server = client().request("POST", "/v1/mcp-servers", json=body)
    if as_json:
        print_json(server)
        return
    typer.echo(f"added {server['name']} ({server['id']})")


@app.command("list")
def list_servers(as_json: JsonOption = False) -> None:
    """List the workspace's MCP servers."""
    servers = client().request("GET", "/v1/mcp-servers")["servers"]
    if as_json:
        print_json(servers)
        return
    table(
        ["NAME", "TRANSPORT", "ID", "TARGET"],
        [
            [
                s["name"],
                s["transport"],
                s["id"],
                s["url"] or " ".join([s["command"] or "", *s["args"]]),
            ]
            for s in servers
        ],
        empty="no MCP servers",
    )


@app.command("tools")
def list_tools(
    server: Annotated[str, typer.Argument(help="Server name or id.")],
    refresh: Annotated[bool, typer.Option(help="Ask the server again.")] = False,
    as_json: JsonOption = False,
) -> None:
    """A server's tools, with your policy and each role's."""
    found = client().request(
        "GET", f"/v1/mcp-servers/{quote(server, safe='')}/tools", params={"refresh": refresh}
    )
    if as_json:
        print_json(found)
        return
    table(
        ["TOOL", "YOU", "VIEWER/MEMBER/ADMIN", "DESCRIPTION"],
        [
            [
                t["name"],
                t["policy"],
                "/".join(t["policies"][role] for role in ("viewer", "member", "admin")),
                t["description"].splitlines()[0] if t["description"] else "",
            ]
            for t in found["tools"]
        ],
        empty="no tools",
    )


@app.command("remove")
def remove_server(server: Annotated[str, typer.Argument(help="Server name or id.")]) -> None:
    """Remove an MCP server (its tools leave every conversation)."""
    client().request("DELETE", f"/v1/mcp-servers/{quote(server, safe='')}")
    typer.echo(f"removed {server}")


def _secrets(values: list[str] | None, separator: str, what: str) -> dict[str, str]:
    """NAME<separator>VALUE pairs; a bare NAME asks for its value without echoing it."""
    found: dict[str, str] = {}
    for value in values or []:
        if separator in value:
            found |= _pairs([value], separator, what)
        elif value.strip():
            found[value.strip()] = typer.prompt(f"{value.strip()}", hide_input=True)
        else:
            raise CliError(f"{what} needs a name")
    return found


def _show_credentials(found: dict[str, Any]) -> None:
    have = [*found["env_names"], *found["header_names"]]
    missing = [*found["missing_env"], *found["missing_headers"]]
    typer.echo(f"set: {', '.join(have) or 'none'}")
    typer.echo(f"missing: {', '.join(missing) or 'none'}")


@credentials_app.command("set")
def set_credentials(
    server: Annotated[str, typer.Argument(help="Server name or id.")],
    header: Annotated[
        list[str] | None,
        typer.Option("--header", help="'Name: value', or just Name to type it hidden (repeat)."),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="NAME=VALUE, or just NAME to type it hidden (repeat)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set your own values for the server's per-user keys (replacing those you set before)."""
    body = {"headers": _secrets(header, ":", "--header"), "env": _secrets(env, "=", "--env")}
    found = client().request(
        "PUT", f"/v1/mcp-servers/{quote(server, safe='')}/credentials", json=body
    )
    if as_json:
        print_json(found)
        return
    _show_credentials(found)


@credentials_app.command("show")
def show_credentials(
    server: Annotated[str, typer.Argument(help="Server name or id.")],
    as_json: JsonOption = False,
) -> None:
    """Which of the server's per-user keys you have set (values are never shown)."""
    found = client().request("GET", f"/v1/mcp-servers/{quote(server, safe='')}/credentials")
    if as_json:
        print_json(found)
        return
    _show_credentials(found)


@credentials_app.command("clear")
def clear_credentials(server: Annotated[str, typer.Argument(help="Server name or id.")]) -> None:
    """Forget your own values for the server."""
    client().request("DELETE", f"/v1/mcp-servers/{quote(server, safe='')}/credentials")
    typer.echo(f"cleared your credentials for {server}")

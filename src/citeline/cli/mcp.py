"""`citeline mcp`: the MCP servers of a workspace on a running server.

citeline mcp add NAME --url URL [--header 'Authorization: Bearer ...']
citeline mcp add NAME --command /path/to/server [--arg ARG ...] [--env NAME=VALUE ...]
citeline mcp list | tools NAME | remove NAME
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from citeline.cli.client import CliError
from citeline.cli.remote import JsonOption, client, print_json, table

app = typer.Typer(help="MCP servers whose tools the assistant may use.", no_args_is_help=True)


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
    as_json: JsonOption = False,
) -> None:
    """Register an MCP server: --url for HTTP, or --command for stdio."""
    if (url is None) == (command is None):
        raise CliError("give either --url (an HTTP server) or --command (a stdio server)")
    body: dict[str, Any] = {"name": name}
    if url is not None:
        body |= {"transport": "http", "url": url, "headers": _pairs(header, ":", "header")}
    else:
        body |= {
            "transport": "stdio",
            "command": command,
            "args": arg or [],
            "env": _pairs(env, "=", "--env"),
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

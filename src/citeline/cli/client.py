"""A small HTTP client for a running Citeline: what every user command of the CLI goes through.

    client = Client.connect(server)                 # --server, else CITELINE_URL, else the
                                                    # last `citeline login`, else 127.0.0.1:8000
    kbs = client.request("GET", "/v1/knowledge-bases")          # the JSON body (None if empty)
    job = client.request("POST", "/v1/reports", json={...})     # json= sends a JSON body
    response = client.request("GET", path, stream=True)         # the open response, to read
    for event in client.follow(job_id):             # /v1/jobs/{id}/events as they happen,
        print(event.seq, event.type, event.data)    # resumed with Last-Event-ID if cut; ends
                                                    # after finished, failed or stopped
    raise CliError("a sentence for a person")       # printed as `error: ...`, exit code 2

Every failure is a `CliError` (a `click.ClickException`, so typer prints it and exits) whose
message a person can act on: no server answers at the address, not signed in, the sign-in
expired, or the `detail` of the server's problem-details answer. Caller mistakes exit 2; the
server's or the network's failures exit 1. The client signs its requests with the credentials
`citeline login` stored for that server (`credentials.CredentialStore`) and swaps an expired
access token for a new one with the refresh token, once per request.

Only the standard library is used: a command must start in a fraction of a second.
"""

from __future__ import annotations

import json as jsonlib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import Any, BinaryIO

from citeline.cli.credentials import DEFAULT_SERVER, CredentialStore, Login
from citeline.cli.errors import CliError, ServerError

__all__ = ["CliError", "Client", "Event", "ServerError", "normalise_server", "read_events"]

TERMINAL = frozenset({"finished", "failed", "stopped"})
USER_AGENT = "citeline-cli"


@dataclass(frozen=True)
class Event:
    """One event of a job: its sequence number, type (`progress`, `token`, `finished`, ...)
    and data, as the server stored them."""

    seq: int
    type: str
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL


def normalise_server(address: str) -> str:
    """`http://host:port` without a trailing slash; a bare `host:port` means http."""
    address = address.strip()
    if "://" not in address:
        address = f"http://{address}"
    address = address.rstrip("/")
    parsed = urllib.parse.urlsplit(address)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise CliError(f"{address!r} is not a server address: give one like http://127.0.0.1:8000")
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise CliError(f"{address!r} has a malformed port") from None
    return address


class Client:
    """Requests to one Citeline server, signed as the user who logged in to it."""

    def __init__(
        self,
        server: str,
        login: Login | None = None,
        store: CredentialStore | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.server = normalise_server(server)
        self.login = login
        self.store = store
        self.timeout = timeout
        # Proxies from the environment, as any HTTP client; but a loopback server is never
        # reached through a proxy.
        proxies = {} if _is_loopback(self.server) else urllib.request.getproxies()
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies), _NoRedirect()
        )

    @classmethod
    def connect(cls, server: str | None = None, store: CredentialStore | None = None) -> Client:
        """The server named, else the one logged in to last, else the local default."""
        store = store or CredentialStore()
        address = normalise_server(server or store.default_server() or DEFAULT_SERVER)
        return cls(address, store.get(address), store)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Send one request. Returns the decoded JSON body (None when empty), or with
        `stream=True` the open response, which the caller reads and closes."""
        body: bytes | None = None
        sent = {"Accept": "application/json, text/event-stream", **(headers or {})}
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        response = self._send(method, path, params, body, sent, timeout)
        if stream:
            return response
        with response:
            return _decode(response.read())

    def upload(
        self,
        path: str,
        files: Iterable[tuple[Path, str]],
        *,
        fields: Mapping[str, str] | None = None,
        timeout: float = 600.0,
    ) -> Any:
        """POST files (each a local path and the name it is sent under) as multipart field
        `files`, streamed from disk, with optional text `fields`."""
        boundary = f"citeline-{uuid.uuid4().hex}"
        parts: list[bytes | Path] = []
        for name, value in (fields or {}).items():
            parts.append(_part_head(boundary, name, None) + value.encode() + b"\r\n")
        for local, sent_as in files:
            parts += [_part_head(boundary, "files", sent_as), local, b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in parts)
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length),
            "Accept": "application/json",
        }
        with self._send("POST", path, None, _Chunks(parts), headers, timeout) as response:
            return _decode(response.read())

    def follow(self, job_id: uuid.UUID | str, after: int = 0) -> Iterator[Event]:
        """The job's events after `after`, in order, until its terminal event; a cut
        connection is resumed where it stopped."""
        last, cuts = after, 0
        while True:
            try:
                response = self.request(
                    "GET",
                    f"/v1/jobs/{job_id}/events",
                    headers={"Last-Event-ID": str(last)},
                    stream=True,
                    timeout=self.timeout + 60,
                )
                with response:
                    for event in read_events(response):
                        last, cuts = event.seq, 0
                        yield event
                        if event.terminal:
                            return
            except (OSError, CliError) as exc:
                if isinstance(exc, CliError) and not isinstance(exc, ServerError):
                    raise
                cuts += 1
                if cuts > 3:
                    raise ServerError(
                        f"lost the event stream of job {job_id} at {self.server}"
                    ) from None
                continue
            # The stream ended without a terminal event: ask again from where it stopped.
            cuts += 1
            if cuts > 3:
                raise ServerError(f"the event stream of job {job_id} ended early")

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        headers: dict[str, str],
        timeout: float | None,
    ) -> HTTPResponse:
        url = self.server + path
        if params:
            query = [(k, v) for k, v in params.items() if v is not None]
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        refreshed = False
        while True:
            request = urllib.request.Request(url, data=body, method=method)
            for name, value in {"User-Agent": USER_AGENT, **headers}.items():
                request.add_header(name, value)
            if self.login is not None and self.login.secret:
                request.add_header("Authorization", f"Bearer {self.login.secret}")
            try:
                response: HTTPResponse = self._opener.open(request, timeout=timeout or self.timeout)
                return response
            except urllib.error.HTTPError as exc:
                problem = _problem(exc)
                if exc.code == 401 and not refreshed and self._refresh():
                    refreshed = True
                    if isinstance(body, _Chunks):
                        body.rewind()
                    continue
                raise self._error(method, path, exc.code, problem) from None
            except urllib.error.URLError as exc:
                raise self._unreachable(exc.reason) from None
            except TimeoutError as exc:
                raise self._unreachable(exc) from None
            except ConnectionError as exc:
                raise self._unreachable(exc) from None

    def _refresh(self) -> bool:
        """Swap the stored refresh token for new tokens; False when there is none or the
        server refuses it."""
        login = self.login
        if login is None or login.kind != "password" or not login.refresh_token:
            return False
        request = urllib.request.Request(
            self.server + "/v1/auth/token",
            data=urllib.parse.urlencode(
                {"grant_type": "refresh_token", "refresh_token": login.refresh_token}
            ).encode(),
            method="POST",
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                tokens = _decode(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in {400, 401}:
                login.access_token = login.refresh_token = None
                if self.store is not None:
                    self.store.put(login, make_default=False)
                return False
            raise self._error("POST", "/v1/auth/token", exc.code, _problem(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from None
        login.access_token = tokens["access_token"]
        login.refresh_token = tokens["refresh_token"]
        if self.store is not None:
            self.store.put(login, make_default=False)
        return True

    def _error(self, method: str, path: str, status: int, problem: dict[str, Any]) -> CliError:
        detail = _sentence(problem)
        if status == 401:
            again = f"run `citeline login --server {self.server}`"
            if self.login is None or self.login.kind == "none":
                return CliError(f"not signed in to {self.server} ({detail}): {again}")
            if self.login.kind == "api_key":
                return CliError(f"{self.server} refused the stored API key ({detail}): {again}")
            return CliError(f"your sign-in to {self.server} has expired or ended: {again} again")
        if status == 429:
            return ServerError(f"{detail}: too many requests, try again shortly")
        if not problem:
            hint = "" if status < 500 else " (see the server's log)"
            kind = CliError if status < 500 else ServerError
            return kind(
                f"{self.server} answered {status} to {method} {path}{hint}: is it a Citeline "
                "server of the same version?"
            )
        return (CliError if status < 500 else ServerError)(detail)

    def _unreachable(self, reason: object) -> CliError:
        if isinstance(reason, TimeoutError):
            return ServerError(f"{self.server} did not answer in time")
        why = getattr(reason, "strerror", None) or str(reason)
        return ServerError(
            f"no Citeline at {self.server} ({why}): start it with `make run` or "
            "`citeline serve`, or name another with --server or CITELINE_URL"
        )


def read_events(response: BinaryIO) -> Iterator[Event]:
    """Parse Server-Sent Events whose data is a stored job event's JSON (comments, `retry:`
    and events of other shapes are skipped)."""
    data: list[str] = []
    seq: int | None = None
    kind = "message"
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "id" and value.isdigit():
                seq = int(value)
            elif name == "event":
                kind = value
            continue
        if data:
            event = _event("\n".join(data), seq, kind)
            if event is not None:
                yield event
        data, seq, kind = [], None, "message"


def _event(text: str, seq: int | None, kind: str) -> Event | None:
    try:
        body = jsonlib.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    number = body.get("seq", seq)
    data = body.get("data")
    return Event(
        int(number) if number is not None else 0,
        str(body.get("type", kind)),
        data if isinstance(data, dict) else body,
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects would resend the Authorization header to wherever they point: refuse them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Chunks:
    """A multipart body read piece by piece, so a large file is never held in memory."""

    def __init__(self, parts: list[bytes | Path]) -> None:
        self.parts = parts

    def rewind(self) -> None:
        """Nothing to do: each iteration opens the files afresh."""

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, bytes):
                yield part
                continue
            with part.open("rb") as source:
                while block := source.read(1 << 20):
                    yield block


def _part_head(boundary: str, name: str, filename: str | None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        disposition += f'; filename="{quoted}"'
    kind = "application/octet-stream" if filename is not None else "text/plain; charset=utf-8"
    return (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n"
    ).encode()


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return jsonlib.loads(raw)
    except ValueError:
        raise CliError("the server's answer is not JSON: is it a Citeline server?") from None


def _problem(error: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = jsonlib.loads(error.read() or b"null")
    except (ValueError, OSError):
        return {}
    return body if isinstance(body, dict) and "detail" in body else {}


def _sentence(problem: dict[str, Any]) -> str:
    """A problem's detail in words: field names without their `body.`/`query.` prefix."""
    errors = problem.get("errors")
    if (
        isinstance(errors, list)
        and errors
        and all(isinstance(e, dict) and "." in str(e.get("field")) for e in errors)
    ):
        return "; ".join(
            f"{str(e.get('field', '')).partition('.')[2] or e.get('field')}: {e.get('message')}"
            for e in errors
            if isinstance(e, dict)
        )
    return str(problem.get("detail") or "").strip() or "the request failed"


def _is_loopback(server: str) -> bool:
    host = urllib.parse.urlsplit(server).hostname or ""
    return host in {"localhost", "127.0.0.1", "::1"}

"""Sign-ins the CLI keeps per server, in the user's config directory, readable by them only.

The file is `<config dir>/credentials.json` (`~/.config/citeline/` on Linux, following
`XDG_CONFIG_HOME`), mode 0600 in a 0700 directory. It maps each server URL to its credentials
and names the server that commands use when neither `--server` nor `CITELINE_URL` is given.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer

from citeline.cli.errors import CliError

DEFAULT_SERVER = "http://127.0.0.1:8000"


@dataclass
class Login:
    """What one server accepts from this user: tokens from a password sign-in, an API key, or
    nothing (a server in local mode)."""

    server: str
    kind: str = "none"  # password | api_key | none
    access_token: str | None = None
    refresh_token: str | None = None
    api_key: str | None = None
    email: str | None = None
    workspace: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def secret(self) -> str | None:
        return self.api_key if self.kind == "api_key" else self.access_token


def config_dir() -> Path:
    return Path(typer.get_app_dir("citeline"))


class CredentialStore:
    """The credentials file: read whole, written whole (atomically, never world-readable)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "credentials.json"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"default": None, "servers": {}}
        except (OSError, ValueError) as exc:
            raise CliError(
                f"cannot read {self.path} ({exc}): remove it and run `citeline login` again"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            return {"default": None, "servers": {}}
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            os.fchmod(handle, 0o600)
            with os.fdopen(handle, "w") as out:
                json.dump(data, out, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def default_server(self) -> str | None:
        server = self._read().get("default")
        return server if isinstance(server, str) else None

    def get(self, server: str) -> Login | None:
        entry = self._read()["servers"].get(server)
        if not isinstance(entry, dict):
            return None
        known = {name for name in Login.__dataclass_fields__ if name != "server"}
        return Login(server, **{k: v for k, v in entry.items() if k in known})

    def put(self, login: Login, *, make_default: bool = True) -> None:
        data = self._read()
        entry = {k: v for k, v in asdict(login).items() if k != "server" and v is not None}
        data["servers"][login.server] = entry
        if make_default:
            data["default"] = login.server
        self._write(data)

    def remove(self, server: str) -> bool:
        """Forget the server's credentials; it stays the default, so later commands say
        they are not signed in there rather than reach another server."""
        data = self._read()
        found = data["servers"].pop(server, None) is not None
        if found:
            self._write(data)
        return found

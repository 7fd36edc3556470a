"""The user commands of `citeline` against a real `citeline serve` on another port: the same
instance from any folder, sign-in kept per server, and clear errors when nothing answers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import Serve
from tests.fake_llm_server import FakeLLMServer, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "correct horse battery"


class Cli:
    """`citeline` run as a person would: from a folder of their choosing, with their own
    config directory, and no CITELINE_ settings but the ones given."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
        self.env.update(
            PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(home / "config"), NO_COLOR="1", **env
        )

    def __call__(
        self, *args: str, cwd: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        folder = cwd or self.home
        folder.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "citeline", *args],
            env=self.env,
            cwd=folder,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, cwd: Path | None = None) -> str:
        done = self(*args, cwd=cwd)
        assert done.returncode == 0, f"citeline {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    @property
    def credentials(self) -> Path:
        return self.home / "config" / "citeline" / "credentials.json"


def documents(folder: Path) -> Path:
    (folder / "nested").mkdir(parents=True)
    (folder / "lighthouse.md").write_text("# Varnholm\n\nThe lighthouse was built in 1847.\n")
    (folder / "nested" / "notes.txt").write_text("Notes about the dpkg database.\n")
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    return folder


def test_user_commands_reach_one_server_from_any_folder(data_dir: Path, tmp_path: Path) -> None:
    with FakeLLMServer(default=Reply("The lighthouse was built in 1847 [1].")) as model:
        serve = Serve(data_dir, workers=1, CITELINE_OUTBOUND_ALLOWED_HOSTS='["127.0.0.1"]')
        cli = Cli(tmp_path / "alice", CITELINE_URL=serve.url)
        folder = documents(tmp_path / "docs")

        ingested = cli("ingest", str(folder), "--kb", "harbour")
        assert ingested.returncode == 0, ingested.stderr
        assert "created knowledge base harbour" in ingested.stdout
        assert ingested.stderr.count("{") == 0  # no JSON log lines

        # Another folder, the same server: the same knowledge base, and no data made there.
        elsewhere = tmp_path / "elsewhere"
        listed = json.loads(cli.ok("kb", "list", "--json", cwd=elsewhere))
        assert [(kb["name"], kb["documents"]) for kb in listed] == [("harbour", {"ready": 2})]
        assert list(elsewhere.iterdir()) == []
        table = cli.ok("kb", "list", cwd=elsewhere)
        assert table.splitlines()[0].split() == ["NAME", "DOCUMENTS", "CHUNKS", "ID"]

        hits = json.loads(
            cli.ok("search", "dpkg database", "--kb", "harbour", "--k", "1", "--json")
        )
        assert hits["hits"][0]["source"] == "nested/notes.txt"
        assert "nested/notes.txt" in cli.ok("documents", "list", "--kb", "harbour")
        again = cli.ok("ingest", str(folder / "*.md"), "--kb", "harbour", "--no-wait")
        assert "unchanged lighthouse.md" in again
        missing = cli("search", "x", "--kb", "nope")
        assert missing.returncode == 2
        assert missing.stderr.startswith("error: knowledge base nope not found")

        assert "reindexed 2 documents, 0 failed" in cli.ok("reindex", "--kb", "harbour")
        models_ask_and_chat(cli, model)
        jobs = json.loads(cli.ok("jobs", "list", "--json", "--kind", "answers.answer"))
        assert jobs and all(job["state"] == "finished" for job in jobs)
        shown = json.loads(cli.ok("jobs", "show", jobs[0]["id"], "--json"))
        assert shown["id"] == jobs[0]["id"]
        events = cli.ok("jobs", "follow", jobs[0]["id"], "--json").splitlines()
        assert json.loads(events[-1])["type"] == "finished"
        ended = cli("jobs", "cancel", jobs[0]["id"])
        assert ended.returncode == 2 and "already" in ended.stderr
        unknown = cli("jobs", "show", "6d1f5a3e-0000-4000-8000-000000000000")
        assert unknown.returncode == 2 and "not found" in unknown.stderr
        assert "Traceback" not in unknown.stderr

        deleted = cli("kb", "delete", "harbour", "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert "no knowledge bases" in cli.ok("kb", "list")


def test_sign_in_per_server_and_what_happens_without_it(data_dir: Path, tmp_path: Path) -> None:
    machine = Cli(tmp_path / "root", CITELINE_AUTH="required")
    made = machine("users", "create-admin", "root@example.com", "--password", PASSWORD,
                   "--data-dir", str(data_dir))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"using data directory {data_dir}" in made.stderr
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="required")
    machine.ok("--server", serve.url, "login", "--email", "root@example.com",
               "--password", PASSWORD)  # fmt: skip
    key = machine.ok("users", "create-key", "ci", "--role", "viewer")
    secret = key.strip().splitlines()[-1]
    cli = Cli(tmp_path / "bob")

    nobody = cli("--server", serve.url, "kb", "list")
    assert nobody.returncode == 2
    assert f"not signed in to {serve.url}" in nobody.stderr
    assert "citeline login" in nobody.stderr

    wrong = cli(
        "--server", serve.url, "login", "--email", "root@example.com", "--password", "x" * 12
    )
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert not cli.credentials.exists()

    signed_in = cli.ok("--server", serve.url, "login", "--email", "root@example.com",
                       "--password", PASSWORD)  # fmt: skip
    assert f"signed in to {serve.url} as root@example.com" in signed_in
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.credentials.parent.stat().st_mode) == 0o700
    # The login names the server later commands use, from any folder.
    assert "root@example.com at " + serve.url in cli.ok("whoami", cwd=tmp_path / "x")
    cli.ok("kb", "create", "team")

    # An expired access token is renewed with the refresh token, silently.
    stored = json.loads(cli.credentials.read_text())
    stored["servers"][serve.url]["access_token"] = "expired"
    cli.credentials.write_text(json.dumps(stored))
    assert "team" in cli.ok("kb", "list")
    # A sign-in that has ended asks to log in again.
    stored = json.loads(cli.credentials.read_text())
    stored["servers"][serve.url].update(access_token="expired", refresh_token="ended")
    cli.credentials.write_text(json.dumps(stored))
    expired = cli("kb", "list")
    assert expired.returncode == 2
    assert f"your sign-in to {serve.url} has expired" in expired.stderr
    assert "citeline login" in expired.stderr

    cli.ok("login", "--email", "root@example.com", "--password", PASSWORD)
    assert "signed out" in cli.ok("logout")
    assert serve.url not in json.loads(cli.credentials.read_text())["servers"]
    after = cli("kb", "list")
    assert after.returncode == 2 and f"not signed in to {serve.url}" in after.stderr

    keyed = cli("login", "--api-key", stdin=secret + "\n")
    assert keyed.returncode == 0, keyed.stderr
    assert "an API key at" in cli.ok("whoami")
    assert "team" in cli.ok("kb", "list")
    viewer = cli("kb", "create", "more")
    assert viewer.returncode == 2 and "Traceback" not in viewer.stderr


def test_users_and_workspaces_through_the_server(data_dir: Path, tmp_path: Path) -> None:
    machine = Cli(tmp_path / "root", CITELINE_AUTH="required")
    machine.ok("users", "create-admin", "Root@Example.com", "--password", PASSWORD,
               "--data-dir", str(data_dir))  # fmt: skip
    serve = Serve(data_dir, workers=0, CITELINE_AUTH="required")
    admin = Cli(tmp_path / "admin", CITELINE_URL=serve.url)
    anonymous = admin("users", "list")
    assert anonymous.returncode == 2 and f"not signed in to {serve.url}" in anonymous.stderr
    admin.ok("login", "--email", "root@example.com", "--password", PASSWORD)

    short = admin("users", "create", "a@example.com", "--password", "short")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    nobody = admin("workspaces", "create", "Team Two", "--owner", "x@example.com")
    assert nobody.returncode == 2 and "no user with the email x@example.com" in nobody.stderr
    owned = admin.ok("workspaces", "create", "Team Two", "--owner", "root@example.com")
    assert "created workspace team-two (Team Two)" in owned
    assert "team-two" in admin.ok("workspaces", "list")
    admin.ok("users", "create", "v@example.com", "--password", "z" * 12,
             "--role", "viewer", "--workspace", "team-two")  # fmt: skip
    listed = json.loads(admin.ok("users", "list", "--json"))
    assert {(u["email"], u["role"], u["admin"]) for u in listed} == {
        ("root@example.com", "owner", True),
        ("v@example.com", "viewer", False),
    }
    assert admin.ok("users", "list").splitlines()[0].split() == ["EMAIL", "ROLE", "FLAGS", "ID"]
    admin.ok("users", "set-role", "v@example.com", "member", "--workspace", "team-two")
    members = json.loads(admin.ok("users", "list", "--workspace", "team-two", "--json"))
    assert {(u["email"], u["role"]) for u in members} == {
        ("root@example.com", "owner"),
        ("v@example.com", "member"),
    }
    myself = admin("users", "delete", "root@example.com", "--yes")
    assert myself.returncode == 2 and "cannot delete your own account" in myself.stderr

    key = admin.ok("users", "create-key", "ci", "--role", "viewer", "--workspace", "team-two")
    assert "(viewer of team-two)" in key
    secret, key_id = key.strip().splitlines()[-1], key.split()[2]
    assert key_id in admin.ok("users", "list-keys", "--workspace", "team-two")
    service = Cli(tmp_path / "ci", CITELINE_URL=serve.url)
    assert service("login", "--api-key", stdin=secret + "\n").returncode == 0
    assert "no knowledge bases" in service.ok("kb", "list")
    refused = service("users", "create", "w@example.com", "--password", "w" * 12)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    admin.ok("users", "revoke-key", key_id, "--workspace", "team-two")
    revoked = service("kb", "list")
    assert revoked.returncode == 2 and "refused the stored API key" in revoked.stderr

    person = Cli(tmp_path / "v", CITELINE_URL=serve.url)
    sign_in = ("login", "--email", "v@example.com", "--workspace", "team-two", "--password")
    admin.ok("users", "disable", "v@example.com")
    assert person(*sign_in, "z" * 12).returncode == 2
    admin.ok("users", "enable", "v@example.com")
    admin.ok("users", "password", "v@example.com", "--password", "n" * 12)
    assert person(*sign_in, "z" * 12).returncode == 2
    assert "signed in" in person.ok(*sign_in, "n" * 12)
    unknown = admin("users", "disable", "nobody@example.com")
    assert unknown.returncode == 2 and "no user with the email nobody@example.com" in unknown.stderr
    assert "v@example.com deleted" in admin.ok("users", "delete", "v@example.com", "--yes")
    assert "deleted workspace team-two" in admin.ok("workspaces", "delete", "team-two", "--yes")


def models_ask_and_chat(cli: Cli, model: FakeLLMServer) -> None:
    """Models, an answer with citations, and a chat, all on the server's side."""
    assert cli.ok(
        "models", "add", "scripted", "--provider", "openai", "--model", "m",
        "--base-url", model.openai_base_url,
    ).strip() == "scripted@1"  # fmt: skip
    cli.ok("models", "route", "answer", "scripted")
    aliases = json.loads(cli.ok("models", "list", "--json"))["aliases"]
    answer = next(a for a in aliases if a["alias"] == "answer")
    assert answer["routes"] == [{"model": "scripted@1", "weight": 1.0}]
    bad_model = cli("models", "add", "x", "--provider", "local", "--model", "nothing")
    assert bad_model.returncode == 2 and "a local model is" in bad_model.stderr

    asked = cli.ok("ask", "When was the lighthouse built?", "--kb", "harbour")
    assert "The lighthouse was built in 1847" in asked
    assert "lighthouse.md" in asked
    result = json.loads(cli.ok("ask", "When was it built?", "--kb", "harbour", "--json"))
    assert result["status"] == "answered"
    assert result["citations"][0]["source"] == "lighthouse.md"
    chatted = cli("chat", "Say hello.", "--model", "scripted")
    assert chatted.returncode == 0, chatted.stderr
    assert "1847" in chatted.stdout and "scripted" in chatted.stderr

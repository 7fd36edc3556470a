"""Schemathesis fuzzes every operation of the real app's OpenAPI schema, signed in as an
instance administrator, and no request may get a 5xx answer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citeline.api.app import create_app
from citeline.auth.access import Access, Role
from citeline.auth.accounts import Accounts
from citeline.auth.signin import SignIn
from citeline.resources import Resources
from citeline.settings import Settings
from tests.conftest import LiveServer, fast_settings

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EMAIL = "fuzz-admin@example.com"
PASSWORD = "fuzz-admin-password-1"
MAX_EXAMPLES = 60
SEED = 20240601
# No worker runs, so jobs stay queued: these wait on a job or stream for ever; /ready and
# /metrics are tested on their own. OIDC is not configured (every call is a 404) and would
# only cost time.
EXCLUDED_PATHS = [
    "/v1/chat/completions",
    "/v1/jobs/\\{job_id\\}/events",
    "/v1/agents/tasks/\\{task_id\\}/events",
    "/v1/answers",
    "/sessions/\\{session_id\\}/message",
    "/v1/agent-builder/sessions/\\{session_id\\}/message",
    "/v1/auth/oidc/.*",
    "/ready",
    "/metrics",
]
UPDATE_USER = "update_user_v1_users__user_id__patch"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, embedded_redis_url: str) -> Settings:
    return fast_settings(
        tmp_path / "data",
        database_url,
        embedded_redis_url,
        auth="required",
        rate_limit_user_per_minute=0,
        rate_limit_global_per_minute=0,
    )


@pytest.fixture
def admin_token(resources: Resources) -> str:
    Accounts(resources.sessions, Access.system()).create_user(
        EMAIL, PASSWORD, is_admin=True, workspace_id="default", role=Role.owner
    )
    signin = SignIn(resources.sessions, resources.redis, resources.settings)
    return signin.password(EMAIL, PASSWORD, "127.0.0.1").access_token


@pytest.fixture
def api(resources: Resources, admin_token: str) -> Iterator[str]:
    resources.knowledge().create("fuzz")
    with LiveServer(create_app(resources)) as url:
        yield url


def schemathesis(api: str, token: str, config: Path, *options: str) -> tuple[bool, str]:
    """Run the schemathesis CLI against the app's schema; whether it passed, and its report."""
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{api}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--workers",
        "1",
        "--no-color",
        "--output-truncate",
        "false",
        *options,
    ]
    run = subprocess.run(
        command, cwd=config.parent, capture_output=True, text=True, timeout=600, check=False
    )
    report = f"{run.stdout}\n{run.stderr}"
    return run.returncode == 0, report


# Two schemathesis runs over every route (more than 150 operations now): about 4 minutes on a
# quiet 2-core machine, over 5 in a full `make test` run.
@pytest.mark.timeout(900)
def test_no_operation_answers_with_a_server_error(
    api: str, admin_token: str, resources: Resources, tmp_path: Path
) -> None:
    assert httpx.get(f"{api}/openapi.json", timeout=20).status_code == 200
    # PATCH /v1/users/{id} may disable the caller or take away its admin flag, after which
    # every request is a 401 or 403. So it gets a run of its own, on another user.
    everything = tmp_path / "everything.toml"
    everything.write_text("")
    passed_all, report_all = schemathesis(
        api,
        admin_token,
        everything,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        # Given more than once, only the last --exclude-path-regex counts: pass one.
        "--exclude-path-regex",
        "^(" + "|".join(EXCLUDED_PATHS) + ")$",
        "--exclude-operation-id",
        UPDATE_USER,
    )
    member = Accounts(resources.sessions, Access.system()).create_user(
        "fuzz-member@example.com", PASSWORD, workspace_id="default"
    )
    update_member = tmp_path / "update-member.toml"
    update_member.write_text(f'[parameters]\n"path.user_id" = "{member.id}"\n')
    passed_patch, report_patch = schemathesis(
        api,
        admin_token,
        update_member,
        "--phases",
        "examples,coverage,fuzzing",
        "--include-operation-id",
        UPDATE_USER,
    )
    assert passed_all, f"schemathesis found server errors:\n{report_all}"
    assert passed_patch, f"schemathesis found server errors in PATCH /v1/users:\n{report_patch}"

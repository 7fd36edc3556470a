"""The deployment files: the Dockerfile passes hadolint, the Compose file validates against the
Compose Specification and the Kubernetes manifests render with kustomize and validate against
the Kubernetes schemas. All offline: no Docker daemon or cluster runs here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from citeline.jobs.queue import QUEUE_NAMES
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


K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("production", "local")
# The oldest Kubernetes the manifests support (a preStop `sleep` needs 1.30), and the newest
# schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())


def render(kubectl: str, path: Path) -> list[dict[str, Any]]:
    rendered = run(kubectl, "kustomize", path)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def manifest_problems(resources: list[dict[str, Any]]) -> list[str]:
    problems = []
    for resource in resources:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(map(str, exc.path))
                problems.append(f"{resource['kind']}/{resource['metadata']['name']} {where}: {exc}")
    return problems


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, kubectl: str) -> list[dict[str, Any]]:
    return render(kubectl, K8S / "overlays" / request.param)


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def test_the_rendered_manifests_follow_the_kubernetes_schemas(
    overlay: list[dict[str, Any]],
) -> None:
    assert manifest_problems(overlay) == []


def test_a_typo_in_a_manifest_fails_validation(kubectl: str) -> None:
    def api() -> dict[str, Any]:
        return by_kind(render(kubectl, K8S / "base"), "Deployment")["citeline-api"]

    misspelt = api()
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    assert any("livenesProbe" in p for p in manifest_problems([misspelt]))
    mistyped = api()
    mistyped["spec"]["replicas"] = "two"
    assert any("replicas" in p and "'two'" in p for p in manifest_problems([mistyped]))


def test_api_and_workers_probe_scale_and_run_unprivileged(
    overlay: list[dict[str, Any]],
) -> None:
    deployments = by_kind(overlay, "Deployment")
    api = deployments["citeline-api"]["spec"]["template"]["spec"]
    (serve,) = api["containers"]
    assert serve["args"] == ["serve", "--workers", "0"]
    assert serve["livenessProbe"]["httpGet"]["path"] == "/health"
    assert serve["readinessProbe"]["httpGet"]["path"] == "/ready"
    worker = deployments["citeline-worker"]["spec"]["template"]["spec"]
    (work,) = worker["containers"]
    assert work["args"] == ["worker"]
    assert work["livenessProbe"]["exec"]["command"][-1] == "worker"
    for name in ("citeline-api", "citeline-worker"):
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            secret = volumes[mounts["/run/secrets"]]["secret"]["secretName"]
            assert secret.startswith("citeline-secrets")
    for name, hpa in by_kind(overlay, "HorizontalPodAutoscaler").items():
        spec = hpa["spec"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10), name
        targets = {
            m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
            for m in spec["metrics"]
            if m["type"] == "Resource"
        }
        assert targets == {"cpu": 70, "memory": 80}, name
    assert set(by_kind(overlay, "HorizontalPodAutoscaler")) == set(deployments) & {
        "citeline-api",
        "citeline-worker",
    }
    assert set(by_kind(overlay, "PodDisruptionBudget")) == {"citeline-api", "citeline-worker"}
    (job,) = by_kind(overlay, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert "CITELINE_STORAGE_BACKEND" in by_kind(overlay, "ConfigMap")["citeline-settings"]["data"]


def test_production_adds_an_ingress_and_queue_depth_scaling(kubectl: str) -> None:
    resources = render(kubectl, K8S / "overlays" / "production")
    assert {r["metadata"].get("namespace") for r in resources if r["kind"] != "Namespace"} == {
        "citeline"
    }
    assert by_kind(resources, "Ingress")["citeline"]["spec"]["rules"][0]["host"]
    worker = by_kind(resources, "HorizontalPodAutoscaler")["citeline-worker"]["spec"]
    (external,) = [m["external"] for m in worker["metrics"] if m["type"] == "External"]
    assert external["metric"]["name"] == "citeline_queue_depth"
    # Every queue counts: answers wait on `high`, ingestion on `default`.
    (queues,) = external["metric"]["selector"]["matchExpressions"]
    assert (queues["key"], queues["operator"]) == ("queue", "In")
    assert set(queues["values"]) == set(QUEUE_NAMES)
    # The Secret comes from the cluster, never from these files.
    assert by_kind(resources, "Secret") == {}

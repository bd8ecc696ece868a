"""The deployment files: linted as CI lints them, and consistent with the code.

Containers cannot run here: the image file and the manifests are checked,
not deployed. The linters are dev tools (make venv installs them): a missing one fails.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.__main__ import PROCESSES
from server.core.settings import Settings
from tests.support.binaries import venv_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The kustomization is not a Kubernetes resource: it has no schema.
MANIFESTS = sorted(
    p for p in (DEPLOY / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml"
)
KUBERNETES_VERSION = "1.30.0"


def _documents() -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in _documents() if doc["kind"] == kind]


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return resource["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_the_image_file_passes_hadolint() -> None:
    result = subprocess.run(
        [venv_binary("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_manifests_pass_strict_schema_validation() -> None:
    assert MANIFESTS, "no manifests in deploy/kubernetes"
    result = subprocess.run(
        [
            venv_binary("kubernetes-validate"),
            "--strict",
            "--quiet",
            "--kubernetes-version",
            KUBERNETES_VERSION,
            *map(str, MANIFESTS),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_process_the_manifests_start_exists() -> None:
    started = {
        container["args"][0]
        for resource in [*_of_kind("Deployment"), *_of_kind("CronJob")]
        for container in _pod_spec(resource)["containers"]
    }
    assert started == set(PROCESSES)


def test_pods_outlive_their_shutdown_grace() -> None:
    settings = _of_kind("ConfigMap")[0]["data"]
    grace = float(settings["SHUTDOWN_GRACE_SECONDS"])
    for deployment in _of_kind("Deployment"):
        spec = _pod_spec(deployment)
        pause = 0.0
        for container in spec["containers"]:
            command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
            if command:
                assert command["command"][0] == "sleep"
                pause = float(command["command"][1])
        if deployment["metadata"]["name"] != "codec":  # no calls in flight worth waiting for
            assert spec["terminationGracePeriodSeconds"] > grace + pause, deployment["metadata"]


def test_the_settings_the_manifests_give_are_settings() -> None:
    known = {field.alias for field in Settings.model_fields.values()}
    given = set(_of_kind("ConfigMap")[0]["data"])
    for resource in [*_of_kind("Deployment"), *_of_kind("CronJob")]:
        for container in _pod_spec(resource)["containers"]:
            given |= {variable["name"] for variable in container.get("env", [])}
    assert given - known == set()


def test_only_the_front_door_and_the_codec_server_admit_outside_callers() -> None:
    open_to: set[str] = set()
    for policy in _of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            sources = rule.get("from")
            ports = {port["port"] for port in rule.get("ports", [])}
            if sources is None:  # anyone, on these ports
                open_to |= ports
            elif any("namespaceSelector" in source for source in sources):
                names = {
                    source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    for source in sources
                }
                if names - {"monitoring"}:
                    open_to |= ports
    assert open_to == {50051, 8234}

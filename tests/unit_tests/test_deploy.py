"""deploy/: the Kubernetes manifests and the Compose file are valid and use real options."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from langchain_domain_router import RouterConfig
from langchain_domain_router.cli import build_parser
from langchain_domain_router.server import CheckpointerSpec

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes resource under deploy/k8s, by kind."""
    found = {}
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[document["kind"]] = document
    return found


def test_the_kubernetes_manifests_pass_kubernetes_validate():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    assert {path.stem for path in MANIFESTS} >= {"configmap", "deployment", "hpa", "secret"}
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_the_deployment_probes_serves_the_configmap_and_reads_the_secret():
    resources = manifests()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    args = build_parser(plugins=False).parse_args(container["args"])
    assert args.config == "/config/router.yaml"
    # Kubernetes waits for the drain and the slowest request before it kills the pod.
    assert pod["terminationGracePeriodSeconds"] > args.drain_s + 120
    config_map = resources["ConfigMap"]
    assert pod["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]
    RouterConfig.model_validate(yaml.safe_load(config_map["data"]["router.yaml"]))
    secret = resources["Secret"]
    assert container["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
    assert CheckpointerSpec.parse(secret["stringData"]["DOMAIN_ROUTER_CHECKPOINTER"]).kind == (
        "postgres"
    )
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target["name"] == resources["Deployment"]["metadata"]["name"]
    service = resources["Service"]["spec"]
    assert service["selector"] == resources["Deployment"]["spec"]["selector"]["matchLabels"]


def test_the_compose_file_runs_replicas_on_postgres_behind_nginx():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    assert set(compose["services"]) == {"postgres", "router", "nginx"}
    router = compose["services"]["router"]
    build_parser(plugins=False).parse_args(router["command"])
    dsn = router["environment"]["DOMAIN_ROUTER_CHECKPOINTER"].replace(
        "${POSTGRES_PASSWORD:-router}", "x"
    )
    assert CheckpointerSpec.parse(dsn).kind == "postgres"
    assert "proxy_pass http://routers;" in (DEPLOY / "nginx.conf").read_text(encoding="utf-8")


def test_docker_compose_config_accepts_the_compose_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)  # noqa: S603
    if version.returncode != 0:
        pytest.skip("docker compose is not available (the compose plugin is not installed)")
    result = subprocess.run(  # noqa: S603 - a fixed command line
        [docker, "compose", "-f", str(DEPLOY / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr

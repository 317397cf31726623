"""The Kubernetes overlays render, and every Deployment keeps the guarantees operations rely on."""
import pathlib
import shutil
import subprocess

import pytest
import yaml

OVERLAYS = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "overlays"
SERVICES = ("membership", "catalogue", "billing", "scheduling")

kubectl = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(kubectl is None, reason="kubectl (with its built-in kustomize) is not installed")


def render(overlay: str) -> list[dict]:
    text = subprocess.run([kubectl, "kustomize", str(OVERLAYS / overlay)], check=True, capture_output=True,
                          text=True).stdout
    assert "guest" not in text, "no manifest may use RabbitMQ's guest account"
    return [d for d in yaml.safe_load_all(text) if d]


def of_kind(documents, kind):
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


@pytest.mark.parametrize("overlay", ["development", "production"])
def test_every_service_is_deployed_safely_with_its_migration_job_budget_and_network_policy(overlay):
    documents = render(overlay)
    deployments = of_kind(documents, "Deployment")
    jobs = of_kind(documents, "Job")
    assert set(deployments) == set(SERVICES)
    assert set(of_kind(documents, "PodDisruptionBudget")) == set(SERVICES)
    assert set(SERVICES) | {"default-deny"} <= set(of_kind(documents, "NetworkPolicy"))
    for service, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] and isinstance(pod["securityContext"]["runAsUser"], int)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert pod["terminationGracePeriodSeconds"] >= 60
        env = {e["name"]: e for e in container["env"]}
        assert env["MIGRATE_ON_START"]["value"] == "false"  # the Job migrates, before the rollout
        for secret in ("AMQP_URI", "DATABASE_URL"):
            assert "secretKeyRef" in env[secret]["valueFrom"], f"{service}: {secret} must come from a Secret"
        migrate = jobs[f"{service}-migrate"]["spec"]["template"]["spec"]["containers"][0]
        assert migrate["command"][-3:] == ["migrate", "--service", service]
        assert migrate["image"] == container["image"]


def test_production_runs_two_replicas_in_production_mode_and_development_one():
    production = render("production")
    development = render("development")
    assert {d["spec"]["replicas"] for d in of_kind(production, "Deployment").values()} == {2}
    assert {d["spec"]["replicas"] for d in of_kind(development, "Deployment").values()} == {1}
    settings = next(d for n, d in of_kind(production, "ConfigMap").items() if n.startswith("partnership-settings"))
    assert settings["data"]["PARTNERSHIP_ENV"] == "production"

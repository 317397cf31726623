"""Writes the Kustomize base in deploy/k8s/base from one table of the four services.

    python -m deploy.k8s.generate          # write deploy/k8s/base/
    python -m deploy.k8s.generate --check  # fail when the checked-in base differs (make lint)

The base is generated, not hand-written, so the four services' Deployments, migration Jobs,
Services, PodDisruptionBudgets and NetworkPolicies cannot drift apart. Overlays
(deploy/k8s/overlays/development, production) are written by hand.

What the base guarantees:
- each service runs as the numeric non-root user of its image (10001), with a read-only root
  filesystem, no privilege escalation, no capabilities and the runtime's seccomp profile;
- liveness on /health, readiness on /ready (database and broker answer), a startup probe that
  gives the broker wait at start its time;
- `terminationGracePeriodSeconds` covers the service's longest unit of work;
- the database schema is migrated by a Job (`partnership-ops migrate`) run before the rollout;
  the Deployments run with MIGRATE_ON_START=false and refuse a schema behind their code;
- secrets (broker and database URLs, billing's bank details) are referenced, never included;
- only what must talk talks: ingress to a service's HTTP port from the ingress controller and
  Prometheus only; egress to DNS, the broker, PostgreSQL and HTTPS (the token issuer's keys).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

from deploy.generated import write_or_check

HERE = pathlib.Path(__file__).resolve().parent
BASE = HERE / "base"
REPO = HERE.parents[1]

IMAGE_USER = 10001
# name, HTTP port, grace period (s) = its longest unit of work plus a margin, resources
SERVICES = {
    # a national import of GIAS runs in one request
    "membership": {"port": 8001, "grace": 120, "cpu": "250m", "memory": "384Mi", "memory_limit": "768Mi"},
    # a renewal round (a job: it stops at a batch boundary on SIGTERM)
    "catalogue": {"port": 8002, "grace": 120, "cpu": "250m", "memory": "384Mi", "memory_limit": "1Gi"},
    # a billing run (a job, as above)
    "billing": {"port": 8003, "grace": 120, "cpu": "250m", "memory": "384Mi", "memory_limit": "1Gi"},
    # a peer-review plan: CP-SAT under its time limit
    "scheduling": {"port": 8004, "grace": 90, "cpu": "500m", "memory": "512Mi", "memory_limit": "1536Mi"},
}
PART_OF = "school-improvement-partnership"


def labels(service: str, component: str = "service") -> dict:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/component": component}


def security_context() -> dict:
    return {"runAsNonRoot": True, "runAsUser": IMAGE_USER, "runAsGroup": IMAGE_USER,
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


def pod_security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": IMAGE_USER, "runAsGroup": IMAGE_USER, "fsGroup": IMAGE_USER,
            "seccompProfile": {"type": "RuntimeDefault"}}


def secret_env(service: str) -> list[dict]:
    secret = f"partnership-{service}"
    env = [
        {"name": "AMQP_URI", "valueFrom": {"secretKeyRef": {"name": secret, "key": "amqp-uri"}}},
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": "database-url"}}},
    ]
    # Who may call the APIs (shared/shared/auth.py): the identity provider's issuer and the audience its
    # tokens name (required in production), its keys' URL (else OpenID discovery), and Prometheus's
    # scrape credential for /metrics. Never AUTH_DEVELOPMENT: the development issuer is for `make run`.
    env += [
        {"name": "AUTH_ISSUER", "valueFrom": {"secretKeyRef": {"name": "partnership-auth", "key": "issuer"}}},
        {"name": "AUTH_AUDIENCE", "valueFrom": {"secretKeyRef": {"name": "partnership-auth", "key": "audience"}}},
        {"name": "AUTH_JWKS_URL", "valueFrom": {"secretKeyRef": {"name": "partnership-auth", "key": "jwks-url",
                                                                 "optional": True}}},
        {"name": "METRICS_TOKEN", "valueFrom": {"secretKeyRef": {"name": "partnership-metrics", "key": "token"}}},
    ]
    if service == "billing":
        # The operator's identity printed on VAT invoices, under the names billing's config.yml reads; with
        # PARTNERSHIP_ENV=production billing refuses to start without every one (services/billing/README.md).
        for variable, key in (("OPERATOR_LEGAL_NAME", "legal-name"), ("OPERATOR_ADDRESS", "supplier-address"),
                              ("OPERATOR_VAT_NUMBER", "vat-number"),
                              ("OPERATOR_BANK_ACCOUNT_NAME", "bank-account-name"),
                              ("OPERATOR_BANK_SORT_CODE", "bank-sort-code"),
                              ("OPERATOR_BANK_ACCOUNT_NUMBER", "bank-account-number")):
            env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def deployment(service: str, spec: dict) -> dict:
    port = spec["port"]
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3,
             "failureThreshold": 3}
    container = {
        "name": service,
        "image": f"partnership-{service}",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "partnership-settings"}}],
        "env": [{"name": "WEB_SERVER_ADDRESS", "value": f"0.0.0.0:{port}"},
                {"name": "MIGRATE_ON_START", "value": "false"},
                *secret_env(service)],
        "resources": {"requests": {"cpu": spec["cpu"], "memory": spec["memory"]},
                      "limits": {"memory": spec["memory_limit"]}},
        "startupProbe": {**probe, "failureThreshold": 30},  # the broker wait at start: up to 5 minutes
        "livenessProbe": probe,
        "readinessProbe": {**probe, "httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "securityContext": security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "var", "mountPath": f"/srv/{service}/var"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": service, "app.kubernetes.io/component": "service"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(service),
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                                             "prometheus.io/path": "/metrics"}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": spec["grace"],
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                                {"name": "var", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def migration_job(service: str) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": f"{service}-migrate", "labels": labels(service, "migration")},
        "spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": 600,
            # Gone ten minutes after it finished, so the next release's `kubectl apply` creates it anew.
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels(service, "migration")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "containers": [{
                        "name": "migrate",
                        "image": f"partnership-{service}",
                        "command": ["/opt/venv/bin/partnership-ops", "migrate", "--service", service],
                        "env": [e for e in secret_env(service) if e["name"] == "DATABASE_URL"],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": security_context(),
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    }


def service_object(service: str, spec: dict) -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {"selector": {"app.kubernetes.io/name": service, "app.kubernetes.io/component": "service"},
                 "ports": [{"name": "http", "port": spec["port"], "targetPort": "http", "protocol": "TCP"}]},
    }


def disruption_budget(service: str) -> dict:
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {"maxUnavailable": 1,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": service,
                                              "app.kubernetes.io/component": "service"}}},
    }


def network_policy(service: str, spec: dict) -> dict:
    # Services never call each other over HTTP: they talk through the broker only.
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": service}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                     "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
                ],
                "ports": [{"protocol": "TCP", "port": spec["port"]}],
            }],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"protocol": "TCP", "port": 5671}, {"protocol": "TCP", "port": 5672}]},
                {"ports": [{"protocol": "TCP", "port": 5432}]},
                {"ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


def topology_job() -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "broker-topology", "labels": labels("broker-topology", "migration")},
        "spec": {
            "backoffLimit": 5, "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels("broker-topology", "migration")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "containers": [{
                        "name": "topology",
                        "image": "partnership-membership",
                        "command": ["/opt/venv/bin/partnership-ops", "topology", "apply",
                                    "--definitions", "/etc/partnership/definitions.json",
                                    "--passwords-file", "/etc/partnership/passwords/passwords.json"],
                        "env": [
                            {"name": "AMQP_URI", "valueFrom": {"secretKeyRef": {"name": "partnership-broker-admin",
                                                                                "key": "amqp-uri"}}},
                            {"name": "RABBITMQ_ADMIN_URI", "valueFrom": {"secretKeyRef": {
                                "name": "partnership-broker-admin", "key": "amqp-uri"}}},
                            {"name": "RABBITMQ_MANAGEMENT_URL", "valueFrom": {"secretKeyRef": {
                                "name": "partnership-broker-admin", "key": "management-url"}}},
                        ],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                        "securityContext": security_context(),
                        "volumeMounts": [
                            {"name": "definitions", "mountPath": "/etc/partnership/definitions.json",
                             "subPath": "definitions.json", "readOnly": True},
                            {"name": "passwords", "mountPath": "/etc/partnership/passwords", "readOnly": True},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [
                        {"name": "definitions", "configMap": {"name": "broker-topology"}},
                        {"name": "passwords", "secret": {"secretName": "partnership-broker-passwords"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }


def default_deny() -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "labels": {"app.kubernetes.io/part-of": PART_OF}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def jobs_egress() -> dict:
    # Migration and topology jobs reach only DNS, PostgreSQL and the broker (AMQP and management).
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "jobs-egress", "labels": {"app.kubernetes.io/part-of": PART_OF}},
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "migration"}},
                     "policyTypes": ["Egress"],
                     "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                                {"ports": [{"protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 5671},
                                           {"protocol": "TCP", "port": 5672}, {"protocol": "TCP", "port": 15672},
                                           {"protocol": "TCP", "port": 15671}]}]}}


def documents() -> dict[str, str]:
    """file name -> YAML text of the base."""
    files: dict[str, list[dict]] = {}
    for service, spec in SERVICES.items():
        files[f"{service}.yaml"] = [deployment(service, spec), service_object(service, spec),
                                    disruption_budget(service), network_policy(service, spec)]
        files[f"{service}-migrate.yaml"] = [migration_job(service)]
    files["broker-topology.yaml"] = [topology_job()]
    files["network.yaml"] = [default_deny(), jobs_egress()]
    out = {name: "# Generated by `python -m deploy.k8s.generate`; do not edit.\n"
           + yaml.safe_dump_all(docs, sort_keys=False) for name, docs in files.items()}
    definitions = (REPO / "deploy" / "rabbitmq" / "definitions.json").read_text()
    out["definitions.json"] = definitions
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": PART_OF}}],
        "resources": sorted(n for n in out if n.endswith(".yaml")),
        "configMapGenerator": [
            {"name": "partnership-settings", "literals": [
                "OPERATOR_NAME=bucks-learning-trust", "OPERATOR_LEGAL_NAME=Bucks Learning Trust", "LOG_LEVEL=INFO",
                "PYTHONWARNINGS=ignore::Warning:nameko.cli.commands"]},
            {"name": "broker-topology", "files": ["definitions.json"]},
        ],
        "images": [{"name": f"partnership-{s}", "newTag": "dev"} for s in SERVICES],
    }
    out["kustomization.yaml"] = ("# Generated by `python -m deploy.k8s.generate`; do not edit.\n"
                                 + yaml.safe_dump(kustomization, sort_keys=False))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when deploy/k8s/base is out of date")
    args = parser.parse_args(argv)
    wanted = documents()
    return write_or_check(wanted, BASE, check=args.check, pattern="*",
                          command="python -m deploy.k8s.generate")


if __name__ == "__main__":
    sys.exit(main())

"""The shipped broker configuration: RabbitMQ's `guest` may connect from localhost only, and no
service, compose file or configuration default runs as `guest` (each service has its own user from
the provisioned topology; the Kubernetes manifests are checked in test_k8s_manifests.py)."""
from __future__ import annotations

import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ("membership", "catalogue", "billing", "scheduling")


class ComposeLoader(yaml.SafeLoader):
    """Reads compose's own tags (`!reset`, `!override`) as plain values, and `${VAR}` as written.

    nameko's CLI, once any test has imported it, teaches `yaml.SafeLoader` to expand `${VAR}` (an implicit
    `!env_var` resolver); this loader keeps its own copy of the resolvers without that one."""


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "!env_var"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


ComposeLoader.add_multi_constructor("!", lambda loader, _tag, node: (
    loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_scalar(node)))


def settings(path: pathlib.Path) -> dict[str, str]:
    """`key = value` lines of a rabbitmq.conf (sysctl format), comments left out."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def test_the_shipped_broker_config_refuses_guest_from_anywhere_but_localhost():
    assert settings(ROOT / "deploy/rabbitmq/rabbitmq.conf").get("loopback_users.guest") == "true"


def test_compose_loads_it_after_the_official_images_defaults_which_let_guest_in_from_anywhere():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = [m.split(":") for m in compose["services"]["rabbitmq"]["volumes"]]
    (target,) = [m[1] for m in mounts if m[0] == "./deploy/rabbitmq/rabbitmq.conf"]
    assert target.startswith("/etc/rabbitmq/conf.d/") and pathlib.Path(target).name > "10-defaults.conf"


def test_the_debian_built_broker_image_appends_it_and_never_opens_loopback_users():
    dockerfile = (ROOT / "deploy/containers/rabbitmq/Dockerfile").read_text()
    entrypoint = (ROOT / "deploy/containers/rabbitmq/entrypoint.sh").read_text()
    assert "COPY deploy/rabbitmq/rabbitmq.conf /usr/local/share/partnership/rabbitmq.conf" in dockerfile
    assert 'cat /usr/local/share/partnership/rabbitmq.conf >> "$RABBITMQ_CONFIG_FILE"' in entrypoint
    assert "loopback_users = none" not in entrypoint


def test_no_service_runs_as_guest_in_compose_or_by_default():
    for path in (ROOT / "docker-compose.yml", ROOT / "deploy/compose/host.override.yml"):
        compose = yaml.load(path.read_text(), Loader=ComposeLoader)
        for name in SERVICES:
            uri = compose["services"][name]["environment"]["AMQP_URI"]
            assert re.match(rf"^amqps?://{name}:\$\{{", uri), (path.name, name, uri)
    for name in SERVICES:
        config = (ROOT / "services" / name / "config.yml").read_text()
        (default,) = re.findall(r"^AMQP_URI: \$\{AMQP_URI:([^}]*)\}$", config, re.MULTILINE)
        assert default.startswith(f"amqp://{name}@"), (name, default)
    assert "guest" not in (ROOT / "deploy/compose/env.example").read_text().lower()

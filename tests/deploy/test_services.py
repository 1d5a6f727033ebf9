"""The services' manifests: probes on endpoints that exist, migrations before serving,
hardened pods, settings and secrets, network policies and what the Ingress exposes."""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import pytest
from pydantic import SecretStr

from services.payment.app import refuse_unsafe_gateway
from services.payment.settings import PaymentSettings
from shared.platform.settings import ServiceSettings
from shared.topics import dead_letter_topic
from tests.deploy import support

Objects = dict[str, list[dict[str, Any]]]
POD_KINDS = ("Deployment", "StatefulSet", "Job")


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def _main_container(objects: list[dict[str, Any]], service: str) -> dict[str, Any]:
    name = support.k8s_name(service)
    (container,) = [
        c for c in _pod(support.one(objects, "Deployment", name))["containers"] if c["name"] == name
    ]
    return container


def _port(container: dict[str, Any], name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name_or_number]
    return int(port)


# ------------------------------------------------------------------------------ probes


@pytest.mark.parametrize("overlay", support.OVERLAYS)
def test_probes_point_at_endpoints_the_service_serves(
    overlays: Objects, code: dict[str, Any], overlay: str
) -> None:
    objects = overlays[overlay]
    config = support.config_map_data(objects, "oms-config")
    for service in support.SERVICES:
        container = _main_container(objects, service)
        probes = {
            kind: container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        statuses = code[service]["get_status"]
        assert statuses["/no-such-path"] == 404, "the existence check cannot tell"
        for kind, probe in probes.items():
            path = probe["httpGet"]["path"]
            assert statuses.get(path) not in (None, 404, 405), (
                f"{service}: {kind} GET {path} does not exist in the app ({statuses.get(path)})"
            )
            # The port the probe hits is the one the service listens on.
            assert _port(container, probe["httpGet"]["port"]) == int(config["OMS_HTTP_PORT"])
        assert config["OMS_HTTP_HOST"] == "0.0.0.0"
        annotations = support.one(objects, "Deployment", support.k8s_name(service))["spec"][
            "template"
        ]["metadata"]["annotations"]
        assert statuses[annotations["prometheus.io/path"]] == 200


# ------------------------------------------------------------------ workload wiring


@pytest.mark.parametrize("overlay", support.OVERLAYS)
def test_each_service_runs_its_module_after_its_migrations(overlays: Objects, overlay: str) -> None:
    objects = overlays[overlay]
    for service in support.SERVICES:
        name = support.k8s_name(service)
        pod = _pod(support.one(objects, "Deployment", name))
        container = _main_container(objects, service)
        (migrate,) = pod["initContainers"]
        assert container["args"] == [f"services.{service}"]
        assert migrate["args"] == ["shared.ops.migrate", service]
        assert migrate["image"] == container["image"]
        # Same settings and the same database identity as the service itself.
        assert migrate["envFrom"] == container["envFrom"]
        migrate_env = {e["name"]: e for e in migrate["env"]}
        for variable in container["env"]:
            if not variable["name"].startswith("OMS_") or "DATABASE" in variable["name"]:
                assert migrate_env[variable["name"]] == variable
        for kind in ("Service", "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy"):
            support.one(objects, kind, name)
        pdb = support.one(objects, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"] == pod_labels_selector(objects, name)
        assert pdb["spec"]["maxUnavailable"] == 1
        svc = support.one(objects, "Service", name)
        assert svc["spec"]["selector"] == pod_labels_selector(objects, name)
        assert svc["spec"]["ports"][0]["targetPort"] == "http"


def pod_labels_selector(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    deployment = support.one(objects, "Deployment", name)
    selector: dict[str, str] = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    return selector


@pytest.mark.parametrize("overlay", support.OVERLAYS)
def test_database_url_is_the_service_role_from_its_own_secret(
    overlays: Objects, overlay: str
) -> None:
    objects = overlays[overlay]
    secrets = {s["metadata"]["name"]: s for s in support.find(objects, "Secret")}
    for service in support.SERVICES:
        env = {e["name"]: e for e in _main_container(objects, service)["env"]}
        url = env["OMS_DATABASE_URL"]["value"]
        assert url.startswith(
            "postgresql://$(DATABASE_USER):$(DATABASE_PASSWORD)@$(DATABASE_HOST)/"
        )
        refs = {
            env[v]["valueFrom"]["secretKeyRef"]["name"]
            for v in ("DATABASE_USER", "DATABASE_PASSWORD")
        }
        (secret_name,) = refs
        assert re.fullmatch(f"oms-db-{support.k8s_name(service)}(-[a-z0-9]+)?", secret_name)
        names = [e["name"] for e in _main_container(objects, service)["env"]]
        # $(VAR) expands only variables defined earlier.
        assert names.index("DATABASE_PASSWORD") < names.index("OMS_DATABASE_URL")
        if overlay == "dev":
            secret = secrets[secret_name]
            assert secret["type"] == "kubernetes.io/basic-auth"
            username = base64.b64decode(secret["data"]["username"]).decode()
            assert username == service
    assert all(
        not s["metadata"]["name"].startswith("oms-db-")
        for s in support.find(overlays["prod"], "Secret")
    ), "prod Secrets must not be in git"


def test_prod_payment_names_stripe_and_takes_its_keys_from_a_secret(overlays: Objects) -> None:
    env = {e["name"]: e for e in _main_container(overlays["prod"], "payment")["env"]}
    routes = json.loads(env["OMS_PAYMENT_GATEWAYS"]["value"])
    assert routes == {"default": "stripe"}
    for variable in ("OMS_STRIPE_API_KEY", "OMS_STRIPE_WEBHOOK_SECRET"):
        reference = env[variable]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == "oms-payment-stripe", variable
        assert not reference.get("optional"), f"{variable}: production needs it"
    prod_secrets = {s["metadata"]["name"] for s in support.find(overlays["prod"], "Secret")}
    assert "oms-payment-stripe" not in prod_secrets, "prod Secrets are not in git"
    # The settings the manifest gives are the ones payment reads, and they start in production.
    settings = PaymentSettings(
        env="production",
        payment_gateways=routes,
        stripe_api_key=SecretStr("sk_live_x"),
        stripe_webhook_secret=SecretStr("whsec_x"),
    )
    refuse_unsafe_gateway(settings)
    dev = {e["name"] for e in _main_container(overlays["dev"], "payment")["env"]}
    assert "OMS_PAYMENT_GATEWAYS" not in dev  # the test gateway, as in development


def test_order_intake_gets_the_webhook_secrets_from_a_secret(overlays: Objects) -> None:
    for objects in overlays.values():
        env = {e["name"]: e for e in _main_container(objects, "order_intake")["env"]}
        for variable in ("OMS_SHOPIFY_WEBHOOK_SECRET", "OMS_WOOCOMMERCE_WEBHOOK_SECRET"):
            assert "secretKeyRef" in env[variable]["valueFrom"], variable
        for service in support.SERVICES[1:]:
            names = {e["name"] for e in _main_container(objects, service)["env"]}
            assert "OMS_SHOPIFY_WEBHOOK_SECRET" not in names


def test_channel_connector_takes_its_accounts_from_an_optional_secret(overlays: Objects) -> None:
    from services.channel_connector.settings import ChannelConnectorSettings

    assert "connector_accounts" in ChannelConnectorSettings.model_fields
    for overlay, objects in overlays.items():
        env = {e["name"]: e for e in _main_container(objects, "channel_connector")["env"]}
        reference = env["OMS_CONNECTOR_ACCOUNTS"]["valueFrom"]["secretKeyRef"]
        # Optional: with no Secret the connector starts with no account.
        assert reference["key"] == "accounts.json" and reference["optional"] is True, overlay
        assert re.fullmatch("oms-channel-accounts(-[a-z0-9]+)?", reference["name"]), overlay
        pod = _pod(support.one(objects, "Deployment", "channel-connector"))
        (migrate,) = pod["initContainers"]
        assert "OMS_CONNECTOR_ACCOUNTS" not in {e["name"] for e in migrate["env"]}, overlay
        for service in set(support.SERVICES) - {"channel_connector"}:
            names = {e["name"] for e in _main_container(objects, service)["env"]}
            assert "OMS_CONNECTOR_ACCOUNTS" not in names, (overlay, service)
        if overlay == "dev":
            (secret,) = [
                s
                for s in support.find(objects, "Secret")
                if s["metadata"]["name"] == reference["name"]
            ]
            assert base64.b64decode(secret["data"]["accounts.json"]) == b"[]"
        else:
            assert not support.find(objects, "Secret", reference["name"]), (
                "prod Secrets are not in git"
            )


def test_config_keys_are_settings_and_point_at_the_infrastructure(overlays: Objects) -> None:
    fields = set(ServiceSettings.model_fields)
    for overlay, objects in overlays.items():
        config = support.config_map_data(objects, "oms-config")
        for key in config:
            if key.startswith("OMS_"):
                assert key.removeprefix("OMS_").lower() in fields, f"{overlay}: {key} is no setting"
        assert config["OMS_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        collector = support.one(objects, "Service", "otel-collector")
        assert 4318 in [p["port"] for p in collector["spec"]["ports"]]
        host, port = config["DATABASE_HOST"].split(":")
        assert port == "5432"
        if overlay == "dev":
            support.one(objects, "Service", host)
        else:
            (cluster,) = support.find(objects, "Cluster")
            assert host == f"{cluster['metadata']['name']}-rw"  # CloudNativePG's primary service
            assert "sslmode=verify-full" in config["DATABASE_OPTIONS"]
        # Every Secret and ConfigMap a dev pod uses exists (the dev overlay is self-contained).
        if overlay == "dev":
            names = {o["metadata"]["name"] for o in objects if o["kind"] in ("Secret", "ConfigMap")}
            for ref in _references(objects):
                assert ref in names, f"dev: {ref} is referenced but not rendered"


def test_prod_needs_only_the_secrets_the_readme_lists(overlays: Objects) -> None:
    readme = (support.REPO / "deploy" / "README.md").read_text()
    # CloudNativePG creates <cluster>-ca; Strimzi the cluster CA and one Secret per KafkaUser.
    produced_by_operators = {"oms-pg-ca", "oms-kafka-cluster-ca-cert"}
    rendered = {
        o["metadata"]["name"] for o in overlays["prod"] if o["kind"] in ("Secret", "ConfigMap")
    }
    missing = set(_references(overlays["prod"])) - rendered
    for name in missing:
        assert name in produced_by_operators or f"`{name}`" in readme, f"{name} is not documented"
    cluster = support.one(overlays["prod"], "Cluster", "oms-pg")
    for role in cluster["spec"]["managed"]["roles"]:
        assert f"`{role['passwordSecret']['name']}`" in readme


def _references(objects: list[dict[str, Any]]) -> list[str]:
    refs: list[str] = []
    for obj in objects:
        if obj["kind"] not in POD_KINDS:
            continue
        pod = _pod(obj)
        for container in pod.get("initContainers", []) + pod["containers"]:
            for source in container.get("envFrom", []):
                refs += [v["name"] for v in source.values()]
            for variable in container.get("env", []):
                for ref in variable.get("valueFrom", {}).values():
                    if "name" in ref:
                        refs.append(ref["name"])
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                refs.append(volume["secret"]["secretName"])
            if "configMap" in volume:
                refs.append(volume["configMap"]["name"])
    return refs


# ------------------------------------------------------------------------ hardening


@pytest.mark.parametrize("overlay", support.OVERLAYS)
def test_every_pod_is_non_root_and_bounded(overlays: Objects, overlay: str) -> None:
    for obj in overlays[overlay]:
        if obj["kind"] not in POD_KINDS:
            continue
        pod = _pod(obj)
        where = f"{overlay}: {support.describe(obj)}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), where
            if container["image"].split("/")[-1].split(":")[0] == "oms":
                # Our image: read-only root, /tmp on an emptyDir.
                assert context["readOnlyRootFilesystem"] is True, where
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                volumes = {v["name"]: v for v in pod["volumes"]}
                assert "emptyDir" in volumes[mounts["/tmp"]], where


# ------------------------------------------------------------------ network policies


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values", []))
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def _policies_selecting(
    objects: list[dict[str, Any]], labels: dict[str, str]
) -> list[dict[str, Any]]:
    return [
        p
        for p in support.find(objects, "NetworkPolicy")
        if _selects(p["spec"]["podSelector"], labels)
    ]


def _pod_labels(objects: list[dict[str, Any]], deployment: str) -> dict[str, str]:
    labels: dict[str, str] = support.one(objects, "Deployment", deployment)["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def _admitted(
    objects: list[dict[str, Any]], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Whether the target pod's ingress policies let a pod of this namespace with the source
    labels in on this TCP port (podSelector peers only)."""
    for policy in _policies_selecting(objects, target):
        if "Ingress" not in policy["spec"]["policyTypes"]:
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = {(p["protocol"], p["port"]) for p in rule.get("ports", [])}
            if ("TCP", port) not in ports:
                continue
            for peer in rule.get("from", []):
                if set(peer) == {"podSelector"} and _selects(peer["podSelector"], source):
                    return True
    return False


@pytest.mark.parametrize("overlay", support.OVERLAYS)
def test_services_reach_only_kafka_postgres_the_collector_dns_and_https_if_they_call_out(
    overlays: Objects, overlay: str
) -> None:
    objects = overlays[overlay]
    assert any(
        p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"]
        for p in support.find(objects, "NetworkPolicy")
    ), "no default deny of ingress"
    kafka_labels, postgres_labels = _infrastructure_pod_labels(objects, overlay)
    collector_labels = _pod_labels(objects, "otel-collector")
    jaeger_labels = _pod_labels(objects, "jaeger")
    for service in support.SERVICES:
        labels = support.one(objects, "Deployment", support.k8s_name(service))["spec"]["template"][
            "metadata"
        ]["labels"]
        egress_policies = [
            p for p in _policies_selecting(objects, labels) if "Egress" in p["spec"]["policyTypes"]
        ]
        assert len(egress_policies) == 1, f"{service}: {len(egress_policies)} egress policies"
        reached = set()
        for rule in egress_policies[0]["spec"]["egress"]:
            ports = {(p["protocol"], p["port"]) for p in rule["ports"]}
            for peer in rule["to"]:
                selected = peer.get("podSelector", {}).get("matchLabels", {})
                if "matchExpressions" in peer.get("podSelector", {}):
                    # The console alone calls the services' APIs (as the signed-in user): their
                    # pods, all of them and nothing else, on the port they serve.
                    assert service == "console", f"{service} may reach {peer}"
                    others = [s for s in support.SERVICES if s != "console"]
                    chosen = {
                        s
                        for s in support.SERVICES
                        if _selects(peer["podSelector"], _pod_labels(objects, support.k8s_name(s)))
                    }
                    assert chosen == set(others), chosen
                    assert not _selects(peer["podSelector"], kafka_labels)
                    assert not _selects(peer["podSelector"], postgres_labels)
                    assert ports == {("TCP", 8080)}
                    reached.add("services")
                elif selected and selected.items() <= jaeger_labels.items():
                    # The console reads an order's trace from Jaeger's query API.
                    assert service == "console", f"{service} may reach {peer}"
                    assert ports == {("TCP", 16686)}
                    reached.add("jaeger")
                elif "ipBlock" in peer:
                    # Calls out (the identity provider's JWKS; carriers, partners, payment
                    # providers, channels) only over HTTPS, never to the private ranges.
                    assert service in CALLS_OUT, f"{service} may reach {peer}"
                    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
                    assert set(peer["ipBlock"]["except"]) >= {
                        "10.0.0.0/8",
                        "172.16.0.0/12",
                        "192.168.0.0/16",
                    }
                    assert ports == {("TCP", 443)}
                    reached.add("https")
                elif "namespaceSelector" in peer:
                    assert peer["namespaceSelector"]["matchLabels"] == {
                        "kubernetes.io/metadata.name": "kube-system"
                    }
                    assert selected == {"k8s-app": "kube-dns"}
                    assert ports == {("UDP", 53), ("TCP", 53)}
                    reached.add("dns")
                elif selected.items() <= kafka_labels.items():
                    assert ports == {("TCP", 9092)}
                    reached.add("kafka")
                elif selected.items() <= postgres_labels.items():
                    assert ports == {("TCP", 5432)}
                    reached.add("postgres")
                elif selected.items() <= collector_labels.items():
                    assert ports == {("TCP", 4318)}
                    reached.add("collector")
                else:
                    pytest.fail(f"{service} may reach {peer}")
        outside = {"https"} if service in CALLS_OUT else set()
        inside = {"services", "jaeger"} if service == "console" else set()
        assert reached == {"kafka", "postgres", "collector", "dns", *outside, *inside}
        # The clients' labels that Kafka and Postgres admit.
        assert labels["oms/kafka-client"] == labels["oms/postgres-client"] == "true"


# Who calls HTTPS outside the cluster: every service fetches the identity provider's JWKS in
# production (OMS_AUTH_JWKS_URL); payment providers, carriers and partners, the sales channels
# and the console's sign-in besides.
CALLS_OUT = frozenset(support.SERVICES)


@pytest.mark.parametrize("overlay", support.OVERLAYS)
def test_the_services_and_jaeger_take_the_console_calls_and_nobody_else_s(
    overlays: Objects, overlay: str
) -> None:
    """Egress alone is not enough: each service's pods, and Jaeger's, admit the console's on
    the port they serve; they admit no other pod of the namespace (the services do not call
    each other over HTTP)."""
    objects = overlays[overlay]
    console = _pod_labels(objects, "console")
    for service in support.SERVICES:
        if service == "console":
            continue
        target = _pod_labels(objects, support.k8s_name(service))
        assert _admitted(objects, console, target, 8080), f"{service} refuses the console"
        for other in support.SERVICES:
            if other != "console":
                source = _pod_labels(objects, support.k8s_name(other))
                assert not _admitted(objects, source, target, 8080), f"{other} -> {service}"
    jaeger = _pod_labels(objects, "jaeger")
    assert _admitted(objects, console, jaeger, 16686)
    assert not _admitted(objects, _pod_labels(objects, "order-intake"), jaeger, 16686)
    # The console's settings name those Services and the ports they listen on.
    env = {e["name"]: e.get("value") for e in _main_container(objects, "console")["env"]}
    from services.console.settings import ConsoleSettings

    for service in support.SERVICES:
        if service == "console":
            continue
        url = env[f"OMS_{service.upper()}_URL"]
        assert f"{service}_url" in ConsoleSettings.model_fields
        host, _, port = url.removeprefix("http://").partition(":")
        svc = support.one(objects, "Service", host)
        assert int(port or 80) in [p["port"] for p in svc["spec"]["ports"]], url
        assert (
            svc["spec"]["selector"].items()
            <= _pod_labels(objects, support.k8s_name(service)).items()
        ), url
    host, _, port = env["OMS_JAEGER_QUERY_URL"].removeprefix("http://").partition(":")
    svc = support.one(objects, "Service", host)
    assert svc["spec"]["selector"].items() <= jaeger.items()
    (query_port,) = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
    jaeger_ports = {
        p["name"]: p["containerPort"]
        for p in _pod(support.one(objects, "Deployment", "jaeger"))["containers"][0]["ports"]
    }
    assert jaeger_ports[query_port["targetPort"]] == 16686


def _infrastructure_pod_labels(
    objects: list[dict[str, Any]], overlay: str
) -> tuple[dict[str, str], dict[str, str]]:
    if overlay == "dev":
        kafka = support.one(objects, "StatefulSet", "kafka")["spec"]["template"]["metadata"][
            "labels"
        ]
        postgres = support.one(objects, "StatefulSet", "postgres")["spec"]["template"]["metadata"][
            "labels"
        ]
        return kafka, postgres
    brokers = [p for p in support.find(objects, "KafkaNodePool") if "broker" in p["spec"]["roles"]]
    assert brokers
    kafka = brokers[0]["spec"]["template"]["pod"]["metadata"]["labels"]
    assert all(p["spec"]["template"]["pod"]["metadata"]["labels"] == kafka for p in brokers)
    (listener,) = support.one(objects, "Kafka", "oms-kafka")["spec"]["kafka"]["listeners"]
    assert listener["port"] == 9092
    cluster = support.one(objects, "Cluster", "oms-pg")
    postgres = cluster["spec"]["inheritedMetadata"]["labels"]
    return kafka, postgres


# -------------------------------------------------------------------------- ingress


def _sample(path_template: str) -> str:
    return re.sub(r"\{[^}]+\}", "X-1", path_template)


Route = tuple[str, re.Pattern[str], str]  # host, path pattern, backend Service


def _ingress_routes(objects: list[dict[str, Any]]) -> list[Route]:
    (ingress,) = support.find(objects, "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    routes = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["port"]["name"] == "http"
            # ingress-nginx: `location ~* "^<path>"` (case-insensitive, anchored at the start).
            routes.append(
                (
                    rule["host"],
                    re.compile(path["path"], re.IGNORECASE),
                    path["backend"]["service"]["name"],
                )
            )
    return routes


def _hosts(routes: list[Route]) -> tuple[str, str]:
    """The API's host and the console's (the host whose every route goes to the console)."""
    by_host: dict[str, set[str]] = {}
    for host, _, backend in routes:
        by_host.setdefault(host, set()).add(backend)
    (console,) = [host for host, backends in by_host.items() if "console" in backends]
    assert by_host[console] == {"console"}, "the console's host serves the console only"
    (api,) = set(by_host) - {console}
    return api, console


def _reached(routes: list[Route], path: str, host: str | None = None) -> set[str]:
    """The backends a request for this path reaches: on `host`, else on the API's host."""
    host = host or _hosts(routes)[0]
    return {backend for on, pattern, backend in routes if on == host and pattern.match(path)}


# DESIGN.md §9: must be reachable from outside / must not be.
PUBLIC = [
    ("order-intake", "/v1/orders"),
    ("order-intake", "/v1/orders/{order_id}"),
    ("order-intake", "/v1/orders/{order_id}/cancel"),
    ("order-intake", "/v1/channels/{channel}/orders"),
    ("fulfilment", "/v1/carriers/{carrier}/events"),
    ("fulfilment", "/v1/fulfilments"),
    ("inventory", "/v1/stock/{sku}"),
    ("payment", "/v1/payments"),
    ("payment", "/v1/payments/webhooks/stripe"),
    ("returns", "/v1/returns/{return_id}"),
    ("channel-connector", "/v1/connectors/{account}/webhooks"),
]
PRIVATE = [
    "/v1/stock/adjustments",
    "/v1/skus/{sku}",
    "/v1/fulfilments/{id}/ship",
    "/v1/fulfilments/{id}/deliver",
    "/v1/returns",
    "/v1/returns/{return_id}/receive",
    "/v1/connectors",
    "/v1/connectors/stock",
    "/v1/connectors/pushes",
    "/v1/connectors/pushes/{push_id}/retry",
    "/v1/connectors/{account}/poll",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    # The console's pages are on its own host only.
    "/",
    "/sign-in",
    "/orders",
]


# The channel connector's only public route: id-only order webhooks (BigCommerce's).
CONNECTOR_WEBHOOKS = frozenset({"/v1/connectors/{account}/webhooks"})


def test_ingress_exposes_order_intake_carrier_webhooks_and_read_apis_only(
    overlays: Objects, code: dict[str, Any]
) -> None:
    for objects in overlays.values():
        routes = _ingress_routes(objects)
        for backend, path in PUBLIC:
            assert _reached(routes, _sample(path)) == {backend}, path
        for path in PRIVATE:
            assert not _reached(routes, _sample(path)), f"{path} is exposed"
        # Every operation the services actually serve: reachable only if it is order-intake's,
        # a carrier, Stripe or channel connector webhook, or a path that answers nothing but
        # reads, and always to its owner.
        for service in support.SERVICES:
            owner = support.k8s_name(service)
            for path, methods in code[service]["operations"].items():
                reached = _reached(routes, _sample(path))
                if not reached:
                    continue
                assert reached == {owner}, f"{path} of {service} is routed to {reached}"
                allowed = (
                    service == "order_intake"
                    or path.startswith("/v1/carriers/")
                    or path.startswith("/v1/payments/webhooks/")
                    or (service == "channel_connector" and path in CONNECTOR_WEBHOOKS)
                    or set(methods) <= {"GET", "HEAD"}
                )
                assert allowed, f"{methods} {path} of {service} is exposed by the Ingress"


# The console's host: its pages (and their forms, CSRF-checked, and static files), never the
# platform's routes. Probed in-process (tests/deploy/conftest.py CONSOLE_PAGES) to exist.
CONSOLE_PUBLIC = [
    "/",
    "/sign-in",
    "/sign-out",
    "/auth/login",
    "/auth/callback",
    "/static/console.css",
    "/orders",
    "/orders/{order_id}",
    "/kpis",
]
CONSOLE_PRIVATE = [
    "/health/live",
    "/health/ready",
    "/HEALTH/ready",
    "/metrics",
    "/Metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
]


def test_ingress_serves_the_console_pages_on_its_own_host_only(
    overlays: Objects, code: dict[str, Any]
) -> None:
    from tests.deploy.conftest import CONSOLE_PAGES

    for page in CONSOLE_PAGES:
        assert code["console"]["get_status"][page] not in (404, 405), page
        assert page in CONSOLE_PUBLIC
    for overlay, objects in overlays.items():
        routes = _ingress_routes(objects)
        api, console = _hosts(routes)
        assert api != console
        for path in CONSOLE_PUBLIC:
            assert _reached(routes, _sample(path), console) == {"console"}, (overlay, path)
        for path in CONSOLE_PRIVATE:
            assert not _reached(routes, _sample(path), console), (overlay, path)
        # The console's API (its OpenAPI document; the pages are not in it): the platform's
        # health routes never, its read-only JSON (`GET /v1/kpis`, what `oms report` reads) on
        # its own host only; nothing of it on the API's host.
        for path, methods in code["console"]["operations"].items():
            reached = _reached(routes, _sample(path), console)
            if path.startswith("/health/"):
                assert not reached, (overlay, path)
            elif reached:
                assert set(methods) <= {"GET", "HEAD"}, (overlay, path, methods)
            assert not _reached(routes, _sample(path), api), (overlay, path)
        assert _reached(routes, "/v1/kpis", console) == {"console"}
        if overlay == "prod":
            (ingress,) = support.find(objects, "Ingress")
            assert any(console in tls["hosts"] for tls in ingress["spec"]["tls"])
            # The identity provider sends the browser back to the console's host, over HTTPS.
            env = {e["name"]: e for e in _main_container(objects, "console")["env"]}
            assert env["OMS_OIDC_REDIRECT_URL"]["value"] == f"https://{console}/auth/callback"


def test_console_takes_its_session_key_and_identity_provider_from_a_secret(
    overlays: Objects,
) -> None:
    from services.console.settings import ConsoleSettings

    variables = {
        "OMS_SESSION_SECRET": "session-secret",
        "OMS_OIDC_ISSUER": "oidc-issuer",
        "OMS_OIDC_CLIENT_ID": "oidc-client-id",
        "OMS_OIDC_CLIENT_SECRET": "oidc-client-secret",
    }
    for overlay, objects in overlays.items():
        container = _main_container(objects, "console")
        env = {e["name"]: e for e in container["env"]}
        for variable, key in variables.items():
            assert variable.removeprefix("OMS_").lower() in ConsoleSettings.model_fields
            reference = env[variable]["valueFrom"]["secretKeyRef"]
            assert reference["key"] == key, variable
            assert re.fullmatch("oms-console(-[a-z0-9]+)?", reference["name"]), variable
        # The session key signs the cookies every replica must read: always required.
        assert not env["OMS_SESSION_SECRET"]["valueFrom"]["secretKeyRef"].get("optional")
        (migrate,) = _pod(support.one(objects, "Deployment", "console"))["initContainers"]
        assert not set(variables) & {e["name"] for e in migrate["env"]}, overlay
        for service in set(support.SERVICES) - {"console"}:
            names = {e["name"] for e in _main_container(objects, service)["env"]}
            assert not set(variables) & names, (overlay, service)
        oidc_optional = {
            env[v]["valueFrom"]["secretKeyRef"].get("optional", False)
            for v in ("OMS_OIDC_ISSUER", "OMS_OIDC_CLIENT_ID")
        }
        if overlay == "dev":
            # No identity provider in dev: sign-in with a token `oms token issue` makes.
            assert oidc_optional == {True}
            (secret,) = [
                s
                for s in support.find(objects, "Secret")
                if s["metadata"]["name"]
                == (env["OMS_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]["name"])
            ]
            assert set(secret["data"]) == {"session-secret"}
        else:
            # Production signs in through the provider only: the pod does not start without.
            assert oidc_optional == {False}
            assert not support.find(objects, "Secret", "oms-console"), "prod Secrets not in git"
            assert env["OMS_KAFKA_USERNAME"]["value"] == "oms-console"


def test_migrate_command_uses_each_service_own_settings_and_migrations() -> None:
    from shared.ops.migrate import load_settings, migrations_folder

    for service in support.SERVICES:
        settings = load_settings(service)
        assert settings.service_name == settings.db_schema == service
        # Numbered from 0001 (the console's first is its KPI read model, not an "init").
        assert sorted(migrations_folder(service).glob("0001_*.sql")), service


def _readme_yaml_block(first_line: str) -> str:
    readme = (support.REPO / "deploy" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def test_readme_per_account_connector_selects_its_own_pod_only(
    overlays: Objects, tmp_path: Any
) -> None:
    """The documented per-account copy of the connector (deploy/README.md) renders, with its own
    Secret and consumer group, and its Service and PodDisruptionBudget select its pod only."""
    import subprocess

    import yaml

    folder = "deploy/k8s/overlays/prod/connector-bigcommerce-us"
    kustomization = _readme_yaml_block(f"# {folder}/kustomization.yaml").replace(
        "../../../base/services/channel-connector",
        # kustomize takes relative paths only
        os.path.relpath(support.K8S / "base" / "services" / "channel-connector", tmp_path),
    )
    (tmp_path / "kustomization.yaml").write_text(kustomization)
    (tmp_path / "dead-letter-topic.yaml").write_text(
        _readme_yaml_block(f"# {folder}/dead-letter-topic.yaml")
    )
    result = subprocess.run(
        [support.kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    copy = [d for d in yaml.safe_load_all(result.stdout) if d]
    name = "channel-connector-bigcommerce-us"
    deployment = support.one(copy, "Deployment", name)
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    group = env["OMS_CONSUMER_GROUP"]["value"]
    assert group != "channel_connector"
    accounts = env["OMS_CONNECTOR_ACCOUNTS"]["valueFrom"]["secretKeyRef"]
    assert accounts["name"] == "oms-channel-accounts-bigcommerce-us"
    (topic,) = support.find(copy, "KafkaTopic")
    assert topic["spec"]["topicName"] == dead_letter_topic(group)
    assert support.one(copy, "Deployment", name)["spec"]["replicas"] == 1
    copy_labels = deployment["spec"]["template"]["metadata"]["labels"]
    base = overlays["prod"]
    base_labels = support.one(base, "Deployment", "channel-connector")["spec"]["template"][
        "metadata"
    ]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        own = support.one(copy, kind, name)["spec"]["selector"]
        other = support.one(base, kind, "channel-connector")["spec"]["selector"]
        own, other = own.get("matchLabels", own), other.get("matchLabels", other)
        assert own.items() <= copy_labels.items() and not own.items() <= base_labels.items()
        assert other.items() <= base_labels.items() and not other.items() <= copy_labels.items()
    # The base's network policy (the connector's egress) covers the copy.
    policies = _policies_selecting(base, copy_labels)
    assert [p["metadata"]["name"] for p in policies if "Egress" in p["spec"]["policyTypes"]] == [
        "channel-connector"
    ]

"""The Kubernetes manifests (deploy/k8s), offline: they render, validate against the Kubernetes schemas,
agree with the code (topics, consumer groups, ports) and keep to the rules of docs/architecture.md (non-root,
read-only, only the allowed calls, consumers never above partitions).

Rendering uses ``kubectl kustomize`` when kubectl is installed, else a ``kustomize`` binary, else builds
kustomize from the Go module proxy into .local/bin once.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections import ChainMap
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inbox_core.service import ServiceSettings
from inbox_core.topics import TOPICS, Topic, all_topic_configs

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
KUSTOMIZE_VERSION = "v5.5.0"
# The oldest Kubernetes the manifests target (gRPC probes, autoscaling/v2, policy/v1 are all older);
# kubernetes-validate carries schemas for it.
K8S_VERSION = "1.33.0"
NAMESPACE = "inbox"
CRD_GROUPS = ("kafka.strimzi.io/", "keda.sh/")
WORKLOAD_SERVICES = ("gateway", "ingest", "conversations", "customers", "orders", "presence")
TOPIC_LITERAL = re.compile(r"""["']((?:whatsapp|inbox)\.[a-z_]+\.v\d+(?:\.dlq)?)["']""")


# --- rendering -------------------------------------------------------------------------------------


def kustomize_command() -> list[str]:
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    local = ROOT / ".local" / "bin" / "kustomize"
    if found := shutil.which("kustomize") or (str(local) if local.exists() else None):
        return [found, "build"]
    go = shutil.which("go")
    assert go, "rendering needs kubectl, kustomize, or Go (to build kustomize from the Go module proxy)"
    subprocess.run(
        [go, "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
        env={**os.environ, "GOBIN": str(local.parent), "GOFLAGS": "-mod=mod"}, check=True, timeout=600,
    )
    return [str(local), "build"]


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([*kustomize_command(), str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"overlay {overlay} does not render:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(deployment)
    return [*spec.get("initContainers", []), *spec["containers"]]


def role_of(deployment: dict[str, Any]) -> tuple[str, str]:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return labels["app.kubernetes.io/name"], labels["app.kubernetes.io/component"]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_both_overlays_exist() -> None:
    assert {"local", "prod"} <= set(OVERLAYS)


def test_every_overlay_renders(overlay: str) -> None:
    docs = render(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap",
            "HorizontalPodAutoscaler", "ScaledObject", "KafkaTopic"} <= kinds
    names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "an object is rendered twice"


# --- schemas ---------------------------------------------------------------------------------------


def test_rendered_objects_validate_against_the_kubernetes_schemas(overlay: str) -> None:
    checked = 0
    for doc in render(overlay):
        if doc["apiVersion"].startswith(CRD_GROUPS):
            continue  # custom resources: their own checks below
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} in {overlay}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked > 40


def test_the_validator_rejects_what_it_should() -> None:
    # The check above is only worth something if a wrong manifest fails it.
    deployment = dict(of_kind(render("prod"), "Deployment")["gateway-api"])
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def test_kafka_topics_have_what_strimzi_requires(overlay: str) -> None:
    topics = of_kind(render(overlay), "KafkaTopic")
    for name, t in topics.items():
        assert t["apiVersion"] == "kafka.strimzi.io/v1beta2", name
        assert DNS_SUBDOMAIN.match(name), name
        assert t["metadata"]["labels"].get("strimzi.io/cluster"), f"{name}: no strimzi.io/cluster label"
        spec = t["spec"]
        assert isinstance(spec["topicName"], str) and spec["topicName"], name
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1, name
        assert isinstance(spec["replicas"], int) and 1 <= spec["replicas"] <= 32767, name
        assert spec["config"]["min.insync.replicas"] <= spec["replicas"], name
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}, name


def test_scaled_objects_have_what_keda_requires(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    for name, so in of_kind(docs, "ScaledObject").items():
        assert so["apiVersion"] == "keda.sh/v1alpha1", name
        spec = so["spec"]
        target = spec["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment" and target["name"] in deployments, name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        triggers = spec["triggers"]
        assert triggers, name
        assert len({t["name"] for t in triggers}) == len(triggers), f"{name}: trigger names must be unique"
        env = {e["name"] for c in containers(deployments[target["name"]]) for e in c.get("env", [])}
        for trigger in triggers:
            assert trigger["type"] == "kafka", name
            meta = trigger["metadata"]
            # KEDA's trigger metadata is a map of strings: a bare number or boolean is refused.
            assert all(isinstance(v, str) for v in meta.values()), f"{name}: {meta}"
            assert {"consumerGroup", "topic", "lagThreshold"} <= set(meta), name
            assert int(meta["lagThreshold"]) > 0, name
            assert meta.get("allowIdleConsumers", "false") == "false", name
            assert meta.get("offsetResetPolicy") == "earliest", f"{name}: the consumers start at the earliest offset"
            if "bootstrapServersFromEnv" in meta:
                assert meta["bootstrapServersFromEnv"] in env, f"{name}: the target has no such env var"
            else:
                assert meta.get("bootstrapServers"), name


# --- the code and the manifests agree --------------------------------------------------------------


def test_kafka_topics_are_exactly_the_code_topics(overlay: str) -> None:
    rendered = {t["spec"]["topicName"]: t["spec"] for t in of_kind(render(overlay), "KafkaTopic").values()}
    wanted = {name: (partitions, config) for name, partitions, config in all_topic_configs()}
    assert set(rendered) == set(wanted)
    assert {t.dlq for t in TOPICS} <= set(rendered)
    for name, (partitions, config) in wanted.items():
        assert rendered[name]["partitions"] == partitions, name
        for key, value in config.items():
            assert str(rendered[name]["config"][key]) == value, f"{name}: {key}"


def test_every_topic_the_code_names_is_in_the_topic_list() -> None:
    known = {name for name, _, _ in all_topic_configs()}
    found: dict[str, Path] = {}
    for src in [ROOT / "libs" / "inbox-core" / "src", *sorted((ROOT / "services").glob("*/src"))]:
        for path in src.rglob("*.py"):
            for literal in TOPIC_LITERAL.findall(path.read_text()):
                found[literal] = path
    assert found, "the scan found no topic names at all"
    unknown = {name: str(path.relative_to(ROOT)) for name, path in found.items() if name not in known}
    assert not unknown, f"topics named in code but missing from inbox_core.topics: {unknown}"


class Unresolved(Exception):
    pass


def _resolve(node: ast.expr, env: Mapping[str, Any]) -> Any:
    """The value of a simple expression (constants, names, attributes, f-strings) in ``env``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise Unresolved(node.id)
        return env[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(_resolve(node.value, env), node.attr)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner = value.value if isinstance(value, ast.FormattedValue) else value
            parts.append(str(_resolve(inner, env)))
        return "".join(parts)
    raise Unresolved(ast.dump(node))


def _topic_name(value: Any) -> str:
    name = value.name if isinstance(value, Topic) else value
    assert isinstance(name, str), value
    return name


def _defaults(func: ast.FunctionDef | ast.AsyncFunctionDef, env: Mapping[str, Any]) -> dict[str, Any]:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
    out: dict[str, Any] = {}
    for a, d in pairs:
        # A default that is not a simple value (a call, say) matters only if a topic or group uses it.
        with contextlib.suppress(Unresolved, AttributeError):
            out[a.arg] = _resolve(d, env)
        if out.get(a.arg) is None and a.annotation is not None:
            # `topics: Topics | None = None`, then `topics or <the default Topics>`: the class's defaults.
            with contextlib.suppress(Exception):
                out[a.arg] = _annotated_class(a.annotation, env)()
    return out


def _annotated_class(node: ast.expr, env: Mapping[str, Any]) -> type:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        for side in (node.left, node.right):
            if not (isinstance(side, ast.Constant) and side.value is None):
                return _annotated_class(side, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _annotated_class(ast.parse(node.value, mode="eval").body, env)
    cls = _resolve(node, env)
    if not isinstance(cls, type):
        raise Unresolved(ast.dump(node))
    return cls


def _scopes(tree: ast.Module) -> Iterator[tuple[ast.Call, list[ast.FunctionDef | ast.AsyncFunctionDef]]]:
    """Every call with the functions around it, innermost last."""
    def walk(node: ast.AST, outer: list[ast.FunctionDef | ast.AsyncFunctionDef]) -> Iterator[Any]:
        for child in ast.iter_child_nodes(node):
            inner = [*outer, child] if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else outer
            if isinstance(child, ast.Call):
                yield child, outer
            yield from walk(child, inner)
    yield from walk(tree, [])


@cache
def code_subscriptions() -> tuple[tuple[str, str | None, frozenset[str]], ...]:
    """``(service, group id or None when per-process, topics)`` for every Kafka subscription in services' code.

    Found by reading the source (``inbox_core.kafka.subscribe(broker, topic, group_id=...)`` and FastStream's
    ``broker.subscriber(*topics, group_id=...)``) and evaluating the arguments with the module's own
    globals and the enclosing functions' defaults, so a group or topic behind a constant is followed.
    """
    import inbox_core.kafka

    found: list[tuple[str, str | None, frozenset[str]]] = []
    for src in sorted((ROOT / "services").glob("*/src")):
        service = src.parent.name
        for path in sorted(src.rglob("*.py")):
            text = path.read_text()
            if "subscribe" not in text:
                continue
            tree = ast.parse(text)
            module_name = ".".join(path.relative_to(src).with_suffix("").parts)
            module = None
            for call, funcs in _scopes(tree):
                func = call.func
                is_ours = isinstance(func, ast.Name) and func.id == "subscribe"
                is_faststream = isinstance(func, ast.Attribute) and func.attr == "subscriber"
                if not (is_ours or is_faststream):
                    continue
                module = module or importlib.import_module(module_name)
                if is_ours and getattr(module, "subscribe", None) is not inbox_core.kafka.subscribe:
                    continue
                env: ChainMap[str, Any] = ChainMap(vars(module))
                for f in funcs:
                    env = env.new_child(_defaults(f, env))
                topic_args = call.args[1:2] if is_ours else call.args
                where = f"{path.relative_to(ROOT)}:{call.lineno}"
                try:
                    topics = frozenset(_topic_name(_resolve(a, env)) for a in topic_args)
                except Unresolved as exc:
                    pytest.fail(f"{where}: cannot tell which topic is consumed ({exc})")
                group_kw = [k.value for k in call.keywords if k.arg == "group_id"]
                group: str | None
                try:
                    group = _resolve(group_kw[0], env) if group_kw else None
                except Unresolved:
                    group = None  # made at run time: one group per process (the gateway's fan-out)
                found.append((service, group, topics))
    return tuple(found)


@cache
def code_group_constants() -> dict[str, str]:
    """Module-level constants named ``*GROUP*`` in services' code: ``{group id: service}``."""
    groups: dict[str, str] = {}
    for src in sorted((ROOT / "services").glob("*/src")):
        for path in sorted(src.rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                        and isinstance(node.value.value, str)):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and "GROUP" in target.id:
                            groups[node.value.value] = src.parent.name
    return groups


def scaled_groups(docs: tuple[dict[str, Any], ...]) -> dict[str, tuple[str, set[str]]]:
    """``{consumer group: (target Deployment, topics)}`` from the ScaledObjects."""
    out: dict[str, tuple[str, set[str]]] = {}
    for so in of_kind(docs, "ScaledObject").values():
        for trigger in so["spec"]["triggers"]:
            group = trigger["metadata"]["consumerGroup"]
            target, topics = out.setdefault(group, (so["spec"]["scaleTargetRef"]["name"], set()))
            assert target == so["spec"]["scaleTargetRef"]["name"], f"group {group} scales two Deployments"
            topics.add(trigger["metadata"]["topic"])
    return out


def test_the_code_scan_finds_the_known_subscriptions() -> None:
    # Guards the scan itself: ingest's two groups are in the code today.
    subs = {(s, g): t for s, g, t in code_subscriptions()}
    assert subs[("ingest", "inbox-ingest-sender")] == {"whatsapp.commands.v1"}
    assert subs[("ingest", "inbox-ingest-media")] == {"whatsapp.events.v1"}
    assert {"inbox-conversations", "inbox-customers"} <= set(code_group_constants())


def test_every_consumer_group_in_the_code_scales_on_its_own_topics_and_nothing_else(overlay: str) -> None:
    docs = render(overlay)
    scaled = scaled_groups(docs)
    deployments = of_kind(docs, "Deployment")
    code_topics: dict[tuple[str, str], set[str]] = {}
    for service, group, topics in code_subscriptions():
        if group is None:
            # A group per process (or none) is a fan-out, not a shared load: only the gateway does that.
            assert service == "gateway", f"{service} consumes {set(topics)} without a fixed consumer group"
            continue
        code_topics.setdefault((service, group), set()).update(topics)
    code_groups = {**code_group_constants(), **{g: s for s, g in code_topics}}
    assert set(scaled) == set(code_groups), "ScaledObject consumer groups differ from the code's"
    for group, service in code_groups.items():
        target, topics = scaled[group]
        assert role_of(deployments[target]) == (service, "worker"), f"{group} must scale {service}'s worker"
        if (service, group) in code_topics:
            assert topics == code_topics[(service, group)], f"{group}: lag is watched on the wrong topics"
    known = {name for name, _, _ in all_topic_configs()}
    assert all(topics <= known for _, topics in scaled.values())


def test_workers_never_scale_above_the_partitions_they_read(overlay: str) -> None:
    docs = render(overlay)
    partitions = {t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(docs, "KafkaTopic").values()}
    code_partitions = {t.name: t.partitions for t in TOPICS}
    for name, so in of_kind(docs, "ScaledObject").items():
        topics = [t["metadata"]["topic"] for t in so["spec"]["triggers"]]
        cap = min(min(partitions[t], code_partitions[t]) for t in topics)
        assert so["spec"]["maxReplicaCount"] <= cap, f"{name} may run more consumers than partitions"


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"inbox_{service}.settings")
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings]
    assert len(classes) == 1, f"inbox_{service}.settings: {classes}"
    return classes[0]


def test_container_ports_and_probes_are_the_services_own(overlay: str) -> None:
    for name, deployment in of_kind(render(overlay), "Deployment").items():
        service, role = role_of(deployment)
        fields = _settings_class(service).model_fields
        container = pod_spec(deployment)["containers"][0]
        assert container["args"] == [role], name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port_name, number in ports.items():
            field = f"{port_name}_port"
            if role == "worker" and f"worker_{field}" in fields:
                field = f"worker_{field}"  # ingest's worker has an ops port of its own
            assert fields[field].default == number, f"{name}: port {port_name} is not {service}'s {field}"
        probes = [container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")]
        if role == "api" and "http" not in ports:
            # A gRPC server: Kubernetes' own gRPC probe against the health service.
            assert all(p["grpc"]["port"] == ports["grpc"] for p in probes), name
        elif service == "sandbox":  # development and staging only: one port for everything
            assert all(p["httpGet"]["port"] in ("http", ports["http"]) for p in probes), name
        else:
            # Probes (and Prometheus) use the ops port: /internal/* and /metrics are never on a public one.
            assert "ops" in ports, f"{name}: an ops port of its own"
            assert all(p["httpGet"]["port"] in ("ops", ports["ops"]) for p in probes), name
            assert container["livenessProbe"]["httpGet"]["path"] == "/internal/alive", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/internal/ready", name


def test_every_setting_the_manifests_give_is_one_the_code_reads(overlay: str) -> None:
    # A misspelt variable would be ignored silently (settings ignore unknown names).
    from inbox_core.settings import InboxSettings

    docs = render(overlay)
    names = {k for c in of_kind(docs, "ConfigMap").values() for k in c.get("data", {})}
    names |= {e["name"] for d in of_kind(docs, "Deployment").values() for c in containers(d) for e in c.get("env", [])}
    for name in sorted(names):
        prefix, _, field = name.partition("_")
        if prefix == "OTEL":
            continue  # OpenTelemetry's own variables
        fields = InboxSettings.model_fields if prefix == "INBOX" else _settings_class(prefix.lower()).model_fields
        assert field.lower() in fields, f"{name} is not a setting of {prefix.lower()}"


def test_the_gateway_reads_client_addresses_through_the_ingress(overlay: str) -> None:
    # Behind the ingress every client would otherwise share one address (and its login limit).
    config = {k: v for c in of_kind(render(overlay), "ConfigMap").values() for k, v in c.get("data", {}).items()}
    assert int(config.get("GATEWAY_TRUSTED_PROXY_HOPS", "0")) >= 1


# --- hardening -------------------------------------------------------------------------------------


def test_every_container_runs_non_root_read_only_without_capabilities(overlay: str) -> None:
    for name, deployment in of_kind(render(overlay), "Deployment").items():
        spec = pod_spec(deployment)
        pod_sc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in containers(deployment):
            sc = {**pod_sc, **c.get("securityContext", {})}
            where = f"{name}/{c['name']}"
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("runAsUser", 0) != 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: a writable /tmp (emptyDir)"
            resources = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind}"


def test_every_deployment_has_its_service_account_disruption_budget_and_network_policy(overlay: str) -> None:
    docs = render(overlay)
    accounts = of_kind(docs, "ServiceAccount")
    budgets = [b["spec"]["selector"] for b in of_kind(docs, "PodDisruptionBudget").values()]
    policies = [p["spec"]["podSelector"] for p in of_kind(docs, "NetworkPolicy").values()]
    services = [{"matchLabels": s["spec"]["selector"]} for s in of_kind(docs, "Service").values()]
    for name, deployment in of_kind(docs, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        account = pod_spec(deployment)["serviceAccountName"]
        assert accounts[account]["automountServiceAccountToken"] is False, name
        assert sum(_selects(b, labels) for b in budgets) == 1, f"{name}: one PodDisruptionBudget"
        assert any(_selects(s, labels) for s in services), f"{name}: no Service"
        own = [p for p in policies if _selects(p, labels) and "app.kubernetes.io/name" in p.get("matchLabels", {})]
        assert own, f"{name}: no NetworkPolicy of its own"


def test_secrets_come_from_secret_refs_and_none_is_committed(overlay: str) -> None:
    docs = render(overlay)
    assert not of_kind(docs, "Secret"), "no Secret is part of an overlay"
    for name, deployment in of_kind(docs, "Deployment").items():
        for c in containers(deployment):
            for env in c.get("env", []):
                secretish = re.search(r"(SECRET|TOKEN|PASSWORD|MONGO_URL|KAFKA_BOOTSTRAP)$", env["name"])
                if secretish:
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{name}: {env['name']} not from a Secret"
    for config in of_kind(docs, "ConfigMap").values():
        assert not any(re.search(r"SECRET|TOKEN|PASSWORD", k) for k in config["data"]), config["metadata"]["name"]


def test_the_example_secret_is_in_no_kustomization_and_has_only_placeholders() -> None:
    example = K8S / "secret.example.yaml"
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secret.example" not in yaml.safe_dump(yaml.safe_load(kustomization.read_text())), kustomization
    secrets = [d for d in yaml.safe_load_all(example.read_text()) if d]
    assert secrets
    for secret in secrets:
        assert all("CHANGE-ME" in value for value in secret["stringData"].values()), secret["metadata"]["name"]


# --- scaling and overlays --------------------------------------------------------------------------


def test_autoscaling_per_role(overlay: str) -> None:
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler").values()}
    keda = {s["spec"]["scaleTargetRef"]["name"] for s in of_kind(docs, "ScaledObject").values()}
    assert set(hpas) == {"gateway-api", "ingest-api"}
    for hpa in hpas.values():
        metrics = hpa["spec"]["metrics"]
        assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    workers = {n for n, d in deployments.items() if role_of(d)[1] == "worker"}
    assert keda == workers, "every worker, and only workers, scales on consumer lag"
    for name in set(hpas) | keda:
        # A replica count in the Deployment would fight the autoscaler on every apply.
        assert "replicas" not in deployments[name]["spec"], name


def test_the_sandbox_is_only_in_the_local_overlay() -> None:
    def has_sandbox(overlay: str) -> bool:
        return any(d["metadata"]["name"].startswith("sandbox") for d in render(overlay))

    assert has_sandbox("local")
    assert not has_sandbox("prod")
    assert not any(d["metadata"]["name"].startswith("sandbox") for d in render_base())


@cache
def render_base() -> tuple[dict[str, Any], ...]:
    out = subprocess.run([*kustomize_command(), str(K8S / "base")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def test_local_runs_one_replica_of_each_role() -> None:
    docs = render("local")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
            for h in of_kind(docs, "HorizontalPodAutoscaler").values()}
    keda = {s["spec"]["scaleTargetRef"]["name"]: s["spec"]["maxReplicaCount"]
            for s in of_kind(docs, "ScaledObject").values()}
    for name, deployment in of_kind(docs, "Deployment").items():
        assert deployment["spec"].get("replicas", hpas.get(name, keda.get(name))) == 1, name
    assert all(t["spec"]["replicas"] == 1 for t in of_kind(docs, "KafkaTopic").values())


def test_prod_keeps_a_pod_of_every_role_and_pins_images() -> None:
    docs = render("prod")
    for name, budget in of_kind(docs, "PodDisruptionBudget").items():
        assert budget["spec"] == {**budget["spec"], "minAvailable": 1} and "maxUnavailable" not in budget["spec"], name
    for name, deployment in of_kind(docs, "Deployment").items():
        for c in containers(deployment):
            repository, _, tag = c["image"].rpartition(":")
            assert repository and "/" in repository and tag and tag != "latest", f"{name}: {c['image']}"
        if "replicas" in deployment["spec"]:
            assert deployment["spec"]["replicas"] >= 2, name
    assert all(h["spec"]["minReplicas"] >= 2 for h in of_kind(docs, "HorizontalPodAutoscaler").values())


def test_everything_but_topics_is_in_the_app_namespace(overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] == "Namespace":
            continue
        wanted = "kafka" if doc["kind"] == "KafkaTopic" else NAMESPACE
        assert doc["metadata"].get("namespace") == wanted, f"{doc['kind']}/{doc['metadata']['name']}"


# --- network policies: only the calls docs/architecture.md allows ----------------------------------------------

INTERNET = "203.0.113.10"  # an address outside the cluster (TEST-NET-3)
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        ok = {"In": present and labels.get(key) in values, "NotIn": not present or labels.get(key) not in values,
              "Exists": present, "DoesNotExist": not present}[op]
        if not ok:
            return False
    return True


# A peer: a pod of ours (namespace labels, pod labels) or an address outside the cluster.
Peer = tuple[Mapping[str, str], Mapping[str, str]] | str


def _peer_matches(rule_peers: list[dict[str, Any]] | None, peer: Peer) -> bool:
    if not rule_peers:
        return True  # no `from`/`to`: every source or destination
    for p in rule_peers:
        if isinstance(peer, str):
            block = p.get("ipBlock")
            if block and ipaddress.ip_address(peer) in ipaddress.ip_network(block["cidr"]) and not any(
                    ipaddress.ip_address(peer) in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
            continue
        ns_labels, pod_labels = peer
        if "ipBlock" in p:
            continue  # pod addresses are private ranges, which our ipBlocks leave out
        ns_ok = _selects(p["namespaceSelector"], ns_labels) if "namespaceSelector" in p \
            else ns_labels.get("kubernetes.io/metadata.name") == NAMESPACE
        if ns_ok and _selects(p.get("podSelector", {}), pod_labels):
            return True
    return False


def _allowed(policies: list[dict[str, Any]], labels: Mapping[str, str], direction: str, peer: Peer,
             port: int) -> bool:
    """Whether the NetworkPolicies selecting a pod let ``peer`` in (or the pod out to it) on ``port``."""
    kind, key, peers_key = ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    relevant = [p for p in policies if _selects(p["spec"]["podSelector"], labels)
                and kind in p["spec"].get("policyTypes", ["Ingress"])]
    if not relevant:
        return True
    for policy in relevant:
        for rule in policy["spec"].get(key) or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port for p in ports):
                continue
            if _peer_matches(rule.get(peers_key), peer):
                return True
    return False


def _pods(docs: tuple[dict[str, Any], ...]) -> dict[str, tuple[dict[str, str], set[int]]]:
    return {name: (d["spec"]["template"]["metadata"]["labels"],
                   {p["containerPort"] for c in containers(d) for p in c.get("ports", [])})
            for name, d in of_kind(docs, "Deployment").items()}


def test_network_policies_allow_exactly_the_designed_calls_between_pods(overlay: str) -> None:
    docs = render(overlay)
    policies = list(of_kind(docs, "NetworkPolicy").values())
    pods = _pods(docs)
    ns = {"kubernetes.io/metadata.name": NAMESPACE}
    allowed = set()
    for src, (src_labels, _) in pods.items():
        for dst, (dst_labels, dst_ports) in pods.items():
            for port in dst_ports:
                if (src != dst and _allowed(policies, src_labels, "out", (ns, dst_labels), port)
                        and _allowed(policies, dst_labels, "in", (ns, src_labels), port)):
                    allowed.add((src, dst, port))
    designed = {("gateway-api", f"{svc}-api", port) for svc, port in
                [("conversations", 50051), ("customers", 50052), ("orders", 50053), ("presence", 50054),
                 ("ingest", 50055)]}
    if overlay == "local":
        # The sandbox posts webhooks to ingest and answers ingest's Graph API calls in Meta's place.
        designed |= {("sandbox-api", "ingest-api", 8001), ("ingest-worker", "sandbox-api", 8002)}
    assert allowed == designed


def test_network_policies_to_and_from_outside(overlay: str) -> None:
    docs = render(overlay)
    policies = list(of_kind(docs, "NetworkPolicy").values())
    pods = _pods(docs)
    for name, (labels, ports) in pods.items():
        service = labels["app.kubernetes.io/name"]
        public = {"gateway-api": {8000}, "ingest-api": {8001}, "sandbox-api": {8002}}.get(name, set())
        for port in ports:
            assert _allowed(policies, labels, "in", INTERNET, port) == (port in public), f"{name}:{port}"
        # Prometheus reaches every ops port.
        monitoring_pod = (MONITORING, {"app": "prometheus"})
        for port in ports - public:
            if port // 1000 == 9:
                assert _allowed(policies, labels, "in", monitoring_pod, port), f"{name}:{port} from monitoring"
        out = {port for port in (53, 443, 9092, 9093, 27017, 8080) if _allowed(policies, labels, "out", INTERNET, port)}
        wanted = {53}
        if service in WORKLOAD_SERVICES:
            wanted |= {9092, 9093, 27017}
        if name == "ingest-worker":
            wanted.add(443)  # Meta's Graph API
        assert out == wanted, f"{name} may reach outside on {out}"


# --- the image: one Dockerfile, its build context, and what the manifests run from it ---------------
# Images cannot be built on this machine, so the Dockerfile, the .dockerignore and the manifests are read
# together: every image a manifest names has its stage, and whatever a stage copies is in the context.

DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Each named stage's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            current = []
            parts = args.split()
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages[parts[2]] = current
                current.append(("FROM", parts[0]))
            else:
                stages[f"final:{parts[0]}"] = current
            continue
        current.append((instruction.upper(), args))
    return stages


def stage_lineage(stages: dict[str, list[tuple[str, str]]], name: str) -> list[tuple[str, str]]:
    """A stage's instructions after those of the stages it is built FROM (only the last ENTRYPOINT counts)."""
    own = stages[name]
    base = own[0][1] if own and own[0][0] == "FROM" else ""
    return [*(stage_lineage(stages, base) if base in stages else []), *own]


def docker_context_includes(rel: str) -> bool:
    """Whether the build context holds ``rel`` under .dockerignore (Docker's rules: the last pattern that
    matches the path or one of its parent folders decides; ``!`` lets it back in)."""
    def pattern_regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + r"\Z")

    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.strip().startswith("#")]
    parts = rel.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(c) for c in candidates):
            included = negated
    return included


def test_the_build_context_holds_what_the_stages_copy_and_not_what_is_built_or_downloaded() -> None:
    for source in ("pyproject.toml", "uv.lock", "libs/inbox-core/pyproject.toml", "services/gateway/src",
                   "web/package.json", "web/package-lock.json", "web/index.html", "web/src/main.tsx",
                   "web/vite.config.ts", "web/tsconfig.json"):
        assert docker_context_includes(source), source
    for left_out in (".local/bin/ferretdb", ".git/HEAD", "web/node_modules/preact/package.json",
                     "web/dist/index.html", ".venv/bin/python", "services/gateway/.venv/x",
                     "libs/inbox-core/src/inbox_core/__pycache__/kafka.cpython-311.pyc", "tests/fault/fault_kit.py"):
        assert not docker_context_includes(left_out), left_out
    for stage, instructions in dockerfile_stages().items():
        for instruction, args in instructions:
            if instruction == "COPY" and "--from=" not in args:
                *sources, _ = args.split()
                for source in sources:
                    assert (ROOT / source).exists(), f"{stage}: COPY {source} is not in the repository"
                    assert docker_context_includes(source), f"{stage}: COPY {source} is outside the build context"


def test_every_image_a_manifest_runs_has_its_stage_entrypoint_and_ports() -> None:
    stages = dockerfile_stages()
    images = {c["image"].rpartition(":")[0].rpartition("/")[2] or c["image"] for overlay in OVERLAYS
              for d in of_kind(render(overlay), "Deployment").values() for c in containers(d)}
    assert images == {f"inbox-{s}" for s in (*WORKLOAD_SERVICES, "sandbox")}
    assert list(stages)[-1] == "final:${SERVICE}", "the last stage is the one SERVICE names"
    for image in images:
        service = image.removeprefix("inbox-")
        lineage = stage_lineage(stages, service)
        entrypoints = [args for instruction, args in lineage if instruction == "ENTRYPOINT"]
        assert entrypoints and json.loads(entrypoints[-1]) == ["python", "-m", f"inbox_{service}"], service
        exposed = {int(p) for instruction, args in lineage if instruction == "EXPOSE" for p in args.split()}
        fields = _settings_class(service).model_fields
        defaults = {f.default for name, f in fields.items() if name.endswith("_port")}
        assert exposed == defaults, f"{service}: EXPOSE {sorted(exposed)}, its ports {sorted(defaults)}"
        assert ("USER", "10001:10001") in lineage, f"{service}: runs as the non-root user"
    # The package each image installs is the one SERVICE names.
    build = " ".join(args for instruction, args in stages["build"] if instruction == "RUN")
    assert build.count('--package "inbox-${SERVICE}"') == 2


def test_the_gateway_image_builds_and_serves_the_web_ui() -> None:
    stages = dockerfile_stages()
    web = [args for instruction, args in stages["web"] if instruction == "RUN"]
    assert any("npm ci" in run for run in web) and any("npm run build" in run for run in web)
    assert "vite build" in json.loads((ROOT / "web" / "package.json").read_text())["scripts"]["build"]
    gateway = stages["gateway"]
    copies = [args.split() for instruction, args in gateway if instruction == "COPY" and "--from=web" in args]
    assert copies, "the gateway stage copies the web build"
    _, dist, target = copies[0]
    assert dist == "/web/dist", "Vite's output folder in the web stage"
    envs = dict(args.split("=", 1) for instruction, args in gateway if instruction == "ENV")
    assert envs.get("GATEWAY_WEB_DIR") == target
    assert "web_dir" in _settings_class("gateway").model_fields
    for other in (*WORKLOAD_SERVICES, "sandbox"):
        if other != "gateway":
            assert not any("--from=web" in args for _, args in stage_lineage(stages, other)), other

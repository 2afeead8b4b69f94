"""The code and the manifests agree: topics, consumer groups and what they scale on (read from the code's
syntax tree), consumers never above partitions, ports, probes and settings."""

from __future__ import annotations

import ast
import contextlib
import importlib
from collections import ChainMap
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from k8s_kit import (
    ROOT,
    TOPIC_LITERAL,
    containers,
    of_kind,
    pod_spec,
    render,
    role_of,
    settings_class,
)

from inbox_core.topics import TOPICS, Topic, all_topic_configs

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


# inbox_core.kafka's subscribers, each called (broker, topic, group_id=...).
OUR_SUBSCRIBERS = ("subscribe", "subscribe_batch")


@cache
def code_subscriptions() -> tuple[tuple[str, str | None, frozenset[str]], ...]:
    """``(service, group id or None when per-process, topics)`` for every Kafka subscription in services' code.

    Found by reading the source (``inbox_core.kafka.subscribe`` or ``subscribe_batch(broker, topic,
    group_id=...)`` and FastStream's ``broker.subscriber(*topics, group_id=...)``) and evaluating the
    arguments with the module's own globals and the enclosing functions' defaults, so a group or topic
    behind a constant is followed.
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
                is_ours = isinstance(func, ast.Name) and func.id in OUR_SUBSCRIBERS
                is_faststream = isinstance(func, ast.Attribute) and func.attr == "subscriber"
                if not (is_ours or is_faststream):
                    continue
                module = module or importlib.import_module(module_name)
                if is_ours and getattr(module, func.id, None) is not getattr(inbox_core.kafka, func.id):  # type: ignore[union-attr]
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
    assert subs[("conversations", "inbox-conversations")] <= {"whatsapp.events.v1", "inbox.orders.v1",
                                                               "inbox.customers.v1"}
    assert subs[("customers", "inbox-customers")] <= {"whatsapp.events.v1", "inbox.orders.v1"}
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


def test_container_ports_and_probes_are_the_services_own(overlay: str) -> None:
    for name, deployment in of_kind(render(overlay), "Deployment").items():
        service, role = role_of(deployment)
        fields = settings_class(service).model_fields
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
        fields = InboxSettings.model_fields if prefix == "INBOX" else settings_class(prefix.lower()).model_fields
        assert field.lower() in fields, f"{name} is not a setting of {prefix.lower()}"


def test_the_gateway_reads_client_addresses_through_the_ingress(overlay: str) -> None:
    # Behind the ingress every client would otherwise share one address (and its login limit).
    config = {k: v for c in of_kind(render(overlay), "ConfigMap").values() for k, v in c.get("data", {}).items()}
    assert int(config.get("GATEWAY_TRUSTED_PROXY_HOPS", "0")) >= 1

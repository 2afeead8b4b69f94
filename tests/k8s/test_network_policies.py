"""Network policies allow only the calls docs/architecture.md allows, between pods and to and from outside
(evaluated over the rendered policies, as Kubernetes would)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from k8s_kit import (
    NAMESPACE,
    WORKLOAD_SERVICES,
    containers,
    of_kind,
    render,
    selects,
)

# --- network policies: only the calls docs/architecture.md allows ----------------------------------------------

INTERNET = "203.0.113.10"  # an address outside the cluster (TEST-NET-3)
MONITORING = {"kubernetes.io/metadata.name": "monitoring"}


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
        ns_ok = selects(p["namespaceSelector"], ns_labels) if "namespaceSelector" in p \
            else ns_labels.get("kubernetes.io/metadata.name") == NAMESPACE
        if ns_ok and selects(p.get("podSelector", {}), pod_labels):
            return True
    return False


def _allowed(policies: list[dict[str, Any]], labels: Mapping[str, str], direction: str, peer: Peer,
             port: int) -> bool:
    """Whether the NetworkPolicies selecting a pod let ``peer`` in (or the pod out to it) on ``port``."""
    kind, key, peers_key = ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    relevant = [p for p in policies if selects(p["spec"]["podSelector"], labels)
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

"""The Kubernetes manifests (deploy/k8s), offline: they render, validate against the Kubernetes schemas and
keep to the rules of docs/architecture.md (non-root, read-only, secrets by reference, scaling per role).
The code and the manifests agreeing: test_manifests_code.py; network policies: test_network_policies.py;
the image: test_image.py."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_kit import (
    CRD_GROUPS,
    K8S,
    K8S_VERSION,
    NAMESPACE,
    OVERLAYS,
    containers,
    kustomize_command,
    of_kind,
    pod_spec,
    render,
    role_of,
    selects,
)


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
        assert sum(selects(b, labels) for b in budgets) == 1, f"{name}: one PodDisruptionBudget"
        assert any(selects(s, labels) for s in services), f"{name}: no Service"
        own = [p for p in policies if selects(p, labels) and "app.kubernetes.io/name" in p.get("matchLabels", {})]
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

"""What the manifest tests share: where deploy/k8s is, its overlays, and the rendered objects.

Rendering uses ``kubectl kustomize`` when kubectl is installed, else a ``kustomize`` binary, else builds
kustomize from the Go module proxy into .local/bin once (once per session: ``render`` is cached)."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from inbox_core.service import ServiceSettings

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


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"inbox_{service}.settings")
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings]
    assert len(classes) == 1, f"inbox_{service}.settings: {classes}"
    return classes[0]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
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

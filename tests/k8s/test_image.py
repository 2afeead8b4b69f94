"""The image: one Dockerfile, its build context, and what the manifests run from it."""

from __future__ import annotations

import json
import re

from k8s_kit import (
    OVERLAYS,
    ROOT,
    WORKLOAD_SERVICES,
    containers,
    of_kind,
    render,
    settings_class,
)

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
        fields = settings_class(service).model_fields
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
    assert "web_dir" in settings_class("gateway").model_fields
    for other in (*WORKLOAD_SERVICES, "sandbox"):
        if other != "gateway":
            assert not any("--from=web" in args for _, args in stage_lineage(stages, other)), other

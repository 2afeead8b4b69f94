"""Generate the Python code for the gRPC contracts, or check that the committed code is current.

    uv run python scripts/protos.py generate   # protos/**/*.proto -> libs/inbox-protos/src/inbox
    uv run python scripts/protos.py check      # exit 1 (and list the files) when they differ

Generates, per proto file: ``_pb2.py``, ``_pb2_grpc.py`` (grpcio-tools), ``_pb2.pyi`` and
``_pb2_grpc.pyi`` (mypy-protobuf), plus an empty ``__init__.py`` in every package directory. The
generated tree is compared byte for byte, so the output must be deterministic: inputs are sorted
and the protoc plugins come from the same virtualenv as the running interpreter.
"""

from __future__ import annotations

import importlib.resources
import shutil
import sys
import tempfile
from pathlib import Path

from generated_file import ROOT, parse_command, report_stale
from grpc_tools import protoc  # type: ignore[import-untyped]

PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "libs" / "inbox-protos" / "src"
PACKAGE = "inbox"
# Hand-written files in the generated package: never deleted by `generate`, ignored by `check`.
KEEP = frozenset({Path(PACKAGE) / "py.typed"})
# Written only when missing, so hand-made content there survives; `check` still expects it empty.
INIT_KEEP = Path(PACKAGE) / "__init__.py"
IGNORED_DIRS = frozenset({"__pycache__"})


def proto_files() -> list[Path]:
    """Every .proto under protos/, relative to it, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate_into(out: Path) -> None:
    """Run protoc with the Python, gRPC and mypy plugins into `out` (an existing directory)."""
    protos = proto_files()
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    bin_dir = Path(sys.executable).parent
    plugins = {name: bin_dir / name for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc")}
    for plugin in plugins.values():
        if not plugin.exists():
            raise SystemExit(f"{plugin} not found: run `uv sync` (mypy-protobuf is a dev dependency)")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        *(f"--plugin={name}={path}" for name, path in plugins.items()),
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}",
        f"--mypy_grpc_out=quiet:{out}",
        *(p.as_posix() for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Every directory holding generated modules is a regular package.
    for proto in protos:
        package = proto.parent
        while package != Path():
            (out / package / "__init__.py").touch()
            package = package.parent


def tree(root: Path) -> dict[Path, bytes]:
    """The files of the generated package under `root`, relative to `root`, except KEEP."""
    files: dict[Path, bytes] = {}
    base = root / PACKAGE
    if not base.is_dir():
        return files
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel not in KEEP and not IGNORED_DIRS.intersection(rel.parts):
            files[rel] = path.read_bytes()
    return files


def fresh_tree() -> dict[Path, bytes]:
    with tempfile.TemporaryDirectory(prefix="inbox-protos-") as tmp:
        generate_into(Path(tmp))
        return tree(Path(tmp))


def generate() -> int:
    wanted = fresh_tree()
    current = tree(OUT_ROOT)
    for rel in sorted(current.keys() - wanted.keys()):
        (OUT_ROOT / rel).unlink()
        print(f"removed {rel}")
    for rel, content in sorted(wanted.items()):
        if rel == INIT_KEEP and (OUT_ROOT / rel).exists():
            continue
        if current.get(rel) != content:
            (OUT_ROOT / rel).parent.mkdir(parents=True, exist_ok=True)
            (OUT_ROOT / rel).write_bytes(content)
            print(f"wrote {rel}")
    # Drop directories that no longer hold anything but caches.
    for directory in sorted((OUT_ROOT / PACKAGE).rglob("*"), reverse=True):
        if directory.is_dir() and directory.name not in IGNORED_DIRS:
            leftovers = [p for p in directory.iterdir() if p.name not in IGNORED_DIRS]
            if not leftovers:
                shutil.rmtree(directory)
    print(f"{len(wanted)} generated files up to date in {OUT_ROOT.relative_to(ROOT)}")
    return 0


def check() -> int:
    wanted = fresh_tree()
    current = tree(OUT_ROOT)
    drift = [
        *(f"missing  {rel}" for rel in sorted(wanted.keys() - current.keys())),
        *(f"extra    {rel}" for rel in sorted(current.keys() - wanted.keys())),
        *(f"changed  {rel}" for rel in sorted(wanted.keys() & current.keys()) if wanted[rel] != current[rel]),
    ]
    if drift:
        return report_stale(f"generated code in {OUT_ROOT.relative_to(ROOT)} is out of date with protos/:", drift,
                            __file__)
    print(f"{len(wanted)} generated files match protos/")
    return 0


def main(argv: list[str] | None = None) -> int:
    return generate() if parse_command(__doc__, argv) == "generate" else check()


if __name__ == "__main__":
    sys.exit(main())

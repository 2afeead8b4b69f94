"""`make lint`'s check that no tracked file refers to a path outside the checkout (scripts/outside_paths.py):
the repository passes it, and each kind of reference out of a checkout is caught in a repository made here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from inbox_testkit.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "outside_paths.py"


def check(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--repo", str(repo)], capture_output=True, text=True)


# The files below are written with these stand-ins, so this test's own source refers to nothing outside
# the checkout (the check reads it too).
STAND_INS = {"%UP%": "..", "%SHARED%": "shared", "%FILE%": "__file__", "%HOME%": "/home"}


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        for stand_in, value in STAND_INS.items():
            text = text.replace(stand_in, value)
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    return tmp_path


def test_the_repository_refers_to_nothing_outside_it() -> None:
    done = check(REPO_ROOT)
    assert done.returncode == 0, done.stdout


def test_references_inside_the_checkout_pass(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {
        "web/README.md": "The API: [api](../docs/api.md).\n",
        "services/a/src/pkg/mod.py": "ROOT = Path(%FILE%).resolve().parents[4]\nUP = Path(%FILE%).parent.parent\n",
        "Dockerfile": "RUN --mount=type=cache,target=/root/.cache/uv uv sync\n",
    })
    done = check(repo)
    assert done.returncode == 0, done.stdout


def test_each_reference_out_of_the_checkout_is_caught(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {
        "README.md": "See [the brief](%UP%/shared/DESIGN.md).\n",
        "services/gateway/README.md": "The API of [x](%UP%/%UP%/%UP%/team/API.md).\n",
        "services/a/tests/test_x.py": "SAMPLES = Path(%FILE%).resolve().parents[3].parent / '%SHARED%' / 'samples'\n"
                                      "OTHER = Path(%FILE%).resolve().parents[4] / 'x'\n",
        "docs/notes.md": "Built on %HOME%/alice/inbox and C:\\Users\\bob\\inbox.\n",
    })
    done = check(repo)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith("README.md:1:") and "shared" in line for line in lines)
    assert any(line.startswith("services/gateway/README.md:1:") and "leaves the repository" in line for line in lines)
    assert any(line.startswith("services/a/tests/test_x.py:1:") for line in lines)
    assert any(line.startswith("services/a/tests/test_x.py:2:") and "climbs above" in line for line in lines)
    assert sum(line.startswith("docs/notes.md:1:") for line in lines) == 2
    assert len(lines) == 6, lines

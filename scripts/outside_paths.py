"""Fails when a tracked file refers to a path outside the checkout: a user has only the repository.

    uv run python scripts/outside_paths.py [--repo DIR]   # exit 1 and one line per finding

What counts (in every tracked text file but the lock file):
- a relative path that climbs out of the repository from the file's own folder (a Markdown link, a
  docstring or a config going up more folders than the file sits deep), and any mention of the
  team's ``shared`` briefs folder beside a checkout, wherever it is written from;
- ``Path(__file__)`` climbing above the repository root (``.parents[N]``, ``.parent`` chains);
- an absolute path of one machine (a home or work folder).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"uv.lock", "web/package-lock.json"}

RELATIVE_CLIMB = re.compile(r"(?:\.\./)+[\w.@-]*")
SHARED_BRIEFS = re.compile(r"\.\./+shared\b|/\s*[\"']shared[\"']")
FILE_PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parents\[\d+\]|\.parent\b)+)")
MACHINE_PATH = re.compile(r"(?<![\w.~-])(?:/(?:work|home|Users)/[\w.-]+|[A-Za-z]:\\Users\\)")


def levels_up(chain: str) -> int:
    """How many folders ``Path(__file__)`` plus ``chain`` climbs: ``.parent`` is one, ``.parents[N]`` N+1."""
    up = 0
    for step in re.findall(r"\.parents\[(\d+)\]|\.parent\b", chain):
        up += int(step) + 1 if step else 1
    return up


def climbs_out(path: PurePosixPath, relative: str) -> bool:
    """Whether ``relative``, read from the folder of ``path`` (repository-relative), leaves the repository."""
    depth = len(path.parent.parts)
    for part in PurePosixPath(relative).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part != ".":
            depth += 1
    return False


def findings(rel: str, text: str) -> Iterator[str]:
    path = PurePosixPath(rel)
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{number}"
        if SHARED_BRIEFS.search(line):
            yield f"{where}: refers to the shared briefs beside the checkout: {line.strip()}"
            continue
        for match in RELATIVE_CLIMB.finditer(line):
            if climbs_out(path, match.group(0)):
                yield f"{where}: {match.group(0)!r} leaves the repository from {path.parent}/"
        for match in FILE_PARENTS.finditer(line):
            # One level reaches the file's own folder, so the root is len(parts) + 1 levels up.
            if levels_up(match.group(1)) > len(path.parent.parts) + 1:
                yield f"{where}: Path(__file__){match.group(1)} climbs above the repository root"
        for match in MACHINE_PATH.finditer(line):
            yield f"{where}: an absolute path of one machine: {match.group(0)!r}"


def tracked_text_files(repo: Path) -> Iterator[tuple[str, str]]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    for rel in listed.decode().split("\0"):
        if not rel or rel in SKIPPED:
            continue
        try:
            data = (repo / rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError):  # deleted in the work tree, or a submodule
            continue
        if b"\0" in data:
            continue
        yield rel, data.decode("utf-8", errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args()
    found = [f for rel, text in tracked_text_files(args.repo) for f in findings(rel, text)]
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} reference(s) to paths outside the checkout", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the generating scripts share: write a derived file (``generate``), or fail with a diff when the
committed one is not what the code generates (``check``, part of ``make lint``)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_command(description: str | None, argv: list[str] | None = None) -> str:
    """A generating script's command line: ``generate`` or ``check`` (``description`` is its --help)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["generate", "check"])
    command: str = parser.parse_args(argv).command
    return command


def report_stale(heading: str, differences: list[str], script: str) -> int:
    """``check``'s failure when several generated files differ: what differs, then what to run; 1."""
    print(heading)
    for line in differences:
        print(f"  {line}")
    print(f"run `uv run python scripts/{Path(script).name} generate` and commit the result")
    return 1


def generate_or_check(script: str, description: str | None, out: Path, render: Callable[[], str], source: str,
                      argv: list[str] | None = None) -> int:
    """``generate`` writes ``render()`` to ``out``; ``check`` compares, printing the difference and what to
    run when they differ (``script`` is the caller's file, ``source`` where the wanted text comes from)."""
    command = parse_command(description, argv)
    wanted = render()
    name = out.relative_to(ROOT)
    if command == "generate":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(wanted)
        print(f"wrote {name}")
        return 0
    current = out.read_text() if out.exists() else ""
    if current == wanted:
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        current.splitlines(keepends=True), wanted.splitlines(keepends=True),
        fromfile=f"{name} (committed)", tofile=f"generated from {source}",
    ))
    print(f"\n{name} is stale: run `uv run python scripts/{Path(script).name} generate`", file=sys.stderr)
    return 1

"""What every benchmark shares: the real servers, the machine's description, percentiles, results.

Benchmarks are not tests: they print figures beside a ceiling measured in the same run (machines here
are noisy, so only the ratio means much) and write them as JSON under bench/results/.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inbox_core.devinfra import FerretServer, KafkaServer, free_port, install
from inbox_core.topics import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Servers:
    kafka_bootstrap: str
    mongo_url: str


@contextmanager
def servers() -> Iterator[Servers]:
    """Running servers from INBOX_TEST_KAFKA / INBOX_TEST_MONGO_URL, or our own on free ports."""
    kafka_env, mongo_env = os.environ.get("INBOX_TEST_KAFKA"), os.environ.get("INBOX_TEST_MONGO_URL")
    if kafka_env and mongo_env:
        asyncio.run(ensure_topics(kafka_env))
        yield Servers(kafka_env, mongo_env)
        return
    install()
    home = Path(tempfile.mkdtemp(prefix="inbox-bench-"))
    kafka, ferret = KafkaServer(home, free_port()), FerretServer(home, free_port())
    try:
        ferret.start()
        kafka.start()
        asyncio.run(ensure_topics(kafka.bootstrap))
        yield Servers(kafka.bootstrap, ferret.url)
    finally:
        kafka.stop()
        ferret.stop()
        shutil.rmtree(home, ignore_errors=True)


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def percentiles(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "p999_ms": float("nan")}
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": round(at(0.5), 2), "p99_ms": round(at(0.99), 2), "p999_ms": round(at(0.999), 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    print(f"\n{title}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2, default=str))
    return path

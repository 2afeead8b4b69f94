"""Every benchmark in bench/, each bounded in time, then one table: ``make bench``.

Every benchmark runs as its own process with a Kafka broker and a FerretDB server of its own (a new
consumer group starts at the beginning of the topics, so one benchmark's events would be the next
one's backlog) and starts the services it needs. ``--shared-servers`` runs them all against
INBOX_TEST_KAFKA / INBOX_TEST_MONGO_URL instead. A benchmark that fails or runs out of its time is
shown as such in the table (with the figures it saved before, if any); the others still run, and the
run ends with its table and exit status 0: a slow machine is a figure, not a failed run. ``--strict``
exits 1 when any benchmark was not ok. Each writes bench/results/<name>.json; this writes the table
as bench/results/summary.json.

    uv run python bench/run_all.py [--budget-s 900] [--only webhook_ingest,sse_memory] [--quick] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, print_table

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    timeout_s: float


BENCHES = (
    Bench("webhook_ingest", ("--seconds", "8"), ("--seconds", "4"), 150),
    Bench("presence_composing", ("--calls", "200"), ("--calls", "50"), 120),
    Bench("webhook_to_stream", ("--rates", "5,200,500", "--seconds", "10", "--wait", "20", "--streams", "1000"),
          ("--rates", "50", "--seconds", "5", "--wait", "10", "--streams", "100", "--workspaces", "10"), 330),
    Bench("sustained_load", ("--rate", "1000", "--seconds", "60", "--after", "30"),
          ("--rate", "200", "--seconds", "10", "--after", "10"), 240),
    Bench("conversation_list_gateway", ("--max-seed-s", "150", "--per-size-s", "25"),
          ("--sizes", "1000,5000", "--max-seed-s", "20", "--per-size-s", "6", "--messages", "20"), 330),
    Bench("sse_memory", ("--steps", "5000,10000"), ("--steps", "500,1000"), 300),
    # The conversations service's own benchmark (gRPC servicer beside the raw query), at a size FerretDB
    # answers within the run's budget (it scans; see conversation_list_gateway for the growth).
    Bench("conversations_list", ("5000", "--budget-s", "20", "--max-seed-s", "60", "--save"),
          ("2000", "--budget-s", "8", "--max-seed-s", "30", "--save"), 150),
)


def run_one(bench: Bench, args: tuple[str, ...], env: dict[str, str], timeout_s: float) -> str:
    """Runs one benchmark (its output goes to this terminal); returns "ok", "failed (...)" or "timed out"."""
    print(f"\n=== {bench.name} {' '.join(args)} (at most {timeout_s:.0f} s)", flush=True)
    proc = subprocess.Popen([sys.executable, str(HERE / f"{bench.name}.py"), *args], env=env,
                            start_new_session=True)  # its own process group: a timeout stops its services too
    try:
        code = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        return f"timed out after {timeout_s:.0f} s"
    return "ok" if code == 0 else f"failed (exit {code})"


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def result_of(name: str, since: float) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists() or path.stat().st_mtime < since:
        return None  # nothing written by this run
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def rows_of(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The benchmark's summary rows (each figure beside its ceiling)."""
    if "summary" in result:
        return list(result["summary"])
    if name == "webhook_ingest":  # written before the summary rows existed: derived from its table
        rows = {r["path"]: r for r in result["rows"]}
        ingest = next(r for p, r in rows.items() if p.startswith("ingest"))
        http = next(r for p, r in rows.items() if "empty" in p)
        broker = next(r for p, r in rows.items() if "aiokafka" in p)
        return [{"metric": f"webhook ingest, signed POSTs/s ({result.get('concurrency')} clients)",
                 "value": ingest["per_s"], "unit": "/s", "ceiling": http["per_s"],
                 "ceiling_is": "empty Litestar handler, same server",
                 "note": f"p50 {ingest['p50_ms']} ms, p99 {ingest['p99_ms']} ms; raw aiokafka produce "
                         f"{broker['per_s']}/s (p50 {broker['p50_ms']} ms)"}]
    if name == "conversations_list":  # the conversations service's own format
        size = result["sizes"][-1]
        return [{"metric": f"ListConversations (servicer) {case['case']} p50 @ {size['conversations']:,}",
                 "value": round(case["servicer_p50_ms"], 2), "unit": "ms", "ceiling": round(case["raw_p50_ms"], 2),
                 "ceiling_is": "raw database query p50", "note": f"p99 {case['servicer_p99_ms']:.1f} ms"}
                for case in size["cases"] if case["case"].startswith(("all (every", "unread", "search name"))]
    return []


def ratio(value: Any, ceiling: Any) -> str:
    try:
        return f"{float(value) / float(ceiling):.2f}" if float(ceiling) else ""
    except (TypeError, ValueError):
        return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=900.0, help="the whole run stops starting benchmarks here")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run of every benchmark)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a benchmark failed or timed out")
    parser.add_argument("--shared-servers", action="store_true",
                        help="use INBOX_TEST_KAFKA / INBOX_TEST_MONGO_URL for every benchmark")
    args = parser.parse_args()
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    started = time.monotonic()
    statuses: dict[str, str] = {}
    table: list[dict[str, Any]] = []
    print(f"machine: {machine()}", flush=True)
    shared = ("INBOX_TEST_KAFKA", "INBOX_TEST_MONGO_URL")
    if args.shared_servers and not all(os.environ.get(k) for k in shared):
        raise SystemExit("--shared-servers needs INBOX_TEST_KAFKA and INBOX_TEST_MONGO_URL")
    env = dict(os.environ) if args.shared_servers else {k: v for k, v in os.environ.items() if k not in shared}
    for bench in chosen:
        left = args.budget_s - (time.monotonic() - started)
        if left < 60:
            statuses[bench.name] = "skipped (time budget used up)"
            continue
        since = time.time()
        try:
            statuses[bench.name] = run_one(bench, bench.quick_args if args.quick else bench.args, env,
                                           min(bench.timeout_s, left))
        except Exception as exc:  # e.g. it could not be started: shown, and the others still run
            statuses[bench.name] = f"failed ({exc!r})"
        result = result_of(bench.name, since)
        try:
            rows = rows_of(bench.name, result) if result else []
        except (KeyError, IndexError, StopIteration, TypeError) as exc:  # a partial result
            rows = []
            statuses[bench.name] += f"; its results unreadable ({exc!r})"
        for row in rows:
            unit = row.get("unit", "")
            ceiling = "" if row.get("ceiling") is None else f"{row['ceiling']} {unit}"
            table.append({"benchmark": bench.name, "metric": row["metric"], "value": f"{row['value']} {unit}",
                          "ceiling": ceiling, "ratio": ratio(row["value"], row.get("ceiling")),
                          "ceiling_is": row.get("ceiling_is", ""), "note": row.get("note", "")})
        if not result:
            table.append({"benchmark": bench.name, "metric": "-", "value": statuses[bench.name]})
    elapsed = time.monotonic() - started
    for name, status in statuses.items():
        if status != "ok" and not any(r["benchmark"] == name and r["metric"] == "-" for r in table):
            table.append({"benchmark": name, "metric": "-", "value": status})
    print(f"\nmachine: {machine()}; {elapsed / 60:.1f} min")
    print_table("every benchmark (value beside its ceiling, measured in the same run)", table,
                ["benchmark", "metric", "value", "ceiling", "ratio", "ceiling_is", "note"])
    RESULTS.mkdir(exist_ok=True)
    summary = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
               "elapsed_s": round(elapsed, 1), "quick": args.quick, "statuses": statuses, "rows": table}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"saved {RESULTS / 'summary.json'}")
    if args.strict and any(s != "ok" for s in statuses.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

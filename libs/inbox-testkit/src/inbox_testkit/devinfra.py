"""The development commands behind ``make infra-up``, ``make dev``, ``make down`` and ``make status``.

    python -m inbox_testkit.devinfra install          # fetch/build what is missing
    python -m inbox_testkit.devinfra up [--kafka-port N --mongo-port N --home DIR]
    python -m inbox_testkit.devinfra down [--home DIR]
    python -m inbox_testkit.devinfra services-up|services-down|status
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inbox_testkit.paths import LOCAL, REPO_ROOT
from inbox_testkit.ports import port_open, wait_ready
from inbox_testkit.servers import FerretServer, KafkaServer, Process, install

# Every service of `make dev`, in start order, with the port its readiness answers on.
DEV_SERVICES: tuple[tuple[str, str], ...] = (
    ("conversations", "CONVERSATIONS_OPS_PORT"),
    ("customers", "CUSTOMERS_OPS_PORT"),
    ("orders", "ORDERS_OPS_PORT"),
    ("presence", "PRESENCE_OPS_PORT"),
    ("ingest", "INGEST_OPS_PORT"),
    ("sandbox", "SANDBOX_HTTP_PORT"),
    ("gateway", "GATEWAY_OPS_PORT"),
)


def dev_env() -> dict[str, str]:
    """.env.example's development defaults, overridden by the caller's environment."""
    env: dict[str, str] = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.split("#", 1)[0].strip()
    env.update(os.environ)
    return env



def services_up(home: Path) -> None:
    env = dev_env()
    services_home = home / "services"
    for name, _ in DEV_SERVICES:
        proc = Process(name, services_home)
        if proc.pid() is None:
            proc.spawn([sys.executable, "-m", f"inbox_{name}", "all"], services_home / f"{name}.log", env)
    failed = [name for name, port_var in DEV_SERVICES if not wait_ready(int(env[port_var]))]
    for name, port_var in DEV_SERVICES:
        state = "FAILED (see " + str(services_home / f"{name}.log") + ")" if name in failed else "ready"
        print(f"  {name:<14} :{env[port_var]:<6} {state}")
    if failed:
        raise SystemExit(f"not ready: {', '.join(failed)}")
    print(f"\nThe inbox is up: http://localhost:{env['GATEWAY_HTTP_PORT']}  (stop everything with `make down`)")


def services_down(home: Path) -> None:
    for name, _ in reversed(DEV_SERVICES):
        Process(name, home / "services").stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inbox_testkit.devinfra")
    parser.add_argument("command", choices=["install", "up", "down", "status", "services-up", "services-down"])
    parser.add_argument("--home", type=Path, default=LOCAL / "run")
    parser.add_argument("--kafka-port", type=int, default=int(os.environ.get("INBOX_LOCAL_KAFKA_PORT", 9092)))
    parser.add_argument("--mongo-port", type=int, default=int(os.environ.get("INBOX_LOCAL_MONGO_PORT", 27017)))
    args = parser.parse_args(argv)
    kafka = KafkaServer(args.home, args.kafka_port)
    ferret = FerretServer(args.home, args.mongo_port)
    if args.command == "install":
        install()
    elif args.command == "up":
        install()
        ferret.start()
        kafka.start()
        from inbox_core.topics import ensure_topics_sync

        ensure_topics_sync(kafka.bootstrap)
        print(f"kafka {kafka.bootstrap}  database {ferret.url}")
    elif args.command == "services-up":
        services_up(args.home)
    elif args.command == "services-down":
        services_down(args.home)
    elif args.command == "down":
        kafka.stop()
        ferret.stop()
    else:
        servers = (("kafka", kafka.process, args.kafka_port), ("ferretdb", ferret.process, args.mongo_port))
        for name, proc, port in servers:
            print(f"{name}: pid={proc.pid()} port {port} {'open' if port_open(port) else 'closed'}")
        for name, _ in DEV_SERVICES:
            print(f"{name}: pid={Process(name, args.home / 'services').pid()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

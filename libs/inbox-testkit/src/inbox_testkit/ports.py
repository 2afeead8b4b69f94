"""Ports on loopback: a free one to listen on, whether one is open, whether a process there is ready."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from pathlib import Path

_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port to listen on, chosen below the kernel's ephemeral range: a port the kernel hands out (bind to
    0) can be taken by some outgoing connection's local end before the server binds it (a whole stack starts
    dozens of servers beside hundreds of Kafka and database connections: it happened). Never the same port
    twice in one process."""
    low, _ = _ephemeral_range()
    candidates = list(range(15000, low)) if low > 16000 else []
    random.shuffle(candidates)
    for port in candidates[:500]:
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # no range of our own: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_ready(port: int, timeout: float = 60.0) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/internal/ready", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


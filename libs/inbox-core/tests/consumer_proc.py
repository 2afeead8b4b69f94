"""A consumer run as its own process by test_kafka.py, so that the test can kill it for real.

Appends every event id it handles to OUT (flushed to disk before returning, i.e. before the commit);
on the event whose id is CRASH_ON it exits at once, after its effect and before the commit, the
first time only.
"""

import asyncio
import os
import sys
from pathlib import Path

from inbox_core.events import Event
from inbox_core.kafka import make_broker, subscribe
from inbox_core.settings import InboxSettings


async def main(bootstrap: str, topic: str, group: str, out: Path, crash_on: str) -> None:
    broker = make_broker(InboxSettings(kafka_bootstrap=bootstrap), "test", registry=None)
    crashed_marker = out.with_suffix(".crashed")

    async def handle(event: Event) -> None:
        with out.open("a") as f:
            f.write(event.id + "\n")
            f.flush()
            os.fsync(f.fileno())
        if event.id == crash_on and not crashed_marker.exists():
            crashed_marker.write_text("1")
            os._exit(9)

    subscribe(broker, topic, group_id=group, handler=handle)
    await broker.start()
    Path(str(out) + ".ready").write_text("1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5]))

"""The end of a snooze: a loop of the worker reopens each snoozed conversation whose ``snoozed_until``
has come, with a ``reopened`` activity (actor null, reason ``snooze_ended``), through the same guarded,
outbox-carrying write as SetStatus (usecases/team.py). Two workers at once are safe: the write is
guarded by the version read, so one of them reopens and the other, reading again, finds it open.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from inbox_conversations import domain
from inbox_conversations.outbox import utcnow
from inbox_conversations.usecases.team import TeamWork

log = logging.getLogger("inbox.conversations.snoozes")

# Conversations reopened per query; a round reads on until none is due.
WAKE_BATCH = 100


class SnoozeWaker:
    def __init__(self, team: TeamWork) -> None:
        self.team = team

    async def wake_due(self, now: datetime | None = None) -> int:
        """Reopens every conversation whose snooze ended by ``now``: how many this call reopened."""
        now = now or utcnow()
        reopened = 0
        while True:
            due = await self.team.repos.conversations.due_snoozes(now, WAKE_BATCH)
            round_reopened = 0
            for conv in due:
                _, moved = await self.team.change_status(
                    conv, domain.OPEN, None, None, {"reason": "snooze_ended"},
                    lambda c: domain.STATUS_ACTIONS[domain.OPEN] if domain.snooze_due(c, now) else None)
                round_reopened += moved
            reopened += round_reopened
            # A full batch of which none moved would be read again as it is: the next round retries.
            if len(due) < WAKE_BATCH or not round_reopened:
                return reopened

    async def run_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.wake_due()
            except Exception:  # Kafka or the database away: the next round tries again
                log.exception("waking snoozed conversations failed")
            await asyncio.sleep(interval_s)

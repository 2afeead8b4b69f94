"""The database commands a client sends, for tests that count round trips (PyMongo command monitoring):
pass a ``DatabaseCommands`` in ``event_listeners`` of the client under test."""

from __future__ import annotations

from pymongo import monitoring

# The commands that read or write documents (not hello, ping, endSessions, ...).
DATA_COMMANDS = frozenset({"find", "getMore", "insert", "update", "delete", "findAndModify", "count", "aggregate",
                           "distinct"})


class DatabaseCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (command, collection), in the order sent

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in DATA_COMMANDS:
            self.sent.append((event.command_name, str(event.command.get(event.command_name, ""))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[str]:
        return [command for command, _ in self.sent]

    def count(self, command: str, collection: str | None = None) -> int:
        return sum(1 for c, coll in self.sent if c == command and collection in (None, coll))

    def clear(self) -> None:
        self.sent.clear()

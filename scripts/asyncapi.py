"""The AsyncAPI 3.0 document of every topic: what another team needs to consume them, and nothing else.

    uv run python scripts/asyncapi.py generate   # writes docs/asyncapi.yaml
    uv run python scripts/asyncapi.py check      # exit 1 when the committed document differs

Made from the same sources the code uses: the topic list (``inbox_core.topics``: names, keys,
partitions, retention, dead-letter topics) and the registered event payload models
(``inbox_core.events.registered_types()``, after importing every event module). Each event type
becomes one message of its topic's channel, with the envelope, its ``data`` schema (from pydantic),
the Kafka key and the headers.

Why not FastStream's generator (``faststream.specification.AsyncAPI``)? It describes a broker's
subscribers and publishers, one message per publisher: several event types on one topic collapse into
one payload, keys and partitions are not described, and schemas generated per publisher overwrite each
other when two modules have a model of the same name (``Actor``, ``OrderItem``). Here all payload schemas
are generated in one pass, so pydantic keeps such names apart, and the output is stable byte for byte.
"""

from __future__ import annotations

import copy
import importlib
import sys
from typing import Any

import yaml
from generated_file import ROOT, generate_or_check
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from inbox_core.events import Event, registered_types
from inbox_core.topics import (
    CONVERSATIONS,
    CUSTOMERS,
    DLQ_PARTITIONS,
    ORDERS,
    PRESENCE,
    TOPICS,
    WHATSAPP_COMMANDS,
    WHATSAPP_EVENTS,
    Topic,
)

OUT = ROOT / "docs" / "asyncapi.yaml"
SCHEMAS = "#/components/schemas/"
KAFKA_BINDING = "0.5.0"

# The event modules and the topic their types are published on.
EVENT_MODULES: dict[str, Topic] = {
    "inbox_core.events.whatsapp": WHATSAPP_EVENTS,
    "inbox_core.events.commands": WHATSAPP_COMMANDS,
    "inbox_core.events.conversations": CONVERSATIONS,
    "inbox_core.events.customers": CUSTOMERS,
    "inbox_core.events.orders": ORDERS,
    "inbox_core.events.presence": PRESENCE,
}
# Who writes each topic (docs/architecture.md): its one producer.
PRODUCERS: dict[str, str] = {
    WHATSAPP_EVENTS.name: "ingest",
    WHATSAPP_COMMANDS.name: "conversations",
    CONVERSATIONS.name: "conversations",
    CUSTOMERS.name: "customers",
    ORDERS.name: "orders",
    PRESENCE.name: "presence",
}

DESCRIPTION = """\
The Kafka topics of the team WhatsApp inbox, for systems that consume them.

Every message value is one JSON event in the same envelope: `id` (unique per fact: deduplicate on it),
`type` (which payload `data` holds), `occurred_at` (RFC 3339, UTC), `workspace_id` and `data`.
Unknown fields may appear in the envelope and in `data` at any time (additive changes keep the topic
name); ignore what you do not know. A breaking change makes a new topic (`.v2`) next to the old one.

Keys: every message of one topic with the same key is in one partition, in order (for example all of
one conversation). Delivery is at least once: the same event (same `id`) can arrive twice, so a consumer
must be idempotent. Trace context travels in the W3C `traceparent`/`tracestate` headers.

Each topic has a dead-letter topic `<topic>.dlq` that holds, byte for byte, the messages a consumer of
this system could not process, with the reason in `dlq-*` headers.
"""

EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event-type": {"type": "string", "description": "The envelope's `type`, to filter without parsing."},
        "event-id": {"type": "string", "description": "The envelope's `id`."},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context of the producing span."},
        "tracestate": {"type": "string", "description": "W3C trace state, when there is any."},
    },
    "required": ["event-type", "event-id", "content-type"],
}
DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original message's headers, plus why and where from.",
    "properties": {
        **EVENT_HEADERS["properties"],
        "dlq-reason": {"type": "string", "description": "The error, at most 2000 characters."},
        "dlq-error-type": {"type": "string", "description": "The exception's class name."},
        "dlq-source-topic": {"type": "string"},
        "dlq-source-partition": {"type": "string", "description": "A decimal number."},
        "dlq-source-offset": {"type": "string", "description": "A decimal number."},
        "dlq-consumer-group": {"type": "string", "description": "The consumer group that gave up on it."},
    },
    "required": ["dlq-reason", "dlq-error-type", "dlq-source-topic", "dlq-source-partition", "dlq-source-offset",
                 "dlq-consumer-group"],
}


def load_event_modules() -> list[str]:
    """Imports every event module there is; returns the ones missing (written later, or removed)."""
    missing = []
    for module in EVENT_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            missing.append(module)
    return missing


def topic_of(event_type: str, model: type[BaseModel]) -> Topic:
    # The module that defines it, or the package it is part of (events/whatsapp/ is split into modules).
    module = next((name for name in EVENT_MODULES
                   if model.__module__ == name or model.__module__.startswith(name + ".")), None)
    if module is None:
        raise SystemExit(f"event type {event_type!r} ({model.__module__}) has no topic: add it to EVENT_MODULES")
    topic = EVENT_MODULES[module]
    declared = getattr(sys.modules[module], "TOPIC", topic.name)
    if declared != topic.name:
        raise SystemExit(f"{module}.TOPIC is {declared!r}, EVENT_MODULES says {topic.name!r}")
    return topic


def channel_id(topic_name: str) -> str:
    # AsyncAPI ids allow letters, digits, '-' and '_' only.
    return topic_name.replace(".", "-")


def message_id(event_type: str) -> str:
    return event_type.replace(".", "_")


def summary_of(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else ""


def envelope_schema(base: dict[str, Any], event_type: str, data_ref: str) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    schema["title"] = f"{event_type} event"
    schema["properties"]["type"] = {"type": "string", "const": event_type}
    schema["properties"]["data"] = {"$ref": data_ref}
    # Producers always write every envelope field (workspace_id may be null).
    schema["required"] = ["id", "type", "occurred_at", "workspace_id", "data"]
    return schema


def build() -> dict[str, Any]:
    types = sorted(registered_types().items())
    by_topic: dict[str, list[str]] = {t.name: [] for t in TOPICS}
    for name, model in types:
        by_topic[topic_of(name, model).name].append(name)

    # One pass over every payload model, so that models of the same name in two modules get two names.
    refs, defs = models_json_schema([(model, "serialization") for _, model in types],
                                    ref_template=SCHEMAS + "{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    base = Event.model_json_schema(mode="serialization")
    messages: dict[str, Any] = {}
    for name, model in types:
        topic = topic_of(name, model)
        envelope = f"{message_id(name)}_event"
        schemas[envelope] = envelope_schema(base, name, refs[(model, "serialization")]["$ref"])
        message: dict[str, Any] = {
            "name": name,
            "title": name,
            "contentType": "application/json",
            "headers": {"$ref": SCHEMAS + "EventHeaders"},
            "payload": {"$ref": SCHEMAS + envelope},
            "bindings": {"kafka": {"key": {"type": "string", "description": f"`{topic.key}`"},
                                   "bindingVersion": KAFKA_BINDING}},
        }
        if summary := summary_of(model):
            message["summary"] = summary
        messages[message_id(name)] = message
    schemas["EventHeaders"] = EVENT_HEADERS
    schemas["DeadLetterHeaders"] = DEAD_LETTER_HEADERS

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        names = by_topic[topic.name]
        cid = channel_id(topic.name)
        channels[cid] = {
            "address": topic.name,
            "title": topic.name,
            "description": (f"{topic.description}\n\nKey: `{topic.key}` (one key's events are in order). "
                            f"Published by the {PRODUCERS[topic.name]} service. Retention: "
                            f"{topic.retention_ms // 3_600_000} hours."),
            "messages": {message_id(n): {"$ref": f"#/components/messages/{message_id(n)}"} for n in names},
            "bindings": {"kafka": {"topic": topic.name, "partitions": topic.partitions,
                                   "topicConfiguration": {"retention.ms": topic.retention_ms},
                                   "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"{cid}-publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"The {PRODUCERS[topic.name]} service publishes on {topic.name}.",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{message_id(n)}"} for n in names],
        }
        dead = f"{message_id(topic.name)}_dead_letter"
        messages[dead] = {
            "name": f"{topic.name} dead letter",
            "title": f"A message of {topic.name} that could not be processed",
            "summary": ("The original key and value byte for byte (normally one of the topic's events, but "
                        "possibly something that is not an event at all), its original headers, and why."),
            "headers": {"$ref": SCHEMAS + "DeadLetterHeaders"},
            "payload": {"oneOf": [{"$ref": f"{SCHEMAS}{message_id(n)}_event"} for n in names]} if names else {},
            "bindings": {"kafka": {"key": {"type": "string", "description": f"`{topic.key}`, as on {topic.name}"},
                                   "bindingVersion": KAFKA_BINDING}},
        }
        dlq_id = channel_id(topic.dlq)
        channels[dlq_id] = {
            "address": topic.dlq,
            "title": topic.dlq,
            "description": (f"Dead letters of {topic.name}: kept until someone looks at them (no retention "
                            "limit); see docs/operations.md to redrive them."),
            "messages": {dead: {"$ref": f"#/components/messages/{dead}"}},
            "bindings": {"kafka": {"topic": topic.dlq, "partitions": DLQ_PARTITIONS,
                                   "topicConfiguration": {"retention.ms": -1}, "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"{dlq_id}-publish"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{dlq_id}"},
            "summary": f"Any consumer of {topic.name} in this system dead-letters here after three failures.",
            "messages": [{"$ref": f"#/channels/{dlq_id}/messages/{dead}"}],
        }

    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Team WhatsApp inbox: topics", "version": "1.0.0", "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "kafka-bootstrap:9092",
                "protocol": "kafka",
                "description": "The deployment's Kafka cluster (INBOX_KAFKA_BOOTSTRAP); the host is a placeholder.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, which read like the text they are."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def render() -> str:
    header = ("# GENERATED by scripts/asyncapi.py from inbox_core.topics and inbox_core.events: do not edit.\n"
              "# Regenerate with `uv run python scripts/asyncapi.py generate`.\n")
    return header + yaml.dump(build(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def main(argv: list[str] | None = None) -> int:
    for module in load_event_modules():
        print(f"note: {module} does not exist (yet): its event types are not in the document", file=sys.stderr)
    return generate_or_check(__file__, __doc__, OUT, render, "the code", argv)


if __name__ == "__main__":
    raise SystemExit(main())

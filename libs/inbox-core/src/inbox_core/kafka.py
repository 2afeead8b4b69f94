"""Kafka with the delivery rules of docs/architecture.md, on FastStream (aiokafka underneath).

- Producers: ``acks=all`` and idempotence on; :func:`publish` returns only once the broker has the event.
- Consumers (:func:`subscribe`): no auto-commit; the offset is committed only after the handler returned,
  that is after its effects are durable. A handler that fails on a passing problem (database or broker
  down) is retried from the same offset with backoff, forever: nothing is dropped. A handler that fails
  on the message itself is retried a few times and then the message goes to ``<topic>.dlq`` with the
  reason, so one bad message never blocks its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerNotAvailableError,
    InvalidProducerEpoch,
    KafkaError,
    KafkaTimeoutError,
    KafkaUnavailableError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import propagate, trace
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from inbox_core.errors import TransientError, Unavailable
from inbox_core.events import Event
from inbox_core.mongo import database_unavailable
from inbox_core.settings import InboxSettings
from inbox_core.telemetry import tracer_provider
from inbox_core.topics import Topic

log = logging.getLogger("inbox.kafka")

EventHandler = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class Runs:
    """Consecutive records of one key that ``joins`` gives the same (not None) run key are handed to
    ``handler`` together, at most ``longest`` at a time: a use case that can fold them (one read and
    one write for many) does. A run that fails on itself is handled again record by record (the
    subscriber's ``handler``), so only a record that fails alone is dead-lettered."""

    joins: Callable[[Event], Hashable | None]
    handler: Callable[[list[Event]], Awaitable[None]]
    longest: int = 16

DEAD_LETTERED = Counter(
    "inbox_dead_lettered_total", "Messages sent to a dead-letter topic", ["topic", "group"]
)
HANDLER_FAILURES = Counter(
    "inbox_consumer_failures_total", "Handler failures by kind", ["topic", "group", "kind"]
)


# Each broker's consumer-group prefix (INBOX_GROUP_PREFIX), applied by subscribe().
_GROUP_PREFIX: weakref.WeakKeyDictionary[KafkaBroker, str] = weakref.WeakKeyDictionary()
# Each broker's consumers per subscription (INBOX_CONSUMER_WORKERS), applied by subscribe().
_CONSUMER_WORKERS: weakref.WeakKeyDictionary[KafkaBroker, int] = weakref.WeakKeyDictionary()


def is_transient(exc: BaseException) -> bool:
    """A failure that will pass on its own: retry the same message, never dead-letter it.

    Of Kafka's errors only those aiokafka marks ``retriable`` and those of a broker that is away (a timeout,
    a producer that must be replaced) pass; a ``MessageSizeTooLargeError`` or an authorisation failure
    would be retried forever and stall the partition, so it is the message's: dead-lettered.
    """
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KAFKA_AWAY)
    if isinstance(exc, TransientError | Unavailable) or database_unavailable(exc):
        return True
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return isinstance(exc, OSError | TimeoutError)


# Not marked retriable by aiokafka, yet what a broker that is down or restarting gives: a send that timed out
# waiting for it, no broker reachable, a producer being closed or one that must be replaced (PRODUCER_BROKEN).
KAFKA_AWAY: tuple[type[KafkaError], ...] = (KafkaTimeoutError, KafkaUnavailableError, BrokerNotAvailableError,
                                            ProducerClosed, OutOfOrderSequenceNumber, ProducerFenced,
                                            UnknownProducerId, InvalidProducerEpoch)


def make_broker(
    settings: InboxSettings,
    service: str,
    *,
    registry: CollectorRegistry | None = REGISTRY,
    telemetry: bool = True,
) -> KafkaBroker:
    middlewares: list[Any] = []
    if telemetry:
        middlewares.append(KafkaTelemetryMiddleware(tracer_provider=tracer_provider()))
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=f"inbox-{service}"))
    producer_options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap, "client_id": f"inbox-{service}",
                                        "acks": "all", "enable_idempotence": True, "request_timeout_ms": 15000}
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"inbox-{service}",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15000,
        graceful_timeout=30.0,
        middlewares=middlewares,
        logger=logging.getLogger(f"inbox.{service}.kafka"),
        log_level=logging.DEBUG,
    )
    _GROUP_PREFIX[broker] = settings.group_prefix
    _PRODUCER_OPTIONS[broker] = producer_options
    _CONSUMER_WORKERS[broker] = settings.consumer_workers
    return broker


async def publish(broker: KafkaBroker, topic: Topic | str, key: str, event: Event) -> None:
    """Publishes one event and returns once the broker acknowledged it (acks=all)."""
    name = topic.name if isinstance(topic, Topic) else topic
    await _send(broker, event.to_bytes(), topic=name, key=key.encode(),
                headers={"event-type": event.type, "event-id": event.id, "content-type": "application/json"})


# After one of these aiokafka's idempotent producer never sends again (its sender task has ended): a
# broker that restarted refuses the producer's sequence numbers or id. A new producer (a new producer id)
# sends; a record the old one may have written is then on the topic twice, and consumers are idempotent.
PRODUCER_BROKEN = (OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId, InvalidProducerEpoch)
PRODUCERS_REPLACED = Counter("inbox_kafka_producers_replaced_total", "Kafka producers replaced after a fatal error")
_PRODUCER_OPTIONS: weakref.WeakKeyDictionary[KafkaBroker, dict[str, Any]] = weakref.WeakKeyDictionary()
_PRODUCER_GENERATION: weakref.WeakKeyDictionary[KafkaBroker, int] = weakref.WeakKeyDictionary()
_REPLACING: weakref.WeakKeyDictionary[KafkaBroker, asyncio.Lock] = weakref.WeakKeyDictionary()


async def _send(broker: KafkaBroker, body: bytes, **options: Any) -> None:
    generation = _PRODUCER_GENERATION.get(broker, 0)
    try:
        await broker.publish(body, **options)
    except PRODUCER_BROKEN as exc:
        await replace_producer(broker, generation, exc)
        await broker.publish(body, **options)  # once more, with the new producer; a failure now is the caller's


async def replace_producer(broker: KafkaBroker, generation: int, why: BaseException) -> None:
    """Gives ``broker`` a new producer, unless another caller already replaced the ``generation`` that failed."""
    lock = _REPLACING.setdefault(broker, asyncio.Lock())
    async with lock:
        if _PRODUCER_GENERATION.get(broker, 0) != generation:
            return
        options = _PRODUCER_OPTIONS.get(broker)
        if options is None:
            raise RuntimeError("a broker not made by make_broker cannot get a new producer") from why
        fast: Any = broker.config.producer
        broken = getattr(fast, "_producer", None)  # FastStream's holder of the aiokafka producer
        log.warning("Kafka producer of %s cannot send any more (%r): replacing it", broker, why)
        # The new one is started first and takes over only once it runs: if Kafka is still away this
        # raises (the caller retries later) and the broken one stays, to be replaced on the next try.
        await fast.connect(AIOKafkaProducer(**options), fast.serializer, fast.codec)
        _PRODUCER_GENERATION[broker] = generation + 1
        PRODUCERS_REPLACED.inc()
        if broken is not None:
            with contextlib.suppress(Exception):
                # Stopping waits for what the broken sender will never deliver: bounded.
                await asyncio.wait_for(broken.stop(), 5.0)


def subscribe(
    broker: KafkaBroker,
    topic: Topic | str,
    *,
    group_id: str,
    handler: EventHandler,
    max_attempts: int = 3,
    retry_backoff_s: float = 0.5,
    max_backoff_s: float = 10.0,
    **subscriber_options: Any,
) -> Any:
    """Registers ``handler`` for every event on ``topic`` with commit-after-effects and a dead-letter topic.

    The handler must be idempotent: after a crash between its effects and the commit, it sees the event again.
    """
    name = topic.name if isinstance(topic, Topic) else topic
    dlq = f"{name}.dlq"
    group_id = _GROUP_PREFIX.get(broker, "") + group_id
    attempts: dict[tuple[int, int], int] = {}
    options: dict[str, Any] = {"auto_offset_reset": "earliest", "max_poll_records": 100}
    workers = _CONSUMER_WORKERS.get(broker, 1)
    if workers > 1:
        # Consumers of one group in this process, each owning some partitions and committing its own.
        options["max_workers"] = workers
    options.update(subscriber_options)

    async def consume(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)  # single-message subscriber
        position = (record.partition, record.offset)
        tries = attempts.get(position, 0) + 1
        try:
            event = Event.from_bytes(message.body)
            await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc):
                HANDLER_FAILURES.labels(name, group_id, "transient").inc()
                attempts[position] = tries
                delay = min(max_backoff_s, retry_backoff_s * 2 ** min(tries, 10))
                log.warning("transient failure on %s[%d]@%d (try %d), retrying in %.1fs: %r",
                            name, record.partition, record.offset, tries, delay, exc)
                await asyncio.sleep(delay)
                raise  # NACK: seek back to this offset, so it is delivered again
            HANDLER_FAILURES.labels(name, group_id, "permanent").inc()
            if tries < max_attempts:
                attempts[position] = tries
                log.warning("failure on %s[%d]@%d (try %d of %d): %r",
                            name, record.partition, record.offset, tries, max_attempts, exc)
                await asyncio.sleep(retry_backoff_s)
                raise
            attempts.pop(position, None)
            await dead_letter(broker, dlq, record, group_id, exc)
            log.error("dead-lettered %s[%d]@%d to %s: %r", name, record.partition, record.offset, dlq, exc)
            return  # committed: the dead-letter topic has it
        attempts.pop(position, None)

    consume.__name__ = f"consume_{name.replace('.', '_')}_{group_id.replace('.', '_').replace('-', '_')}"
    return broker.subscriber(name, group_id=group_id, ack_policy=AckPolicy.NACK_ON_ERROR, **options)(consume)



@functools.cache
def _tracer(provider: Any) -> trace.Tracer:
    # Made once per provider: get_tracer builds a new Tracer (and its scope) on every call.
    return trace.get_tracer("inbox_core.kafka", tracer_provider=provider)


def _record_span(topic: str, group_id: str, record: Any) -> Any:
    carrier = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    return _tracer(tracer_provider()).start_as_current_span(
        f"{topic} process", context=propagate.extract(carrier), kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                    "messaging.consumer.group.name": group_id, "messaging.kafka.offset": record.offset,
                    "messaging.destination.partition.id": str(record.partition)})


# Keys of one batch handled at once (each key's records in order): bounded so a batch of many
# conversations does not take every database connection.
BATCH_KEYS_AT_ONCE = 32
BATCH_PARTITION_BYTES = 256 * 1024


def subscribe_batch(
    broker: KafkaBroker,
    topic: Topic | str,
    *,
    group_id: str,
    handler: EventHandler,
    max_records: int = 200,
    max_attempts: int = 3,
    retry_backoff_s: float = 0.5,
    max_backoff_s: float = 10.0,
    keys_at_once: int = BATCH_KEYS_AT_ONCE,
    runs: Runs | None = None,
    **subscriber_options: Any,
) -> Any:
    """Like :func:`subscribe`, but takes the records a poll returns as one batch: the records of one key
    (one conversation, one customer) are handled in their order, different keys at once; the batch
    is committed after every record's effects.

    A record that fails on itself is tried again in place (``max_attempts``), then goes to the
    dead-letter topic, and the key's next records go on: it holds neither the batch nor its key. A
    transient failure (Kafka or the database away) rewinds the whole batch, delivered again after a
    backoff: handlers are idempotent, so what was done already is done again harmlessly. ``runs``: a
    key's consecutive records that fold together go to one call (see :class:`Runs`).
    """
    name = topic.name if isinstance(topic, Topic) else topic
    dlq = f"{name}.dlq"
    group_id = _GROUP_PREFIX.get(broker, "") + group_id
    # A fetch brings at most BATCH_PARTITION_BYTES of a partition (at least one record): a batch of
    # heavy records (a template sync's parts, ~256 KiB each) is then one of them, so the records of
    # other keys behind it wait for one heavy record at most, not for all the parts a 1 MiB fetch holds.
    options: dict[str, Any] = {"auto_offset_reset": "earliest", "max_records": max_records,
                               "max_partition_fetch_bytes": BATCH_PARTITION_BYTES}
    options.update(subscriber_options)
    rewinds = 0

    async def handle(record: Any, event: Event | None = None) -> None:
        for tries in range(1, max_attempts + 1):
            try:
                # One consume span per record, continuing its producer's trace from the headers: the batch
                # middleware's own span cannot be the parent of records from many traces.
                with _record_span(name, group_id, record):
                    await handler(event if event is not None else Event.from_bytes(record.value))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                HANDLER_FAILURES.labels(name, group_id, "permanent").inc()
                if tries < max_attempts:
                    log.warning("failure on %s[%d]@%d (try %d of %d): %r",
                                name, record.partition, record.offset, tries, max_attempts, exc)
                    await asyncio.sleep(retry_backoff_s)
                    continue
                await dead_letter(broker, dlq, record, group_id, exc)
                log.error("dead-lettered %s[%d]@%d to %s: %r", name, record.partition, record.offset, dlq, exc)

    async def consume(message: KafkaMessage) -> None:
        nonlocal rewinds
        raw = message.raw_message
        records = list(raw) if isinstance(raw, tuple) else [raw]
        by_key: dict[tuple[int, bytes | None], list[Any]] = {}
        for record in records:
            by_key.setdefault((record.partition, record.key), []).append(record)
        room = asyncio.Semaphore(keys_at_once)

        async def one_key(key_records: list[Any]) -> None:
            async with room:
                if runs is None:
                    for record in key_records:
                        await handle(record)
                    return
                for run in _runs(key_records, runs):
                    if len(run) == 1:
                        await handle(*run[0])
                    else:
                        await handle_run(run)

        async def handle_run(run: list[tuple[Any, Event | None]]) -> None:
            assert runs is not None
            try:
                # The run's span continues its first record's trace (one span cannot have many parents).
                with _record_span(name, group_id, run[0][0]) as span:
                    span.set_attribute("messaging.batch.message_count", len(run))
                    await runs.handler([event for _, event in run if event is not None])
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.warning("a run of %d from %s[%d] failed (%r): each record again on its own",
                            len(run), name, run[0][0].partition, exc)
            for record, event in run:
                await handle(record, event)

        try:
            async with asyncio.TaskGroup() as group:
                for key_records in by_key.values():
                    group.create_task(one_key(key_records))
        except* Exception as failures:
            HANDLER_FAILURES.labels(name, group_id, "transient").inc()
            rewinds += 1
            delay = min(max_backoff_s, retry_backoff_s * 2 ** min(rewinds, 10))
            log.warning("transient failure on a batch of %d from %s, retrying in %.1fs: %r",
                        len(records), name, delay, failures.exceptions[0])
            await asyncio.sleep(delay)
            raise failures.exceptions[0] from None  # NACK: every partition of the batch rewinds
        rewinds = 0

    consume.__name__ = f"consume_batch_{name.replace('.', '_')}_{group_id.replace('.', '_').replace('-', '_')}"
    return broker.subscriber(name, group_id=group_id, batch=True, ack_policy=AckPolicy.NACK_ON_ERROR,
                             **options)(consume)


def _runs(records: list[Any], runs: Runs) -> list[list[tuple[Any, Event | None]]]:
    """A key's records in order, each with its event (None: not an event, for ``handle`` to fail on), cut
    into runs: neighbours that ``runs.joins`` gives one run key together, up to ``runs.longest``."""
    out: list[list[tuple[Any, Event | None]]] = []
    last: Hashable | None = None
    for record in records:
        try:
            event: Event | None = Event.from_bytes(record.value)
        except ValidationError:
            event = None
        joined = runs.joins(event) if event is not None else None
        if joined is not None and joined == last and len(out[-1]) < runs.longest:
            out[-1].append((record, event))
        else:
            out.append([(record, event)])
        last = joined
    return out


async def dead_letter(broker: KafkaBroker, dlq: str, record: Any, group_id: str, exc: BaseException) -> None:
    """Copies a message that cannot be processed to the dead-letter topic, with why and where it came from."""
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    headers.update({
        "dlq-reason": str(exc)[:2000] or type(exc).__name__,
        "dlq-error-type": type(exc).__name__,
        "dlq-source-topic": record.topic,
        "dlq-source-partition": str(record.partition),
        "dlq-source-offset": str(record.offset),
        "dlq-consumer-group": group_id,
    })
    await _send(broker, record.value, topic=dlq, key=record.key, headers=headers)
    DEAD_LETTERED.labels(record.topic, group_id).inc()


CONSUMER_LAG = Gauge(
    "inbox_consumer_lag", "Messages not yet consumed, per partition", ["topic", "partition", "group"]
)


async def report_lag(broker: KafkaBroker, every_s: float = 15.0) -> None:
    """Publishes each subscriber's lag per assigned partition as ``inbox_consumer_lag`` (a background loop).

    The lag is the partition's high watermark minus the consumer's position, as the consumer knows them
    from its own fetches (no extra broker round trips).
    """
    while True:
        for subscriber in broker.subscribers:
            group = getattr(subscriber, "group_id", None) or "none"
            # A subscription with several workers has a consumer per worker.
            consumers = getattr(subscriber, "consumer_subgroup", None) or [getattr(subscriber, "consumer", None)]
            for consumer in consumers:
                if consumer is None:
                    continue
                try:
                    for tp in consumer.assignment():
                        highwater = consumer.highwater(tp)
                        if highwater is None:
                            continue
                        position = await consumer.position(tp)
                        CONSUMER_LAG.labels(tp.topic, str(tp.partition), group).set(max(0, highwater - position))
                except Exception as exc:  # a rebalance in progress: next round
                    log.debug("lag report skipped: %r", exc)
        await asyncio.sleep(every_s)

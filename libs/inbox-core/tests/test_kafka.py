"""FastStream through the real broker with the delivery rules: acks=all producer, commit after effects,
redelivery after a crash before the commit, dead letters for poison messages, retries for passing failures."""

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from inbox_core.errors import TransientError
from inbox_core.events import Event, EventData, event_type
from inbox_core.kafka import Runs, make_broker, publish, subscribe, subscribe_batch
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_testkit.infra import Infra


@event_type("test.thing.happened")
class ThingHappened(EventData):
    n: int


async def _new_topic(infra: Infra, partitions: int = 3) -> str:
    name = f"test.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(name, partitions), (f"{name}.dlq", 1)])
    return name


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_round_trip_in_order_per_key(infra: Infra, inbox_settings: InboxSettings) -> None:
    topic = await _new_topic(infra)
    received: list[Event] = []

    async def handle(event: Event) -> None:
        received.append(event)

    consumer_broker = make_broker(inbox_settings, "test", registry=None)
    subscribe(consumer_broker, topic, group_id=f"g-{topic}", handler=handle)
    producer_broker = make_broker(inbox_settings, "test", registry=None)
    await consumer_broker.start()
    await producer_broker.start()
    try:
        sent = [Event.of(ThingHappened(n=i), workspace_id="w1") for i in range(20)]
        for i, event in enumerate(sent):
            await publish(producer_broker, topic, f"key-{i % 2}", event)
        await _wait_for(lambda: len(received) >= 20)
        assert sorted(e.id for e in received) == sorted(e.id for e in sent)
        for key in (0, 1):
            ns = [e.payload(ThingHappened).n for e in received if e.payload(ThingHappened).n % 2 == key]
            assert ns == sorted(ns), "events of one key must arrive in order"
        assert received[0].workspace_id == "w1"
    finally:
        await consumer_broker.stop()
        await producer_broker.stop()


async def test_consumer_killed_before_commit_gets_message_again(infra: Infra, tmp_path: Path) -> None:
    topic = await _new_topic(infra, partitions=1)
    group = f"g-{topic}"
    out = tmp_path / "handled.txt"
    producer = make_broker(InboxSettings(kafka_bootstrap=infra.kafka_bootstrap), "test", registry=None)
    await producer.start()
    events = [Event.of(ThingHappened(n=i)) for i in range(6)]
    crash_on = events[3].id
    for event in events:
        await publish(producer, topic, "one-key", event)
    await producer.stop()

    script = Path(__file__).with_name("consumer_proc.py")
    args = [sys.executable, str(script), infra.kafka_bootstrap, topic, group, str(out), crash_on]
    first = subprocess.run(args, timeout=120, capture_output=True)
    assert first.returncode == 9, first.stderr.decode()[-2000:]
    assert out.read_text().split() == [e.id for e in events[:4]]

    second = subprocess.Popen(args)
    try:
        await _wait_for(lambda: len(out.read_text().split()) >= 7, timeout=60)
        await asyncio.sleep(1.0)  # nothing more may arrive
    finally:
        second.terminate()
        second.wait(30)
    handled = out.read_text().split()
    # Everything before the crash was committed once; the crashed one comes again; nothing is lost.
    assert handled == [e.id for e in events[:4]] + [e.id for e in events[3:]]


async def test_poison_message_goes_to_dead_letter_and_partition_moves_on(
    infra: Infra, inbox_settings: InboxSettings
) -> None:
    topic = await _new_topic(infra, partitions=1)
    handled: list[int] = []
    tries: dict[int, int] = {}

    async def handle(event: Event) -> None:
        n = event.payload(ThingHappened).n
        tries[n] = tries.get(n, 0) + 1
        if n == 1:
            raise ValueError("this order has no items")
        if n == 2 and tries[n] < 3:
            raise TransientError("database briefly away")
        handled.append(n)

    broker = make_broker(inbox_settings, "test", registry=None)
    subscribe(broker, topic, group_id=f"g-{topic}", handler=handle, retry_backoff_s=0.05)
    await broker.start()
    try:
        await publish(broker, topic, "k", Event.of(ThingHappened(n=0)))
        await publish(broker, topic, "k", Event(type="test.thing.happened", data={"n": 1}))
        await publish(broker, topic, "k", Event.of(ThingHappened(n=2)))
        # Not even an envelope: must be dead-lettered too, not crash the consumer.
        await broker.publish(b"\xff not json", topic=topic, key=b"k")
        await publish(broker, topic, "k", Event.of(ThingHappened(n=3)))
        await _wait_for(lambda: handled == [0, 2, 3])
    finally:
        await broker.stop()
    assert tries[1] == 3, "a failing message is tried max_attempts times"
    assert tries[2] == 3, "a passing failure is retried until it succeeds, never dead-lettered"

    dlq = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=infra.kafka_bootstrap,
                           auto_offset_reset="earliest", enable_auto_commit=False)
    await dlq.start()
    try:
        batches = await dlq.getmany(timeout_ms=10000, max_records=10)
        records = [r for rs in batches.values() for r in rs]
        if len(records) < 2:
            batches = await dlq.getmany(timeout_ms=10000, max_records=10)
            records += [r for rs in batches.values() for r in rs]
    finally:
        await dlq.stop()
    assert len(records) == 2
    headers = [dict(r.headers) for r in records]
    assert headers[0]["dlq-reason"] == b"this order has no items"
    assert headers[0]["dlq-source-topic"] == topic.encode()
    assert headers[1]["dlq-error-type"] == b"ValidationError"
    assert records[1].value == b"\xff not json", "the original bytes are kept as they were"


async def test_a_batch_hands_runs_together_and_a_failed_run_record_by_record(
    infra: Infra, inbox_settings: InboxSettings
) -> None:
    """Neighbours of one key that join one run go to the run's handler together (at most ``longest``);
    a run that fails is handled again record by record, so only the record that fails alone is
    dead-lettered, and a record that is not an event is dead-lettered as ever."""
    topic = await _new_topic(infra, partitions=1)
    runs: list[list[int]] = []
    singles: list[int] = []

    def joins(event: Event) -> str | None:
        return None if event.payload(ThingHappened).n == 2 else "run"

    async def one(event: Event) -> None:
        n = event.payload(ThingHappened).n
        if n == 4:
            raise ValueError("four cannot be handled")
        singles.append(n)

    async def together(events: list[Event]) -> None:
        ns = [e.payload(ThingHappened).n for e in events]
        runs.append(ns)
        if 4 in ns:
            raise ValueError("a run with four cannot be handled")

    producer = make_broker(inbox_settings, "test", registry=None)
    await producer.start()
    try:  # all on the topic before the consumer starts: its first poll is one batch of them
        for n in range(9):
            await publish(producer, topic, "k", Event.of(ThingHappened(n=n)))
        await producer.publish(b"\xff not json", topic=topic, key=b"k")
    finally:
        await producer.stop()
    broker = make_broker(inbox_settings, "test", registry=None)
    subscribe_batch(broker, topic, group_id=f"g-{topic}", handler=one, retry_backoff_s=0.05,
                    runs=Runs(joins, together, longest=3))
    await broker.start()
    try:
        await _wait_for(lambda: 8 in singles or [6, 7, 8] in runs)
        await asyncio.sleep(0.5)
    finally:
        await broker.stop()
    assert runs == [[0, 1], [3, 4, 5], [6, 7, 8]], runs  # 2 joins none; three at most
    assert singles == [2, 3, 5], singles  # the failed run again one by one, four left out

    dlq = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=infra.kafka_bootstrap,
                           auto_offset_reset="earliest", enable_auto_commit=False)
    await dlq.start()
    try:
        records: list = []
        deadline = time.monotonic() + 20
        while len(records) < 2 and time.monotonic() < deadline:
            batches = await dlq.getmany(timeout_ms=2000, max_records=10)
            records += [r for rs in batches.values() for r in rs]
    finally:
        await dlq.stop()
    assert len(records) == 2, records
    assert dict(records[0].headers)["dlq-reason"] == b"four cannot be handled"
    assert Event.from_bytes(records[0].value).payload(ThingHappened).n == 4
    assert records[1].value == b"\xff not json"


async def test_a_producer_the_broker_refuses_is_replaced_and_the_event_still_lands(
    infra: Infra, inbox_settings: InboxSettings
) -> None:
    """A broker that restarted may refuse an idempotent producer's next sequence number; aiokafka's sender
    then stops for good (every later send fails). Here the broker really refuses: the producer's sequence
    is pushed past what the broker expects. publish() replaces the producer and the event lands."""
    from aiokafka import TopicPartition

    topic = await _new_topic(infra, partitions=1)
    broker = make_broker(inbox_settings, "test", registry=None)
    await broker.start()
    try:
        first = Event.of(ThingHappened(n=1), workspace_id="w1")
        await publish(broker, topic, "k", first)
        old_producer = broker.config.producer._producer.producer  # type: ignore[attr-defined]
        old_producer._txn_manager.increment_sequence_number(TopicPartition(topic, 0), 5)
        second = Event.of(ThingHappened(n=2), workspace_id="w1")
        await asyncio.wait_for(publish(broker, topic, "k", second), 60)
        new_producer = broker.config.producer._producer.producer  # type: ignore[attr-defined]
        third = Event.of(ThingHappened(n=3), workspace_id="w1")
        await publish(broker, topic, "k", third)
    finally:
        await broker.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        records = await consumer.getmany(timeout_ms=5000)
        ids = [Event.from_bytes(r.value).id for batch in records.values() for r in batch]
    finally:
        await consumer.stop()
    print(f"on the topic: {len(ids)} records; producer replaced: {new_producer is not old_producer}")
    assert new_producer is not old_producer
    assert ids == [first.id, second.id, third.id]


async def test_an_event_too_large_for_kafka_dead_letters_its_cause_instead_of_stalling(
    infra: Infra, inbox_settings: InboxSettings
) -> None:
    """A handler whose own publish is refused for its size (``MessageSizeTooLargeError``: by the producer's
    1 MiB request limit, and by a broker whose topic takes less) fails on the message, not on a passing
    problem: the message is tried ``max_attempts`` times, dead-lettered, and the partition moves on."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import MessageSizeTooLargeError

    from inbox_core.kafka import is_transient

    topic = await _new_topic(infra, partitions=1)
    small = f"test.small.{uuid.uuid4().hex[:8]}"  # the broker refuses anything over 2 KB on this one
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "2048"})])
    finally:
        await admin.close()
    handled: list[int] = []
    tries: dict[int, int] = {}
    refusals: list[BaseException] = []

    async def handle(event: Event) -> None:
        n = event.payload(ThingHappened).n
        tries[n] = tries.get(n, 0) + 1
        try:
            if n == 1:  # over the producer's max_request_size
                await publish(broker, topic + ".dlq", "k", Event(type="test.big", data={"x": "x" * 1_100_000}))
            if n == 2:  # under it, over the broker's limit for that topic
                await publish(broker, small, "k", Event(type="test.big", data={"x": "x" * 10_000}))
        except Exception as exc:
            refusals.append(exc)
            raise
        handled.append(n)

    broker = make_broker(inbox_settings, "test", registry=None)
    subscribe(broker, topic, group_id=f"g-{topic}", handler=handle, retry_backoff_s=0.05)
    await broker.start()
    started = time.monotonic()
    try:
        for n in range(4):
            await publish(broker, topic, "k", Event.of(ThingHappened(n=n)))
        await _wait_for(lambda: handled == [0, 3], timeout=60)
    finally:
        await broker.stop()
    elapsed = time.monotonic() - started
    print(f"refused: {[type(e).__name__ for e in refusals]}; tries {tries}; partition moved on in {elapsed:.1f}s")
    assert all(isinstance(e, MessageSizeTooLargeError) for e in refusals) and len(refusals) == 6
    assert not any(is_transient(e) for e in refusals)
    assert tries == {0: 1, 1: 3, 2: 3, 3: 1}

    dlq = AIOKafkaConsumer(f"{topic}.dlq", bootstrap_servers=infra.kafka_bootstrap,
                           auto_offset_reset="earliest", enable_auto_commit=False)
    await dlq.start()
    try:
        records = []
        for _ in range(3):
            batches = await dlq.getmany(timeout_ms=5000, max_records=10)
            records += [r for rs in batches.values() for r in rs]
            if len(records) >= 2:
                break
    finally:
        await dlq.stop()
    assert [dict(r.headers)["dlq-error-type"] for r in records] == [b"MessageSizeTooLargeError"] * 2
    assert [Event.from_bytes(r.value).payload(ThingHappened).n for r in records] == [1, 2]


def test_only_retriable_kafka_errors_are_transient() -> None:
    from aiokafka import errors as kafka_errors

    from inbox_core.kafka import is_transient

    assert is_transient(kafka_errors.KafkaConnectionError())
    assert is_transient(kafka_errors.NotLeaderForPartitionError())
    assert is_transient(kafka_errors.KafkaTimeoutError())  # the broker is away: aiokafka's own timeout
    assert is_transient(kafka_errors.OutOfOrderSequenceNumber())  # the producer is replaced on the next try
    assert not is_transient(kafka_errors.MessageSizeTooLargeError())
    assert not is_transient(kafka_errors.RecordListTooLargeError())
    assert not is_transient(kafka_errors.TopicAuthorizationFailedError())
    assert not is_transient(kafka_errors.InvalidTopicError())

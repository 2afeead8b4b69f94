"""The live stream (``GET /api/stream``, server-sent events): every replica reads every ``inbox.*.v1`` event
and pushes each to the connected agents of its workspace.

- :class:`KafkaFeed` reads all partitions of the four topics with no consumer group (manual assignment,
  from the end: a replica streams what happens while it runs), so every replica sees every event. Each
  event is fanned out inside a span continuing the producer's trace (W3C context in the record headers).
- :class:`Hub` turns each event into one SSE frame (encoded once), keeps the last
  ``GATEWAY_STREAM_BUFFER_SIZE`` frames for ``Last-Event-ID`` resumes, drops redeliveries (same event id),
  and hands each frame to the subscriptions of its workspace without ever waiting: every connection has
  its own bounded queue, and a connection whose queue is full is closed (a final ``event: error`` with
  ``{"reason": "too_slow"}``), so a slow client never delays the others; it reconnects and resumes.
- :class:`EventStream` is one connection (a plain ASGI app): keep-alive comments and a timeout on every
  write (a client that stops reading is dropped). The gateway keeps the open streams up in one batch
  (``Gateway.stream_upkeep``): sessions that ended close theirs, and presence hears that their agents
  are online.

Event names (docs/api.md): ``conversation.updated`` (a Conversation), ``message.created`` / ``message.updated``
(``{conversation_id, message}``), ``note.created`` (``{conversation_id, note}``), ``activity.created``
(``{conversation_id, activity}``), ``composing``, ``presence``, ``viewing``, ``order.updated`` (an Order),
``customer.updated`` (a Customer with its ``stats``). Any other event type is passed on under its own
name with its data as published. ``reset`` says the stream has a gap: as the first frame, the
``Last-Event-ID`` is no longer in the buffer; later, an event could not be fanned out (an unexpected
error; the other events go on) or the feed could not resume where it stopped. Reload, then follow the
stream. The feed resumes a reconnect from the offsets it had read, so an error or a Kafka outage loses
nothing; a ``Last-Event-ID`` from before a gap gets ``reset`` too.
"""

from __future__ import annotations

from inbox_gateway.stream.connection import RETRY_MS, EventStream, StreamPolicy
from inbox_gateway.stream.feed import TOPICS, KafkaFeed
from inbox_gateway.stream.frames import Frame, frame_of, sse, translate
from inbox_gateway.stream.hub import Hub, Subscription

__all__ = ["RETRY_MS", "TOPICS", "EventStream", "Frame", "Hub", "KafkaFeed", "StreamPolicy", "Subscription", "frame_of",
           "sse", "translate"]

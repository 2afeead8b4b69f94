"""The left and center columns: numbers, conversations, their timelines, sending, templates and the content
library."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from inbox_gateway.models.common import ActorRef, Direction, Id, LibraryType, MessageStatus, Status

# --- numbers ---------------------------------------------------------------------------------------------


class Number(Struct):
    id: str  # Meta's phone_number_id
    workspace_id: str
    display_phone_number: str
    name: str
    unread_conversations: int
    waba_id: str


class NumberList(Struct):
    items: list[Number]


class ConnectNumberBody(Struct, forbid_unknown_fields=True):
    workspace_id: Id
    phone_number_id: Annotated[str, Meta(pattern=r"^\d{1,32}$")]
    display_phone_number: Annotated[str, Meta(max_length=32)]
    name: Annotated[str, Meta(max_length=200)]
    waba_id: Annotated[str, Meta(pattern=r"^\d{1,32}$")]
    # Write-only: stored by ingest, never returned or logged. Empty keeps the stored token. It travels in an
    # HTTP header to Meta, so printable ASCII only (Meta's tokens are letters and digits).
    access_token: Annotated[str, Meta(max_length=4096, pattern=r"^[\x21-\x7e]*$")] = ""


class ConnectedNumber(Struct):
    id: str
    workspace_id: str
    display_phone_number: str
    name: str
    waba_id: str
    has_access_token: bool


class ConnectedNumberEnvelope(Struct):
    number: ConnectedNumber


# --- left column -----------------------------------------------------------------------------------------


class CustomerSummary(Struct):
    id: str
    wa_id: str
    name: str
    phone: str
    user_id: str | None


class LastMessage(Struct):
    id: str
    direction: Direction
    type: str
    preview: str
    at: datetime | None
    status: MessageStatus | None


class Window(Struct):
    open: bool
    expires_at: datetime | None


class Composing(Struct):
    agent_id: str
    name: str


class Viewer(Struct):
    """A colleague who has the conversation open right now (expiring on its own, like composing)."""

    agent_id: str
    name: str


class Conversation(Struct):
    id: str
    number_id: str
    workspace_id: str
    customer: CustomerSummary
    last_message: LastMessage | None
    unread_count: int
    awaiting_reply: bool
    assignee: ActorRef | None
    window: Window
    composing: list[Composing]
    viewing: list[Viewer]  # colleagues with it open now (the caller left out)
    updated_at: datetime | None
    created_at: datetime | None
    version: int
    status: Status
    snoozed_until: datetime | None  # set while snoozed: it reopens then
    last_seq: Annotated[int, Meta(ge=0, description="The seq of the conversation's newest timeline item.")]
    unseen_mentions: Annotated[int, Meta(ge=0, description=(
        "Notes mentioning the calling agent that it has not seen yet (reading the conversation clears them); "
        "left out of the stream's conversation.updated (it counts for nobody in particular): the `mention` "
        "event says when one arrives."))]


class ConversationPage(Struct):
    items: list[Conversation]
    next_cursor: str | None


class ConversationEnvelope(Struct):
    conversation: Conversation


# --- center column ---------------------------------------------------------------------------------------


class Media(Struct):
    id: str
    mime_type: str | None
    filename: str | None
    caption: str | None
    size: int
    status: str  # stored | pending | unavailable


class TemplateUse(Struct):
    name: str
    language: str
    params: dict[str, Any]


class ReactionContent(Struct):
    message_id: str
    emoji: str


class MessageReaction(Struct):
    emoji: str
    by: ActorRef | None
    direction: Direction | None
    at: datetime | None


class MessageError(Struct):
    code: int | None
    title: str
    detail: str


# A timeline item's place in its conversation: strictly increasing in the order the inbox learned of the
# items (Meta's timestamps have one-second resolution, so `at` ties); 0 on items from before seqs, which
# come first. Clients order a conversation's items by it.
Seq = Annotated[int, Meta(ge=0, description="The item's place in its conversation's timeline: strictly "
                          "increasing in the order the inbox learned of the items (0: stored before seqs, first).")]


class MessageItem(Struct, tag_field="kind", tag="message"):
    id: str
    conversation_id: str
    wamid: str | None
    direction: Direction
    type: str
    text: str | None
    media: Media | None
    template: TemplateUse | None
    location: dict[str, Any] | None
    contacts: list[dict[str, Any]]
    interactive: dict[str, Any] | None
    reaction: ReactionContent | None
    reply_to: str | None
    reactions: list[MessageReaction]
    status: MessageStatus | None
    error: MessageError | None
    sent_by: ActorRef | None
    at: datetime | None
    origin: str
    edited: bool
    revoked: bool
    seq: Seq


class NoteItem(Struct, tag_field="kind", tag="note"):
    id: str
    conversation_id: str
    text: str
    author: ActorRef | None
    at: datetime | None
    seq: Seq
    mentions: list[ActorRef]  # the agents the note mentions


class ActivityItem(Struct, tag_field="kind", tag="activity"):
    id: str
    conversation_id: str
    action: str
    actor: ActorRef | None
    details: dict[str, Any]
    at: datetime | None
    seq: Seq


TimelineItem = MessageItem | NoteItem | ActivityItem


class TimelinePage(Struct):
    items: list[TimelineItem]  # oldest first within the page
    next_before: str | None


# The double-reply guard: the newest timeline seq the agent had seen. A colleague's reply after it makes
# the send 409 conflict (who replied and when in details), unless force is true.
AfterSeq = Annotated[int, Meta(ge=0, le=2**53, description="The newest timeline seq the agent had seen: a "
                                 "colleague's reply after it makes the send 409 conflict unless force is true.")]


class SendMessageBody(Struct, forbid_unknown_fields=True):
    """``{type: "text", text, reply_to?}`` or ``{type: <media>, upload_id | library_item_id, caption?, filename?}``."""

    type: Literal["text", "image", "video", "audio", "document"]
    text: Annotated[str, Meta(max_length=4096)] | None = None
    reply_to: Id | None = None
    upload_id: Id | None = None
    library_item_id: Id | None = None
    caption: Annotated[str, Meta(max_length=1024)] | None = None
    filename: Annotated[str, Meta(max_length=255)] | None = None
    preview_url: bool = False
    after_seq: AfterSeq | None = None
    force: bool = False


class MessageEnvelope(Struct):
    message: MessageItem


class TemplateParams(Struct, forbid_unknown_fields=True):
    """Values for the template's variables (the conversations service caps their sizes)."""

    header: Annotated[list[Any], Meta(max_length=1)] | None = None
    body: Annotated[list[Any], Meta(max_length=100)] | None = None
    buttons: Annotated[list[Any], Meta(max_length=10)] | None = None


class SendTemplateBody(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=512)]
    language: Annotated[str, Meta(min_length=2, max_length=20)]
    params: TemplateParams = msgspec.field(default_factory=TemplateParams)
    after_seq: AfterSeq | None = None
    force: bool = False


class NoteBody(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, max_length=10000)]
    # Agents of the conversation's workspace to tell (each gets a `mention` on the stream); others are a 400.
    mentions: Annotated[list[Id], Meta(max_length=20)] = []


class NoteEnvelope(Struct):
    note: NoteItem


class AssignBody(Struct, forbid_unknown_fields=True):
    agent_id: Id | None  # null unassigns


class StatusBody(Struct, forbid_unknown_fields=True):
    status: Status
    until: datetime | None = None  # snoozed: when it reopens (in the future); not with another status


class ComposingBody(Struct, forbid_unknown_fields=True):
    composing: bool


class ViewingBody(Struct, forbid_unknown_fields=True):
    viewing: bool  # false: the agent left it


class Upload(Struct):
    upload_id: str
    mime_type: str
    size: int
    filename: str | None
    sha256: str


class Template(Struct):
    number_id: str
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]


class TemplateList(Struct):
    items: list[Template]


class LibraryItem(Struct):
    id: str
    workspace_id: str
    title: str
    type: LibraryType
    text: str | None
    media: Media | None
    created_by: ActorRef | None
    created_at: datetime | None


class LibraryList(Struct):
    items: list[LibraryItem]


class LibraryItemBody(Struct, forbid_unknown_fields=True):
    """A text snippet (``text``) or a media item (``upload_id`` from POST /api/uploads)."""

    workspace_id: Id
    type: LibraryType
    title: Annotated[str, Meta(max_length=200)] = ""
    text: Annotated[str, Meta(max_length=4096)] | None = None
    upload_id: Id | None = None
    caption: Annotated[str, Meta(max_length=1024)] | None = None
    filename: Annotated[str, Meta(max_length=255)] | None = None


class LibraryItemEnvelope(Struct):
    item: LibraryItem


# --- canned replies --------------------------------------------------------------------------------------

Shortcut = Annotated[str, Meta(min_length=1, max_length=33, pattern=r"^/?[^\s/]+$",
                               description="One word, typed after '/' in the composer; unique in the workspace")]


class CannedReply(Struct):
    id: str
    workspace_id: str
    shortcut: str
    title: str
    text: str  # may hold {{customer.name}}, {{customer.first_name}}, {{agent.name}}


class CannedReplyList(Struct):
    items: list[CannedReply]


class CannedReplyBody(Struct, forbid_unknown_fields=True):
    workspace_id: Id
    shortcut: Shortcut
    text: Annotated[str, Meta(min_length=1, max_length=4096)]
    title: Annotated[str, Meta(max_length=100)] = ""


class CannedReplyChanges(Struct, forbid_unknown_fields=True):
    """The fields to change; those left out stay."""

    shortcut: Shortcut | None = None
    title: Annotated[str, Meta(max_length=100)] | None = None
    text: Annotated[str, Meta(min_length=1, max_length=4096)] | None = None


class CannedReplyEnvelope(Struct):
    reply: CannedReply


class RenderedReply(Struct):
    text: str

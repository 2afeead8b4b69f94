"""The gateway's HTTP models (docs/api.md): what clients send and receive, as msgspec Structs.

Litestar builds the OpenAPI document at /schema from these, so every field is typed here. Times are
RFC 3339 UTC strings, money is a decimal string with its currency, ids are opaque strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

Role = Literal["admin", "agent"]
Direction = Literal["in", "out"]
MessageStatus = Literal["pending", "sent", "delivered", "read", "played", "failed"]
MediaType = Literal["image", "video", "audio", "document"]
LibraryType = Literal["text", "image", "video", "audio", "document"]
Stage = Literal["new", "confirmed", "shipped", "delivered", "cancelled", "returned"]
Filter = Literal["all", "unread", "mine", "no_reply"]

Id = Annotated[str, Meta(min_length=1, max_length=200)]
Decimal = Annotated[str, Meta(pattern=r"^\d{1,12}(\.\d{1,4})?$", description="A decimal number as a string")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217")]


# --- errors ---------------------------------------------------------------------------------------------


class ErrorDetail(Struct):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(Struct):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


# --- shared small types ----------------------------------------------------------------------------------


class ActorRef(Struct):
    id: str
    name: str


class Money(Struct):
    amount: str
    currency: str


# --- auth and me -----------------------------------------------------------------------------------------


class LoginBody(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=3, max_length=320)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class AgentProfile(Struct):
    id: str
    name: str
    email: str
    # "admin" when the agent administers any of its workspaces (per-workspace roles are in /api/me).
    role: Role


class WorkspaceRef(Struct):
    id: str
    name: str
    role: Role
    currency: str


class LoginResponse(Struct):
    token: str
    agent: AgentProfile
    expires_at: datetime


class Me(Struct):
    agent: AgentProfile
    workspaces: list[WorkspaceRef]


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
    updated_at: datetime | None
    created_at: datetime | None
    version: int


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


class NoteItem(Struct, tag_field="kind", tag="note"):
    id: str
    conversation_id: str
    text: str
    author: ActorRef | None
    at: datetime | None


class ActivityItem(Struct, tag_field="kind", tag="activity"):
    id: str
    conversation_id: str
    action: str
    actor: ActorRef | None
    details: dict[str, Any]
    at: datetime | None


TimelineItem = MessageItem | NoteItem | ActivityItem


class TimelinePage(Struct):
    items: list[TimelineItem]  # oldest first within the page
    next_before: str | None


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


class NoteBody(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, max_length=10000)]


class NoteEnvelope(Struct):
    note: NoteItem


class AssignBody(Struct, forbid_unknown_fields=True):
    agent_id: Id | None  # null unassigns


class ComposingBody(Struct, forbid_unknown_fields=True):
    composing: bool


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


# --- right column ----------------------------------------------------------------------------------------


class Customer(Struct):
    id: str
    workspace_id: str
    wa_id: str
    user_id: str | None
    name: str
    profile_name: str | None
    phone: str
    tags: list[str]
    attributes: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    updated_at: datetime | None


class CustomerStats(Struct):
    orders: int
    delivered: int
    returned: int
    cancelled: int
    revenue: Money


class CustomerPatch(Struct, forbid_unknown_fields=True):
    """Only the fields given change; ``tags: []`` / ``attributes: {}`` clear them."""

    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    tags: list[Annotated[str, Meta(min_length=1, max_length=64)]] | None = None
    # At most 50, names up to 64 characters; the customers service caps the values' sizes.
    attributes: Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=50)] | None = None


class OrderItem(Struct):
    sku: str
    name: str
    quantity: int
    unit_price: str
    line_total: str


class Shipping(Struct):
    name: str = ""
    phone: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    instructions: str = ""


class StageChange(Struct):
    stage: Stage
    by: ActorRef | None
    at: datetime | None


class Order(Struct):
    id: str
    number: int
    workspace_id: str
    customer_id: str
    conversation_id: str | None
    items: list[OrderItem]
    total: Money
    shipping: Shipping | None
    stage: Stage
    stage_history: list[StageChange]
    note: str | None
    created_by: ActorRef | None
    created_at: datetime | None
    updated_at: datetime | None


class Panel(Struct):
    customer: Customer
    stats: CustomerStats
    orders: list[Order]  # most recent first
    current_order: Order | None


class OrderItemBody(Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1, max_length=100)]
    name: Annotated[str, Meta(min_length=1, max_length=300)]
    quantity: Annotated[int, Meta(ge=1, le=100000)]
    unit_price: Decimal


class ShippingBody(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(max_length=200)] = ""
    phone: Annotated[str, Meta(max_length=50)] = ""
    line1: Annotated[str, Meta(max_length=300)] = ""
    line2: Annotated[str, Meta(max_length=300)] = ""
    city: Annotated[str, Meta(max_length=200)] = ""
    region: Annotated[str, Meta(max_length=200)] = ""
    postal_code: Annotated[str, Meta(max_length=40)] = ""
    country: Annotated[str, Meta(max_length=2)] = ""
    instructions: Annotated[str, Meta(max_length=1000)] = ""


class CreateOrderBody(Struct, forbid_unknown_fields=True):
    conversation_id: Id
    items: Annotated[list[OrderItemBody], Meta(min_length=1, max_length=200)]
    shipping: ShippingBody | None = None
    note: Annotated[str, Meta(max_length=2000)] | None = None


class OrderEnvelope(Struct):
    order: Order


class StageBody(Struct, forbid_unknown_fields=True):
    stage: Stage


# --- team and admin --------------------------------------------------------------------------------------


class TeamMember(Struct):
    id: str
    name: str
    role: Role
    online: bool


class TeamList(Struct):
    items: list[TeamMember]


Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, Meta(min_length=10, max_length=1024)]


class InviteBody(Struct, forbid_unknown_fields=True):
    workspace_id: Id
    email: Email
    role: Role = "agent"


class InvitationOut(Struct):
    id: str
    email: str
    role: Role
    workspace_id: str
    expires_at: datetime
    created_at: datetime


class InvitationCreated(Struct):
    """The token is shown here once: only its hash is kept."""

    invitation: InvitationOut
    token: str


class InvitationList(Struct):
    items: list[InvitationOut]


class WorkspaceName(Struct):
    id: str
    name: str


class InvitationPreview(Struct):
    workspace: WorkspaceName
    email: str
    role: Role
    account_exists: bool
    expires_at: datetime


class AcceptBody(Struct, forbid_unknown_fields=True):
    """For a new account, its name and password (chosen by the invitee); an existing account sends ``{}``
    while signed in as the invited email."""

    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    password: Password | None = None


class Accepted(Struct):
    agent: AgentProfile
    workspace: WorkspaceRef


class PasswordBody(Struct, forbid_unknown_fields=True):
    current_password: Annotated[str, Meta(min_length=1, max_length=1024)]
    new_password: Password

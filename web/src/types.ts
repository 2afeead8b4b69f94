// The gateway's resources, named for the screens. Their shapes are generated from the gateway's OpenAPI
// document (api-types.ts, `make generate`): a field changed in the gateway changes them here, and tsc
// says which screen must follow. Only what the document cannot say is written by hand below.

import type { components, operations } from "./api-types";

type Schemas = components["schemas"];

export type ActorRef = Schemas["ActorRef"];
export type Money = Schemas["Money"];
export type Agent = Schemas["AgentProfile"];
export type Role = Agent["role"];
export type WorkspaceRef = Schemas["WorkspaceRef"];
export type Me = Schemas["Me"];
export type NumberInfo = Schemas["Number"];
export type CustomerSummary = Schemas["CustomerSummary"];
export type LastMessage = Schemas["LastMessage"];
export type Composer = Schemas["Composing"];
export type Conversation = Schemas["Conversation"];
export type Viewer = Schemas["Viewer"];
export type Media = Schemas["Media"];
export type Reaction = Schemas["MessageReaction"];
export type MessageError = Schemas["MessageError"];
export type MessageItem = Schemas["MessageItem"];
export type Direction = MessageItem["direction"];
export type MessageStatus = NonNullable<MessageItem["status"]>;
export type NoteItem = Schemas["NoteItem"];
export type ActivityItem = Schemas["ActivityItem"];
export type TimelineItem = MessageItem | NoteItem | ActivityItem;
export type TimelinePage = Schemas["TimelinePage"];
export type Template = Schemas["Template"];
export type LibraryItem = Schemas["LibraryItem"];
export type CannedReply = Schemas["CannedReply"];
export type WorkspaceSettings = Schemas["WorkspaceSettings"];
export type AutoAssign = WorkspaceSettings["auto_assign"];
export type Upload = Schemas["Upload"];
export type Customer = Schemas["Customer"];
export type Stats = Schemas["CustomerStats"];
export type OrderLine = Schemas["OrderItem"];
export type Shipping = Schemas["Shipping"];
export type Order = Schemas["Order"];
export type Stage = Order["stage"];
export type Panel = Schemas["Panel"];
export type TeamMember = Schemas["TeamMember"];
export type Invitation = Schemas["InvitationOut"];
/** The answer to an invitation: its token is in this answer only. */
export type InvitationCreated = Schemas["InvitationCreated"];
/** What the acceptance page shows to whoever holds the token. */
export type InvitationPreview = Schemas["InvitationPreview"];
export type Accepted = Schemas["Accepted"];
type ListQuery = NonNullable<operations["ApiConversationsListConversations"]["parameters"]["query"]>;
export type Filter = NonNullable<ListQuery["filter"]>;
/** Which statuses the list shows (open by default). */
export type StatusView = NonNullable<ListQuery["status"]>;
export type ConversationStatus = Conversation["status"];
export type ShippingBody = Schemas["ShippingBody"];
export type OrderItemBody = Schemas["OrderItemBody"];
export type CreateOrderBody = Schemas["CreateOrderBody"];

/** A page of a list: the document names each list's page on its own, they share this shape. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

// The document types these as open objects (their content is Meta's, passed through): the fields the
// screens read, as Meta defines them.
export interface Location {
  latitude?: number;
  longitude?: number;
  name?: string;
  address?: string;
  url?: string;
}

export interface ContactCard {
  name?: { formatted_name?: string; first_name?: string; last_name?: string };
  phones?: { phone?: string; wa_id?: string; type?: string }[];
  emails?: { email?: string }[];
  org?: { company?: string };
}

export interface TemplateComponent {
  type: string;
  format?: string;
  text?: string;
  buttons?: { type: string; text?: string; url?: string; phone_number?: string }[];
  example?: Record<string, unknown>;
}

// Payloads of the stream's events (docs/api.md "Streamed updates"): the stream is not in the OpenAPI
// document (one text/event-stream response), so these are written here.
export interface ComposingEvent {
  conversation_id: string;
  agent: ActorRef;
  composing: boolean;
  expires_at?: string | null;
}

/** `viewing` on the stream: a colleague opened or left a conversation (or their viewing expired). */
export interface ViewingEvent {
  conversation_id: string;
  agent: ActorRef;
  viewing: boolean;
}

/** `customer.updated` on the stream: a Customer with its stats. */
export type CustomerUpdate = Customer & { stats?: Stats };

export interface PresenceEvent {
  agent: ActorRef;
  online: boolean;
}

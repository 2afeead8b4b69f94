// The gateway's resources as docs/api.md describes them (fields the screen uses; the API may add more).

export type Role = "admin" | "agent";
export type Direction = "in" | "out";
export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "played" | "failed";
export type Filter = "all" | "unread" | "mine" | "no_reply";
export type Stage = "new" | "confirmed" | "shipped" | "delivered" | "cancelled" | "returned";

export interface ActorRef {
  id: string;
  name: string;
}

export interface Money {
  amount: string;
  currency: string;
}

export interface Agent {
  id: string;
  name: string;
  email: string;
  role: Role;
}

export interface WorkspaceRef {
  id: string;
  name: string;
  role: Role;
  currency?: string;
}

export interface Me {
  agent: Agent;
  workspaces: WorkspaceRef[];
}

export interface NumberInfo {
  id: string;
  workspace_id: string;
  display_phone_number: string;
  name: string;
  unread_conversations: number;
}

export interface CustomerSummary {
  id: string;
  wa_id: string;
  name: string;
  phone: string;
}

export interface LastMessage {
  id: string;
  direction: Direction;
  type: string;
  preview: string;
  at: string | null;
  status: MessageStatus | null;
}

export interface Composer {
  agent_id: string;
  name: string;
}

export interface Conversation {
  id: string;
  number_id: string;
  workspace_id: string;
  customer: CustomerSummary;
  last_message: LastMessage | null;
  unread_count: number;
  awaiting_reply: boolean;
  assignee: ActorRef | null;
  window: { open: boolean; expires_at: string | null };
  composing?: Composer[];
  updated_at: string | null;
  version?: number; // grows with every change: an older copy arriving late is ignored
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Media {
  id: string;
  mime_type: string | null;
  filename: string | null;
  caption: string | null;
  size: number;
  status?: string;
}

export interface Reaction {
  emoji: string;
  by: ActorRef | null;
  direction?: Direction | null;
}

export interface MessageError {
  code: number | null;
  title: string;
  detail: string;
}

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

export interface MessageItem {
  kind: "message";
  id: string;
  conversation_id?: string;
  wamid: string | null;
  direction: Direction;
  type: string;
  text: string | null;
  media: Media | null;
  template: { name: string; language: string; params: Record<string, unknown> } | null;
  location: Location | null;
  contacts: ContactCard[] | null;
  interactive: Record<string, unknown> | null;
  reaction: { message_id: string; emoji: string } | null;
  reply_to: string | null;
  reactions: Reaction[];
  status: MessageStatus | null;
  error: MessageError | null;
  sent_by: ActorRef | null;
  at: string | null;
  edited?: boolean;
  revoked?: boolean;
}

export interface NoteItem {
  kind: "note";
  id: string;
  conversation_id?: string;
  text: string;
  author: ActorRef | null;
  at: string | null;
}

export interface ActivityItem {
  kind: "activity";
  id: string;
  conversation_id?: string;
  action: string;
  actor: ActorRef | null;
  details: Record<string, unknown>;
  at: string | null;
}

export type TimelineItem = MessageItem | NoteItem | ActivityItem;

export interface TimelinePage {
  items: TimelineItem[];
  next_before: string | null;
}

export interface TemplateComponent {
  type: string;
  format?: string;
  text?: string;
  buttons?: { type: string; text?: string; url?: string; phone_number?: string }[];
  example?: Record<string, unknown>;
}

export interface Template {
  name: string;
  language: string;
  category: string;
  status: string;
  components: TemplateComponent[];
}

export interface LibraryItem {
  id: string;
  title: string;
  type: "text" | "image" | "video" | "audio" | "document";
  text?: string | null;
  media?: Media | null;
}

export interface Upload {
  upload_id: string;
  mime_type: string;
  size: number;
  filename?: string | null;
}

export interface Customer {
  id: string;
  wa_id: string;
  name: string;
  phone: string;
  tags: string[];
  attributes: Record<string, unknown>;
  first_seen_at: string | null;
  stats?: Stats;
}

export interface Stats {
  orders: number;
  delivered: number;
  returned: number;
  cancelled: number;
  revenue: Money;
}

export interface OrderLine {
  sku: string;
  name: string;
  quantity: number;
  unit_price: string;
  line_total?: string;
}

export interface Shipping {
  name?: string;
  phone?: string;
  line1?: string;
  line2?: string;
  city?: string;
  region?: string;
  postal_code?: string;
  country?: string;
  instructions?: string;
}

export interface Order {
  id: string;
  number: number;
  workspace_id: string;
  customer_id: string;
  conversation_id: string | null;
  items: OrderLine[];
  total: Money;
  shipping: Shipping | null;
  stage: Stage;
  stage_history: { stage: Stage; by: ActorRef | null; at: string | null }[];
  note?: string | null;
  created_by: ActorRef | null;
  created_at: string | null;
}

export interface Panel {
  customer: Customer;
  stats: Stats;
  orders: Order[];
  current_order: Order | null;
}

export interface TeamMember {
  id: string;
  name: string;
  online: boolean;
  role: Role;
}

// Members and invitations (docs/api.md "Members and invitations").
export interface Invitation {
  id: string;
  email: string;
  role: Role;
  workspace_id: string;
  expires_at: string;
  created_at: string;
}

/** The answer to an invitation: its token is in this answer only. */
export interface InvitationCreated {
  invitation: Invitation;
  token: string;
}

/** What the acceptance page shows to whoever holds the token. */
export interface InvitationPreview {
  workspace: { id: string; name: string };
  email: string;
  role: Role;
  account_exists: boolean;
  expires_at?: string;
}

export interface Accepted {
  agent: Agent;
  workspace: WorkspaceRef;
}

// Payloads of the stream's events (docs/api.md "Streamed updates").
export interface ComposingEvent {
  conversation_id: string;
  agent: ActorRef;
  composing: boolean;
  expires_at?: string | null;
}

export interface PresenceEvent {
  agent: ActorRef;
  online: boolean;
}

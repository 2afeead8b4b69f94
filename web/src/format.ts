// Small pure helpers: times, money, names, ordering.

import type { ActivityItem, Conversation, MessageStatus, Stage, TimelineItem } from "./types";

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const shortDayFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export const toDate = (iso: string | null | undefined): Date | null => {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
};


/** "14:05" today, "Yesterday", "Mon" within a week, else "3 Mar". */
export function listTime(iso: string | null | undefined, now = new Date()): string {
  const d = toDate(iso);
  if (!d) return "";
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86_400_000);
  if (days <= 0) return timeFmt.format(d);
  if (days === 1) return "Yesterday";
  if (days < 7) return new Intl.DateTimeFormat(undefined, { weekday: "short" }).format(d);
  return shortDayFmt.format(d);
}

export const clock = (iso: string | null | undefined): string => {
  const d = toDate(iso);
  return d ? timeFmt.format(d) : "";
};

export const fullTime = (iso: string | null | undefined): string => {
  const d = toDate(iso);
  return d ? fullFmt.format(d) : "";
};

/** The heading of a day in the timeline: Today, Yesterday, or the date. */
export function dayLabel(iso: string | null | undefined, now = new Date()): string {
  const d = toDate(iso);
  if (!d) return "";
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days < 7) return dayFmt.format(d);
  return dateFmt.format(d);
}

export const sameDay = (a: string | null | undefined, b: string | null | undefined): boolean => {
  const da = toDate(a);
  const db = toDate(b);
  return !!da && !!db && startOfDay(da) === startOfDay(db);
};

export function money(amount: string | number | undefined, currency: string | undefined): string {
  const value = typeof amount === "number" ? amount : Number(amount ?? 0);
  if (!currency) return value.toFixed(2);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency}`;
  }
}

export function fileSize(bytes: number | undefined | null): string {
  if (!bytes) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export const customerName = (c: Conversation["customer"]): string => c.name || formatPhone(c.phone || c.wa_id) || "Unknown";

export function formatPhone(phone: string | null | undefined): string {
  if (!phone) return "";
  return phone.startsWith("+") ? phone : /^\d+$/.test(phone) ? `+${phone}` : phone;
}

export function initials(name: string): string {
  const parts = name.replace(/[^\p{L}\p{N} ]/gu, " ").trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return "#";
  return (parts[0][0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

/** A stable pleasant hue per person, for avatars. */
export function hue(seed: string): number {
  let h = 0;
  for (let i = 0; i < seed.length; i++) h = (h * 31 + seed.charCodeAt(i)) >>> 0;
  return h % 360;
}

const STATUS_RANK: Record<MessageStatus, number> = { pending: 0, sent: 1, delivered: 2, read: 3, played: 4, failed: 5 };

/** Statuses only move forward (events may arrive out of order); failed is final. */
export function laterStatus(a: MessageStatus | null, b: MessageStatus | null): MessageStatus | null {
  if (!a) return b;
  if (!b) return a;
  if (a === "failed") return a;
  return STATUS_RANK[b] >= STATUS_RANK[a] ? b : a;
}

export const STATUS_LABEL: Record<MessageStatus, string> = {
  pending: "Sending",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  played: "Played",
  failed: "Failed",
};

export const STAGES: Stage[] = ["new", "confirmed", "shipped", "delivered", "cancelled", "returned"];

export const STAGE_LABEL: Record<Stage, string> = {
  new: "New",
  confirmed: "Confirmed",
  shipped: "Shipped",
  delivered: "Delivered",
  cancelled: "Cancelled",
  returned: "Returned",
};

/** The moves the pipeline allows from a stage (the server decides; this only orders the menu). */
export const NEXT_STAGES: Record<Stage, Stage[]> = {
  new: ["confirmed", "cancelled"],
  confirmed: ["shipped", "cancelled"],
  shipped: ["delivered", "returned", "cancelled"],
  delivered: ["returned"],
  cancelled: [],
  returned: [],
};

const when = (at: string | null) => toDate(at)?.getTime() ?? 0;

/** Timeline order, as the server keeps it: by seq (the order the inbox learned of the items; Meta's
 * timestamps have one-second resolution, so four messages of one second tie on `at`), and items from
 * before seqs (seq 0) first, by time then id. */
export function sortTimeline(items: TimelineItem[]): TimelineItem[] {
  return [...items].sort(
    (a, b) => a.seq - b.seq || when(a.at) - when(b.at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/** List order: newest activity first, id as the tie-breaker (as the server sorts). */
export function compareConversations(a: Conversation, b: Conversation): number {
  return when(b.updated_at) - when(a.updated_at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

const stageName = (value: unknown) => STAGE_LABEL[value as Stage] ?? String(value ?? "");

/** "Sara created order #1042", as a sentence. */
export function activityText(item: ActivityItem): string {
  const who = item.actor?.name ?? "Someone";
  const d = item.details ?? {};
  const order = d.order_number !== undefined ? `order #${d.order_number}` : "an order";
  const person = (value: unknown) => (value as { name?: string } | null)?.name;
  switch (item.action) {
    case "order_created":
      return `${who} created ${order}`;
    case "order_stage_changed":
      return d.from_stage
        ? `${who} moved ${order} from ${stageName(d.from_stage)} to ${stageName(d.to_stage ?? d.stage)}`
        : `${who} moved ${order} to ${stageName(d.to_stage ?? d.stage)}`;
    case "assigned": {
      const to = person(d.assignee);
      if (!item.actor && d.reason === "auto_assign") return `Assigned automatically to ${to ?? "an agent"}`;
      if (to && item.actor && to === item.actor.name) return `${who} took the conversation`;
      return `${who} assigned the conversation to ${to ?? "an agent"}`;
    }
    case "unassigned":
      return `${who} unassigned the conversation`;
    case "template_sent":
      return `${who} sent the template ${d.template ?? ""}`.trim();
    case "resolved":
      return `${who} resolved the conversation`;
    case "snoozed": {
      const until = typeof d.until === "string" ? snoozeText(d.until) : "";
      return `${who} snoozed the conversation${until ? ` until ${until}` : ""}`;
    }
    case "reopened":
      if (item.actor) return `${who} reopened the conversation`;
      if (d.reason === "customer_message") return "Reopened: the customer wrote";
      if (d.reason === "snooze_ended") return "Reopened: the snooze ended";
      return "The conversation was reopened";
    default:
      return `${who} ${item.action.replace(/[._]/g, " ")}`;
  }
}

export function previewOf(type: string, preview: string): string {
  if (preview) return preview;
  const labels: Record<string, string> = {
    image: "📷 Photo",
    video: "🎬 Video",
    audio: "🎤 Audio",
    document: "📄 Document",
    sticker: "Sticker",
    location: "📍 Location",
    contacts: "👤 Contact",
    template: "Template",
    reaction: "Reaction",
  };
  return labels[type] ?? type;
}

/** Whether a conversation copy is older than the one we have (copies can arrive out of order). */
export function isStale(incoming: Conversation, current: Conversation | null | undefined): boolean {
  return !!current && typeof incoming.version === "number" && typeof current.version === "number"
    && incoming.version < current.version;
}

// The API's minimum for a password (docs/api.md); the forms that set one check it, and the confirmation,
// before asking the server.
export const MIN_PASSWORD = 10;

export function newPasswordProblem(password: string, confirm: string): string | null {
  if (password.length < MIN_PASSWORD) return `The password needs at least ${MIN_PASSWORD} characters.`;
  if (password !== confirm) return "The two passwords are not the same.";
  return null;
}

/** "tomorrow 09:00", "Mon 09:00" or "12 Dec 09:00": when a snoozed conversation reopens. */
export function snoozeText(at: string, now = new Date()): string {
  const date = toDate(at);
  if (!date) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const days = Math.round((startOfDay(date) - startOfDay(now)) / 86_400_000);
  if (days === 0) return `today ${time}`;
  if (days === 1) return `tomorrow ${time}`;
  if (days > 1 && days < 7) return `${date.toLocaleDateString([], { weekday: "short" })} ${time}`;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

const startOfDay = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();

/** The snooze choices: in an hour, tomorrow at 9, next Monday at 9. */
export function snoozeChoices(now = new Date()): { label: string; until: Date }[] {
  const at9 = (days: number) => {
    const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() + days, 9, 0, 0, 0);
    return d;
  };
  const untilMonday = ((8 - now.getDay()) % 7) || 7;
  return [
    { label: "For an hour", until: new Date(now.getTime() + 3_600_000) },
    { label: "Until tomorrow, 9:00", until: at9(1) },
    { label: "Until Monday, 9:00", until: at9(untilMonday) },
  ];
}

/** "Omar is also viewing", "Omar and Lea are also viewing", "Omar, Lea and 2 others are also viewing". */
export function viewingText(names: string[]): string {
  if (names.length === 1) return `${names[0]} is also viewing`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are also viewing`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others are also viewing`;
}

/** "5 s ago", "3 min ago", "just now": how long since a colleague's reply. */
export function agoText(at: string | null, now = Date.now()): string {
  const then = toDate(at)?.getTime();
  if (then === undefined) return "just now";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 2) return "just now";
  if (s < 60) return `${s} s ago`;
  const min = Math.round(s / 60);
  return min < 60 ? `${min} min ago` : `${Math.round(min / 60)} h ago`;
}

/** The server counts a number's unread conversations up to this: that many means that many or more. */
export const UNREAD_COUNT_MAX = 1000;

/** A count of unread conversations as a badge says it: "999+" from the server's cap on. */
export function unreadText(count: number): string {
  return count >= UNREAD_COUNT_MAX ? `${UNREAD_COUNT_MAX - 1}+` : String(count);
}

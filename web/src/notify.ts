// While the tab is hidden, a new customer message in a conversation that is the agent's or nobody's
// raises a browser notification (the permission is asked once, on the agent's first click: browsers
// refuse to ask without a gesture); the tab's title carries the number of unread conversations.

import { customerName, previewOf, unreadText } from "./format";
import type { Conversation } from "./types";

const ASKED_KEY = "inbox.notifications.asked";
const BASE_TITLE = "Inbox";
// Last messages already seen by this tab (notified, or arrived while it was visible): a conversation.updated
// repeats its last message on every later change, which must not raise it again.
const seen = new Set<string>();
const SEEN_MAX = 500;

function remember(id: string): void {
  seen.add(id);
  if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value as string);
}

/** "(3) Inbox" while three conversations are unread, "Inbox" when none. */
export function showUnreadInTitle(unread: number): void {
  document.title = unread > 0 ? `(${unreadText(unread)}) ${BASE_TITLE}` : BASE_TITLE;
}

/** Asks for the permission on the first click of the page, once per browser. */
export function askForNotificationsOnFirstClick(): () => void {
  if (!("Notification" in window) || Notification.permission !== "default" || localStorage.getItem(ASKED_KEY)) {
    return () => undefined;
  }
  const ask = () => {
    localStorage.setItem(ASKED_KEY, "1");
    Notification.requestPermission().catch(() => undefined);
  };
  document.addEventListener("click", ask, { once: true });
  return () => document.removeEventListener("click", ask);
}

/** What a conversation.updated from the stream should raise, if anything. */
export function shouldNotify(c: Conversation, myId: string, hidden: boolean): boolean {
  const last = c.last_message;
  if (!last || seen.has(last.id)) return false;
  if (!hidden) {
    remember(last.id);
    return false;
  }
  if (last.direction !== "in" || c.unread_count <= 0 || c.status !== "open") return false;
  return !c.assignee || c.assignee.id === myId;
}

/** What the stream's `mention` says: a colleague's note mentions this agent. */
export interface MentionEvent {
  conversation_id: string;
  note: { id: string; text: string };
  by: { id: string; name: string } | null;
}

/** "Sara mentioned you: …" (the note's start), for the in-app notice and the browser notification. */
export function mentionText(m: MentionEvent): string {
  const text = m.note.text.length > 80 ? `${m.note.text.slice(0, 79)}…` : m.note.text;
  return `${m.by?.name ?? "A colleague"} mentioned you: ${text}`;
}

/** A browser notification of a mention (when the tab is hidden and it is allowed); a click opens it. */
export function notifyMention(m: MentionEvent, open: (id: string) => void): void {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const notice = new Notification("You were mentioned", { body: mentionText(m), tag: `mention-${m.note.id}` });
  notice.onclick = () => {
    window.focus();
    open(m.conversation_id);
    notice.close();
  };
}

/** Raises the notification of a conversation's new customer message; a click opens the conversation. */
export function notifyNewMessage(c: Conversation, open: (id: string) => void): void {
  const last = c.last_message;
  if (!last || !("Notification" in window) || Notification.permission !== "granted") return;
  remember(last.id);
  const notice = new Notification(customerName(c.customer), {
    body: previewOf(last.type, last.preview),
    tag: c.id, // one per conversation: a newer message replaces the older notice
  });
  notice.onclick = () => {
    window.focus();
    open(c.id);
    notice.close();
  };
}

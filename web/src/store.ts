// Shared state that several columns read: notices (errors shown to the agent), who is composing
// where, who is online, the team of each workspace. Plain observables with one hook.

import { useEffect, useState } from "preact/hooks";
import { api, describeError, errorMessage } from "./api";
import type { ComposingEvent, Composer, TeamMember } from "./types";

export class Observable<T> {
  private listeners = new Set<(value: T) => void>();
  constructor(private value: T) {}
  get(): T {
    return this.value;
  }
  set(value: T): void {
    this.value = value;
    for (const listener of this.listeners) listener(value);
  }
  update(fn: (value: T) => T): void {
    this.set(fn(this.value));
  }
  subscribe(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function useObservable<T>(observable: Observable<T>): T {
  const [value, setValue] = useState(observable.get());
  useEffect(() => {
    setValue(observable.get());
    return observable.subscribe(setValue);
  }, [observable]);
  return value;
}

// --- notices ------------------------------------------------------------------------------------

export interface Notice {
  id: number;
  kind: "error" | "info";
  text: string;
}

export const notices = new Observable<Notice[]>([]);
let noticeSeq = 0;

export function notify(text: string, kind: Notice["kind"] = "info", ttlMs = kind === "error" ? 12000 : 4000): void {
  const id = ++noticeSeq;
  // The same text twice in a row (e.g. a retry failing again) is shown once.
  notices.update((list) => [...list.filter((n) => n.text !== text), { id, kind, text }].slice(-4));
  window.setTimeout(() => dismiss(id), ttlMs);
}

export function showError(err: unknown, context?: string): void {
  const text = describeError(err);
  notify(context ? `${context}: ${text}` : text, "error");
}

/** showError, and the error's message given to `setMessage` too, for the place that failed to say it there. */
export function showErrorIn(setMessage: (message: string) => void, err: unknown, context: string): void {
  setMessage(errorMessage(err));
  showError(err, context);
}

export function dismiss(id: number): void {
  notices.update((list) => list.filter((n) => n.id !== id));
}

// --- colleagues composing -----------------------------------------------------------------------

interface ComposingEntry extends Composer {
  expires: number;
}

// How long a "typing" marker stays without a refresh when the event gives no expiry.
const COMPOSING_TTL_MS = 8000;

/** conversation id -> colleagues composing there (the signed-in agent left out). */
export const composing = new Observable<Record<string, ComposingEntry[]>>({});
let myId = "";
export const setMyId = (id: string) => {
  myId = id;
};

export function applyComposingEvent(event: ComposingEvent): void {
  if (!event?.conversation_id || !event.agent || event.agent.id === myId) return;
  const expires = event.expires_at ? Date.parse(event.expires_at) : Date.now() + COMPOSING_TTL_MS;
  composing.update((all) => {
    const others = (all[event.conversation_id] ?? []).filter((c) => c.agent_id !== event.agent.id);
    const next = event.composing
      ? [...others, { agent_id: event.agent.id, name: event.agent.name, expires: Math.max(expires, Date.now() + 2000) }]
      : others;
    return { ...all, [event.conversation_id]: next };
  });
}

/** The composing list a Conversation resource carries (a fresh read replaces what we had). */
export function setComposingFrom(conversationId: string, list: Composer[] | undefined): void {
  if (!list) return;
  const expires = Date.now() + COMPOSING_TTL_MS;
  composing.update((all) => ({
    ...all,
    [conversationId]: list.filter((c) => c.agent_id !== myId).map((c) => ({ ...c, expires })),
  }));
}

/** A colleague who sent drops the marker at once (their message is the proof). */
export function clearComposer(conversationId: string, agentId: string): void {
  const list = composing.get()[conversationId];
  if (list?.some((c) => c.agent_id === agentId)) {
    composing.update((all) => ({ ...all, [conversationId]: list.filter((c) => c.agent_id !== agentId) }));
  }
}

window.setInterval(() => {
  const now = Date.now();
  const all = composing.get();
  let changed = false;
  const next: Record<string, ComposingEntry[]> = {};
  for (const [id, list] of Object.entries(all)) {
    const kept = list.filter((c) => c.expires > now);
    if (kept.length !== list.length) changed = true;
    if (kept.length) next[id] = kept;
  }
  if (changed) composing.set(next);
}, 1000);

export function typingText(list: Composer[] | undefined): string {
  if (!list || !list.length) return "";
  const names = list.map((c) => c.name || "A colleague");
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} colleagues are typing…`;
}

// --- the team (per workspace) and who is online -------------------------------------------------

export const teams = new Observable<Record<string, TeamMember[]>>({});
const loadingTeams = new Set<string>();

export async function loadTeam(workspaceId: string, force = false): Promise<void> {
  if (!workspaceId || loadingTeams.has(workspaceId) || (!force && teams.get()[workspaceId])) return;
  loadingTeams.add(workspaceId);
  try {
    const { items } = await api.agents(workspaceId);
    teams.update((all) => ({ ...all, [workspaceId]: items }));
  } catch (err) {
    showError(err, "Could not load the team");
  } finally {
    loadingTeams.delete(workspaceId);
  }
}

export function applyPresence(agentId: string, online: boolean): void {
  teams.update((all) => {
    const next: Record<string, TeamMember[]> = {};
    for (const [ws, members] of Object.entries(all)) {
      next[ws] = members.map((m) => (m.id === agentId ? { ...m, online } : m));
    }
    return next;
  });
}

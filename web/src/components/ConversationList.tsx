// Left column: search, filters, the number selector and the live list (infinite scroll by cursor).

import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { compareConversations, customerName, formatPhone, isStale, listTime, previewOf, unreadText } from "../format";
import { composing, showError, showErrorIn, typingText, useObservable } from "../store";
import { stream } from "../stream";
import type { Conversation, Filter, Me, NumberInfo, StatusView } from "../types";
import { Avatar, StatusTicks } from "./bits";
import { TextInput, inputValue } from "./form/Field";

const FILTERS: { id: Filter; label: string; title: string }[] = [
  { id: "all", label: "All", title: "All conversations" },
  { id: "unread", label: "Unread", title: "Conversations with unread messages" },
  { id: "mine", label: "Mine", title: "Assigned to me" },
  { id: "no_reply", label: "No reply", title: "The customer is waiting for a reply" },
  { id: "mentions", label: "Mentions", title: "Notes mention me and I have not read them yet" },
];

const VIEWS: { id: StatusView; label: string; title: string }[] = [
  { id: "open", label: "Open", title: "Conversations the team is working on" },
  { id: "snoozed", label: "Snoozed", title: "Snoozed: they reopen on time, or when the customer writes" },
  { id: "resolved", label: "Resolved", title: "Resolved: they reopen when the customer writes" },
];

interface Props {
  me: Me;
  numbers: NumberInfo[];
  selectedId: string | null;
  onSelect: (id: string) => void;
}

interface Query {
  status: StatusView;
  filter: Filter;
  number: string | null;
  q: string;
}

function matches(c: Conversation, query: Query, myId: string): boolean {
  if (query.number && c.number_id !== query.number) return false;
  if (query.status !== "any" && c.status !== query.status) return false;
  if (query.filter === "unread" && !(c.unread_count > 0)) return false;
  if (query.filter === "mine" && c.assignee?.id !== myId) return false;
  if (query.filter === "no_reply" && !c.awaiting_reply) return false;
  if (query.filter === "mentions" && !((c.unseen_mentions ?? 0) > 0)) return false;
  const q = query.q.trim().toLowerCase();
  if (q) {
    const digits = q.replace(/[^\d]/g, "");
    const name = (c.customer.name || "").toLowerCase();
    const phone = `${c.customer.phone ?? ""} ${c.customer.wa_id ?? ""}`;
    if (!name.includes(q) && !(digits && digits.length === q.replace(/[\s+()-]/g, "").length && phone.includes(digits))) {
      return false;
    }
  }
  return true;
}

export function ConversationList({ me, numbers, selectedId, onSelect }: Props) {
  const [status, setStatus] = useState<StatusView>("open");
  const [filter, setFilter] = useState<Filter>("all");
  const [number, setNumber] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [q, setQ] = useState("");
  const [items, setItems] = useState<Conversation[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const typing = useObservable(composing);
  const listRef = useRef<HTMLUListElement>(null);
  const sentinelRef = useRef<HTMLDivElement>(null);
  const generation = useRef(0);
  const loadingMore = useRef(false);

  const query: Query = useMemo(() => ({ status, filter, number, q }), [status, filter, number, q]);
  const queryRef = useRef(query);
  queryRef.current = query;
  const cursorRef = useRef(cursor);
  cursorRef.current = cursor;
  const selectedRef = useRef(selectedId);
  selectedRef.current = selectedId;
  const itemsRef = useRef(items);
  itemsRef.current = items;

  // The search waits for a pause in typing.
  useEffect(() => {
    const timer = window.setTimeout(() => setQ(search.trim()), 250);
    return () => window.clearTimeout(timer);
  }, [search]);

  const loadFirst = useCallback(async () => {
    const gen = ++generation.current;
    setLoading(true);
    try {
      const page = await api.conversations({ ...queryRef.current, cursor: null });
      if (gen !== generation.current) return;
      // A row updated by the stream while the page was loading keeps the newer copy.
      setItems((current) => {
        const seen = new Map(current.map((c) => [c.id, c]));
        return page.items.map((c) => {
          const live = seen.get(c.id);
          return live && isStale(c, live) ? live : c;
        });
      });
      setCursor(page.next_cursor);
      setLoadError(null);
    } catch (err) {
      if (gen !== generation.current) return;
      showErrorIn(setLoadError, err, "Could not load the conversations");
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, []);

  const loadMore = useCallback(async () => {
    const from = cursorRef.current;
    if (!from || loadingMore.current) return;
    loadingMore.current = true;
    const gen = generation.current;
    try {
      const page = await api.conversations({ ...queryRef.current, cursor: from });
      if (gen !== generation.current) return;
      setItems((current) => {
        const known = new Set(current.map((c) => c.id));
        return [...current, ...page.items.filter((c) => !known.has(c.id))];
      });
      setCursor(page.next_cursor);
    } catch (err) {
      showError(err, "Could not load more conversations");
    } finally {
      loadingMore.current = false;
    }
  }, []);

  useEffect(() => {
    loadFirst();
  }, [query, loadFirst]);

  // Live: a conversation that changed moves to where it now sorts (the top when a message came),
  // enters the list when it now fits the filter, and leaves it when it no longer does.
  useEffect(() => {
    const offUpdated = stream.on("conversation.updated", (c: Conversation) => {
      if (!c?.id) return;
      setItems((current) => {
        const existing = current.find((x) => x.id === c.id);
        if (isStale(c, existing)) return current;
        // The stream's copy has no composing list: that comes as its own events.
        const merged: Conversation = { ...existing, ...c, composing: existing?.composing ?? c.composing };
        const rest = current.filter((x) => x.id !== c.id);
        if (!matches(merged, queryRef.current, me.agent.id) && c.id !== selectedRef.current) return rest;
        const last = rest[rest.length - 1];
        if (!existing && cursorRef.current && last && compareConversations(merged, last) > 0) {
          return current; // below the loaded page: it comes with the next page
        }
        return [...rest, merged].sort(compareConversations);
      });
    });
    // A note mentioning me: its conversation's @ badge counts it (the stream's conversation.updated says
    // nothing of mentions, each agent's own); a conversation not listed yet comes with a reload.
    const offMention = stream.on("mention", (m: { conversation_id?: string }) => {
      const id = m?.conversation_id;
      if (!id || id === selectedRef.current) return;
      if (!itemsRef.current.some((c) => c.id === id)) {
        if (queryRef.current.filter === "mentions") loadFirst();
        return;
      }
      setItems((current) =>
        current.map((c) => (c.id === id ? { ...c, unseen_mentions: (c.unseen_mentions ?? 0) + 1 } : c)),
      );
    });
    const offResync = stream.on("resync", () => loadFirst());
    return () => {
      offUpdated();
      offMention();
      offResync();
    };
  }, [loadFirst, me.agent.id]);

  // Infinite scroll: the sentinel at the end of the list asks for the next page.
  useEffect(() => {
    const sentinel = sentinelRef.current;
    if (!sentinel) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) loadMore();
    }, { root: listRef.current?.parentElement ?? null, rootMargin: "200px" });
    observer.observe(sentinel);
    return () => observer.disconnect();
  }, [loadMore, cursor]);

  const select = (id: string) => {
    // Opening marks it read (the conversation view tells the server); the badge goes at once.
    setItems((current) => current.map((c) => (c.id === id ? { ...c, unread_count: 0, unseen_mentions: 0 } : c)));
    onSelect(id);
  };

  // Up/down arrows move between conversations.
  const onListKey = (event: KeyboardEvent) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = Array.from(listRef.current?.querySelectorAll<HTMLButtonElement>("button.conv-row") ?? []);
    const index = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const next = buttons[index + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  };

  const numberById = useMemo(() => new Map(numbers.map((n) => [n.id, n])), [numbers]);
  const totalUnread = numbers.reduce((sum, n) => sum + (n.unread_conversations || 0), 0);

  return (
    <section class="column list-column" aria-label="Conversations">
      <div class="list-tools">
        {numbers.length > 1 && (
          <label class="number-select">
            <span class="visually-hidden">WhatsApp number</span>
            <select
              aria-label="WhatsApp number"
              value={number ?? ""}
              onChange={(e) => setNumber(inputValue(e) || null)}
            >
              <option value="">All numbers{totalUnread ? ` (${unreadText(totalUnread)} unread)` : ""}</option>
              {numbers.map((n) => (
                <option value={n.id} key={n.id}>
                  {n.name || formatPhone(n.display_phone_number)} · {formatPhone(n.display_phone_number)}
                  {n.unread_conversations ? ` (${unreadText(n.unread_conversations)} unread)` : ""}
                </option>
              ))}
            </select>
          </label>
        )}
        <div class="search">
          <svg aria-hidden="true" viewBox="0 0 20 20" width="16" height="16">
            <path d="M8.5 3a5.5 5.5 0 0 1 4.4 8.8l3.6 3.7-1 1-3.7-3.6A5.5 5.5 0 1 1 8.5 3Zm0 1.5a4 4 0 1 0 0 8 4 4 0 0 0 0-8Z" fill="currentColor" />
          </svg>
          <TextInput
            type="search"
            placeholder="Search name or number"
            aria-label="Search conversations by customer name or phone number"
            value={search}
            onValue={setSearch}
          />
        </div>
        <div class="views" role="tablist" aria-label="Conversations by status">
          {VIEWS.map((v) => (
            <button
              type="button"
              role="tab"
              key={v.id}
              class={`view-tab ${status === v.id ? "active" : ""}`}
              aria-selected={status === v.id}
              title={v.title}
              onClick={() => setStatus(v.id)}
            >
              {v.label}
            </button>
          ))}
        </div>
        <div class="filters" role="group" aria-label="Filter conversations">
          {FILTERS.map((f) => (
            <button
              type="button"
              key={f.id}
              class={`chip ${filter === f.id ? "active" : ""}`}
              aria-pressed={filter === f.id}
              title={f.title}
              onClick={() => setFilter(f.id)}
            >
              {f.label}
            </button>
          ))}
        </div>
      </div>
      <div class="list-scroll">
        {loadError && !items.length ? (
          <div class="empty">
            <p>The list could not be loaded.</p>
            <button type="button" class="btn" onClick={() => loadFirst()}>
              Try again
            </button>
          </div>
        ) : !items.length && !loading ? (
          <div class="empty">
            <p>
              {q
                ? `Nothing matches “${q}”.`
                : status === "resolved"
                  ? "No resolved conversations."
                  : status === "snoozed"
                    ? "Nothing snoozed."
                    : filter === "all"
                      ? "No open conversations."
                      : "Nothing here right now."}
            </p>
          </div>
        ) : null}
        <ul class="conv-list" ref={listRef} onKeyDown={onListKey} aria-busy={loading}>
          {items.map((c) => {
            const name = customerName(c.customer);
            const typingLine = typingText(typing[c.id]);
            const unread = c.id === selectedId ? 0 : c.unread_count;
            const mentions = c.id === selectedId ? 0 : (c.unseen_mentions ?? 0);
            const numberInfo = numbers.length > 1 ? numberById.get(c.number_id) : undefined;
            return (
              <li key={c.id}>
                <button
                  type="button"
                  class={`conv-row ${c.id === selectedId ? "selected" : ""} ${unread ? "unread" : ""}`}
                  data-conversation-id={c.id}
                  aria-current={c.id === selectedId ? "true" : undefined}
                  aria-label={`${name}${unread ? `, ${unread} unread` : ""}${mentions ? ", mentions you" : ""}${c.assignee ? `, assigned to ${c.assignee.name}` : ", unassigned"}`}
                  onClick={() => select(c.id)}
                >
                  <Avatar name={name} seed={c.customer.id || c.id} />
                  <span class="conv-main">
                    <span class="conv-top">
                      <span class="conv-name">{name}</span>
                      <span class="conv-time">{listTime(c.last_message?.at ?? c.updated_at)}</span>
                    </span>
                    <span class="conv-bottom">
                      {typingLine ? (
                        <span class="conv-typing" data-testid="row-typing">
                          {typingLine}
                        </span>
                      ) : (
                        <span class="conv-preview">
                          {c.last_message?.direction === "out" && <StatusTicks status={c.last_message.status} />}
                          {c.last_message ? previewOf(c.last_message.type, c.last_message.preview) : "No messages"}
                        </span>
                      )}
                      {mentions > 0 && (
                        <span class="badge mention-badge" data-testid="mention-badge" title={`${mentions} unread mention${mentions > 1 ? "s" : ""} of you`}>
                          @{mentions > 1 ? mentions : ""}
                        </span>
                      )}
                      {unread > 0 && (
                        <span class="badge" data-testid="unread-badge" aria-hidden="true">
                          {unread > 99 ? "99+" : unread}
                        </span>
                      )}
                    </span>
                    <span class="conv-meta">
                      <span class={`assignee ${c.assignee ? "" : "none"}`} data-testid="row-assignee">
                        {c.assignee ? (c.assignee.id === me.agent.id ? "You" : c.assignee.name) : "Unassigned"}
                      </span>
                      {numberInfo && <span class="conv-number">{numberInfo.name || formatPhone(numberInfo.display_phone_number)}</span>}
                      {!c.window.open && <span class="conv-closed" title="The 24-hour window is closed">Closed</span>}
                    </span>
                  </span>
                </button>
              </li>
            );
          })}
        </ul>
        <div ref={sentinelRef} class="list-end">
          {cursor ? (
            <button type="button" class="btn ghost small" onClick={() => loadMore()}>
              Load more
            </button>
          ) : null}
          {loading && <span class="muted">Loading…</span>}
        </div>
      </div>
    </section>
  );
}

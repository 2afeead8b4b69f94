// Center column: the conversation's header (assignee), its timeline (paging backwards) and the reply box.

import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import {
  customerName,
  formatPhone,
  isStale,
  laterStatus,
  snoozeChoices,
  snoozeText,
  sortTimeline,
  viewingText,
} from "../format";
import {
  clearComposer, composing, loadTeam, setComposingFrom, showError, showErrorIn, teams, typingText, useObservable,
} from "../store";
import { stream } from "../stream";
import type { Conversation, ConversationStatus, Me, Viewer, ViewingEvent, MessageItem, NumberInfo, TimelineItem } from "../types";
import { Avatar, Icon } from "./bits";
import { inputValue } from "./form/Field";
import { Composer } from "./Composer";
import { Timeline } from "./Timeline";

interface Props {
  me: Me;
  conversationId: string;
  numbers: NumberInfo[];
  onBack: () => void;
  onTogglePanel: () => void;
  panelOpen: boolean;
}

/** Adds or replaces items by id; a message's status never goes back (events arrive out of order). */
function mergeItems(current: TimelineItem[], incoming: TimelineItem[]): TimelineItem[] {
  const byId = new Map(current.map((i) => [i.id, i]));
  for (const item of incoming) {
    const existing = byId.get(item.id);
    if (existing?.kind === "message" && item.kind === "message") {
      // A stored attachment does not go back to "being fetched" either.
      const media = existing.media?.status === "stored" && item.media && item.media.status !== "stored"
        ? existing.media : item.media;
      byId.set(item.id, { ...existing, ...item, media, status: laterStatus(existing.status, item.status) });
    } else {
      byId.set(item.id, item);
    }
  }
  return sortTimeline([...byId.values()]);
}

const NEAR_BOTTOM_PX = 160;
// Presence ends a viewing 45 s after it was last said.
const VIEWING_REPEAT_MS = 20_000;
// A conversation closed is said to be left after this, unless another one opened meanwhile.
const LEAVE_GRACE_MS = 500;
let pendingLeave: number | undefined;

export function ConversationView({ me, conversationId, numbers, onBack, onTogglePanel, panelOpen }: Props) {
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [items, setItems] = useState<TimelineItem[]>([]);
  const [before, setBefore] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [olderLoading, setOlderLoading] = useState(false);
  const [replyTo, setReplyTo] = useState<MessageItem | null>(null);
  const [assigning, setAssigning] = useState(false);
  const [changingStatus, setChangingStatus] = useState(false);
  const [viewers, setViewers] = useState<Viewer[]>([]);
  const allTyping = useObservable(composing);
  const allTeams = useObservable(teams);
  const scrollRef = useRef<HTMLDivElement>(null);
  const topRef = useRef<HTMLDivElement>(null);
  // What the next render does to the scroll position: stick to the bottom, or keep the reader's
  // place while older items are put above.
  const scrollPlan = useRef<{ mode: "bottom" | "keep" | "auto"; fromBottom?: number }>({ mode: "bottom" });
  const idRef = useRef(conversationId);
  idRef.current = conversationId;
  const lastRead = useRef(0);

  const markRead = useCallback((force = false) => {
    const id = idRef.current;
    if (document.visibilityState !== "visible" && !force) return;
    const now = Date.now();
    if (!force && now - lastRead.current < 1500) return;
    lastRead.current = now;
    api.markRead(id).catch((err) => showError(err, "Could not mark the conversation as read"));
  }, []);

  const load = useCallback(async (initial: boolean) => {
    const id = idRef.current;
    if (initial) setLoading(true);
    try {
      const [conv, page] = await Promise.all([api.conversation(id), api.timeline(id)]);
      if (id !== idRef.current) return;
      setConversation(conv);
      setViewers(conv.viewing);
      setComposingFrom(conv.id, conv.composing);
      loadTeam(conv.workspace_id);
      if (initial) {
        scrollPlan.current = { mode: "bottom" };
        // Events that came while the page was loading are newer than it or equal: applied on top.
        setItems((arrived) => mergeItems(page.items, arrived));
        setBefore(page.next_before);
      } else {
        setItems((current) => mergeItems(current, page.items));
      }
      setLoadError(null);
      if (conv.unread_count > 0 || initial) markRead(initial);
    } catch (err) {
      if (id !== idRef.current) return;
      showErrorIn(setLoadError, err, "Could not open the conversation");
    } finally {
      if (id === idRef.current) setLoading(false);
    }
  }, [markRead]);

  useEffect(() => {
    setConversation(null);
    setViewers([]);
    setItems([]);
    setBefore(null);
    setReplyTo(null);
    setLoadError(null);
    load(true);
  }, [conversationId, load]);

  // Colleagues see who has the conversation open: said while it is open and the tab visible, repeated
  // before presence's expiry (45 s), and taken back on leaving or hiding the tab.
  useEffect(() => {
    const id = conversationId;
    const say = (viewing: boolean) => api.viewing(id, viewing).catch(() => undefined);
    const visible = () => document.visibilityState === "visible";
    // Moving to another conversation is not leaving: presence ends the old viewing when the new one starts,
    // and a "left" sent beside it could land after it and end the new one.
    window.clearTimeout(pendingLeave);
    if (visible()) say(true);
    const timer = window.setInterval(() => visible() && say(true), VIEWING_REPEAT_MS);
    const onVisibility = () => say(visible());
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      window.clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisibility);
      pendingLeave = window.setTimeout(() => say(false), LEAVE_GRACE_MS);
    };
  }, [conversationId]);

  // Live updates of this conversation.
  useEffect(() => {
    const isMine = (data: { conversation_id?: string }) => data?.conversation_id === idRef.current;
    const append = (item: TimelineItem | undefined) => {
      if (!item) return;
      const el = scrollRef.current;
      const atBottom = !el || el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX;
      scrollPlan.current = { mode: atBottom ? "bottom" : "auto" };
      setItems((current) => mergeItems(current, [item]));
    };
    const offs = [
      stream.on("conversation.updated", (c: Conversation) => {
        if (c?.id !== idRef.current) return;
        setConversation((current) => (isStale(c, current) ? current : { ...current, ...c, composing: current?.composing ?? [] }));
      }),
      stream.on("viewing", (e: ViewingEvent) => {
        if (!isMine(e) || !e.agent?.id || e.agent.id === me.agent.id) return;
        setViewers((current) => {
          const others = current.filter((v) => v.agent_id !== e.agent.id);
          return e.viewing ? [...others, { agent_id: e.agent.id, name: e.agent.name }] : others;
        });
      }),
      stream.on("message.created", (data: { conversation_id: string; message: MessageItem }) => {
        if (!isMine(data)) return;
        append({ ...data.message, kind: "message" });
        if (data.message.direction === "in") markRead();
        if (data.message.sent_by) clearComposer(data.conversation_id, data.message.sent_by.id);
      }),
      stream.on("message.updated", (data: { conversation_id: string; message: MessageItem }) => {
        if (!isMine(data)) return;
        scrollPlan.current = { mode: "auto" };
        setItems((current) => mergeItems(current, [{ ...data.message, kind: "message" }]));
      }),
      stream.on("note.created", (data: { conversation_id: string; note: TimelineItem }) => {
        if (isMine(data)) append({ ...data.note, kind: "note" } as TimelineItem);
      }),
      stream.on("activity.created", (data: { conversation_id: string; activity: TimelineItem }) => {
        if (isMine(data)) append({ ...data.activity, kind: "activity" } as TimelineItem);
      }),
      stream.on("resync", () => load(false)),
    ];
    const onVisible = () => {
      if (document.visibilityState === "visible") markRead();
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      offs.forEach((off) => off());
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [load, markRead]);

  const loadOlder = useCallback(async () => {
    if (!before || olderLoading) return;
    const id = idRef.current;
    setOlderLoading(true);
    try {
      const page = await api.timeline(id, before);
      if (id !== idRef.current) return;
      const el = scrollRef.current;
      scrollPlan.current = { mode: "keep", fromBottom: el ? el.scrollHeight - el.scrollTop : 0 };
      setItems((current) => mergeItems(current, page.items));
      setBefore(page.next_before);
    } catch (err) {
      showError(err, "Could not load earlier messages");
    } finally {
      setOlderLoading(false);
    }
  }, [before, olderLoading]);

  // Scrolling to the top loads earlier history.
  useEffect(() => {
    const top = topRef.current;
    if (!top || !before) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && scrollPlan.current.mode !== "bottom") loadOlder();
    }, { root: scrollRef.current, rootMargin: "120px" });
    observer.observe(top);
    return () => observer.disconnect();
  }, [before, loadOlder]);

  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const plan = scrollPlan.current;
    if (plan.mode === "bottom") el.scrollTop = el.scrollHeight;
    else if (plan.mode === "keep" && plan.fromBottom !== undefined) el.scrollTop = el.scrollHeight - plan.fromBottom;
    scrollPlan.current = { mode: "auto" };
  }, [items]);

  // Images load after the first layout; keep the view at the bottom while they do.
  const onMediaLoad = () => {
    const el = scrollRef.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX * 3) el.scrollTop = el.scrollHeight;
  };

  const onSent = (item: TimelineItem) => {
    scrollPlan.current = { mode: "bottom" };
    setItems((current) => mergeItems(current, [item]));
    setReplyTo(null);
  };

  const changeStatus = async (status: ConversationStatus, until?: Date) => {
    if (!conversation) return;
    setChangingStatus(true);
    try {
      const { conversation: updated } = await api.setStatus(conversation.id, status, until);
      setConversation((current) => ({ ...current, ...updated, composing: current?.composing ?? updated.composing }));
    } catch (err) {
      showError(err, "Could not change the conversation's status");
    } finally {
      setChangingStatus(false);
    }
  };

  const assign = async (agentId: string | null) => {
    if (!conversation) return;
    setAssigning(true);
    try {
      const { conversation: updated } = await api.assign(conversation.id, agentId);
      setConversation((current) => ({ ...current, ...updated, composing: current?.composing ?? updated.composing }));
    } catch (err) {
      showError(err, "Could not assign the conversation");
    } finally {
      setAssigning(false);
    }
  };

  if (!conversation) {
    return (
      <section class="column center-column" aria-label="Conversation" aria-busy={loading}>
        {loadError ? (
          <div class="empty">
            <p>The conversation could not be opened.</p>
            <button type="button" class="btn" onClick={() => load(true)}>
              Try again
            </button>
          </div>
        ) : (
          <div class="empty muted">Loading…</div>
        )}
      </section>
    );
  }

  const name = customerName(conversation.customer);
  const team = allTeams[conversation.workspace_id] ?? [];
  const typing = typingText(allTyping[conversation.id]);
  const number = numbers.find((n) => n.id === conversation.number_id);
  const assigneeId = conversation.assignee?.id ?? "";
  const assigneeKnown = !assigneeId || team.some((a) => a.id === assigneeId);

  return (
    <section class="column center-column" aria-label={`Conversation with ${name}`}>
      <header class="conv-header">
        <button type="button" class="icon-btn only-narrow" aria-label="Back to the list" onClick={onBack}>
          <Icon name="back" />
        </button>
        <Avatar name={name} seed={conversation.customer.id || conversation.id} size={38} />
        <div class="conv-title">
          <h1>{name}</h1>
          <p class="muted">
            {formatPhone(conversation.customer.phone || conversation.customer.wa_id)}
            {number && numbers.length > 1 ? ` · via ${number.name || formatPhone(number.display_phone_number)}` : ""}
            {conversation.window.open ? "" : " · window closed"}
            {conversation.status === "resolved" ? " · resolved" : ""}
            {conversation.status === "snoozed" && conversation.snoozed_until
              ? ` · snoozed until ${snoozeText(conversation.snoozed_until)}`
              : ""}
          </p>
          {viewers.length > 0 && (
            <p class="viewing" data-testid="viewing">
              {viewingText(viewers.map((v) => v.name))}
            </p>
          )}
        </div>
        <div class="conv-actions">
          {conversation.status === "open" ? (
            <>
              <button
                type="button"
                class="btn small"
                disabled={changingStatus}
                onClick={() => changeStatus("resolved")}
              >
                Resolve
              </button>
              <select
                class="snooze"
                aria-label="Snooze the conversation"
                value=""
                disabled={changingStatus}
                onChange={(e) => {
                  const choice = snoozeChoices()[Number(inputValue(e))];
                  if (choice) changeStatus("snoozed", choice.until);
                }}
              >
                <option value="" disabled>
                  Snooze…
                </option>
                {snoozeChoices().map((c, n) => (
                  <option value={String(n)} key={c.label}>
                    {c.label}
                  </option>
                ))}
              </select>
            </>
          ) : (
            <button type="button" class="btn small" disabled={changingStatus} onClick={() => changeStatus("open")}>
              Reopen
            </button>
          )}
          {conversation.assignee?.id !== me.agent.id && (
            <button type="button" class="btn ghost small" disabled={assigning} onClick={() => assign(me.agent.id)}>
              Assign to me
            </button>
          )}
          <label class="assign">
            <span class="muted">Assignee</span>
            <select
              aria-label="Assign the conversation"
              value={assigneeId}
              disabled={assigning}
              onFocus={() => loadTeam(conversation.workspace_id, true)}
              onChange={(e) => assign(inputValue(e) || null)}
            >
              <option value="">Unassigned</option>
              {!assigneeKnown && <option value={assigneeId}>{conversation.assignee?.name}</option>}
              {team.map((a) => (
                <option value={a.id} key={a.id}>
                  {a.id === me.agent.id ? `${a.name} (you)` : a.name}
                  {a.online ? " · online" : ""}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            class={`icon-btn panel-toggle ${panelOpen ? "active" : ""}`}
            aria-label={panelOpen ? "Hide the customer panel" : "Show the customer panel"}
            aria-expanded={panelOpen}
            onClick={onTogglePanel}
          >
            <Icon name="user" />
          </button>
        </div>
      </header>
      <div class="timeline-scroll" ref={scrollRef} onLoadCapture={onMediaLoad}>
        <div ref={topRef} class="timeline-top">
          {before ? (
            <button type="button" class="btn ghost small" disabled={olderLoading} onClick={() => loadOlder()}>
              {olderLoading ? "Loading…" : "Load earlier messages"}
            </button>
          ) : (
            !loading && <span class="muted">Start of the conversation</span>
          )}
        </div>
        <Timeline items={items} customerName={name} onReply={setReplyTo} />
      </div>
      <div class="typing-line" aria-live="polite" data-testid="typing">
        {typing}
      </div>
      <Composer
        me={me}
        conversation={conversation}
        replyTo={replyTo}
        onClearReply={() => setReplyTo(null)}
        onSent={onSent}
        lastSeq={items.reduce((newest, i) => Math.max(newest, i.seq), 0)}
      />
    </section>
  );
}

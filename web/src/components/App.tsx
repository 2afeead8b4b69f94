// The app: login, then the three columns. The open conversation is in the address (#/c/<id>), so a
// reload or the browser's back button keeps the agent where it was. #/invite/<token> is the acceptance page
// of an invitation, with or without a session.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, errorMessage, setAccessChangedHandler, setToken, setUnauthenticatedHandler } from "../api";
import { applyComposingEvent, applyPresence, dismiss, notices, notify, setMyId, showError, useObservable } from "../store";
import { type StreamState, stream } from "../stream";
import {
  type MentionEvent,
  askForNotificationsOnFirstClick,
  mentionText,
  notifyMention,
  notifyNewMessage,
  shouldNotify,
  showUnreadInTitle,
} from "../notify";
import type { ComposingEvent, Conversation, Me, NumberInfo, PresenceEvent } from "../types";
import { AcceptInvitation } from "./AcceptInvitation";
import { Icon, Logo } from "./bits";
import { ChangePassword } from "./ChangePassword";
import { ConversationList } from "./ConversationList";
import { ConversationView } from "./ConversationView";
import { CustomerPanel } from "./CustomerPanel";
import { Login } from "./Login";
import { RepliesDialog } from "./RepliesDialog";
import { TeamDialog } from "./TeamDialog";

const idFromHash = (): string | null => {
  const match = /^#\/c\/(.+)$/.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : null;
};

const inviteFromHash = (): string | null => {
  const match = /^#\/invite\/([^/?#]+)$/.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : null;
};

// The workspaces and roles of an agent, to tell whether /api/me changed.
const accessKey = (me: Me): string =>
  me.workspaces
    .map((w) => `${w.id}:${w.role}`)
    .sort()
    .join(",");

// How often the open page re-reads /api/me by itself: a removal by an admin is otherwise only learnt from
// the next 403/404 (the stream just stops carrying the workspace's events).
const ACCESS_CHECK_MS = 30_000;

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined); // undefined: still asking
  const [bootError, setBootError] = useState<string | null>(null);
  const [inviteToken, setInviteToken] = useState<string | null>(inviteFromHash());
  const meRef = useRef(me);
  meRef.current = me;

  const boot = useCallback(async (): Promise<Me | null> => {
    try {
      const found = await api.me();
      setMe(found);
      setBootError(null);
      return found;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setMe(null);
      else setBootError(errorMessage(err));
      return null;
    }
  }, []);

  // Re-reads /api/me (at most every 2 s) and follows a change of workspaces or roles, saying what changed.
  const lastCheck = useRef(0);
  const recheck = useCallback(async () => {
    const now = Date.now();
    if (!meRef.current || now - lastCheck.current < 2000) return;
    lastCheck.current = now;
    let next: Me;
    try {
      next = await api.me();
    } catch {
      return; // a 401 goes to the login by itself; anything else is retried at the next occasion
    }
    const before = meRef.current;
    if (!before || accessKey(before) === accessKey(next)) return;
    const lost = before.workspaces.filter((w) => !next.workspaces.some((n) => n.id === w.id));
    // The "not found" errors of the lost workspace's calls say nothing more than the notice below.
    if (lost.length) notices.update((list) => list.filter((n) => n.kind !== "error"));
    for (const w of lost) notify(`You are no longer a member of ${w.name}.`, "error", 30_000);
    for (const w of next.workspaces.filter((n) => !before.workspaces.some((b) => b.id === n.id))) {
      notify(`You were added to ${w.name}.`);
    }
    if (lost.length && idFromHash()) window.location.hash = ""; // the open conversation may be of it
    setMe(next);
  }, []);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setToken(null);
      stream.stop();
      setMe(null);
    });
    setAccessChangedHandler(() => {
      recheck();
    });
    // The gateway says at once when this agent's workspaces change (a removal by an admin).
    const offWorkspaces = stream.on("workspaces", () => {
      recheck();
    });
    const onHash = () => setInviteToken(inviteFromHash());
    const onFocus = () => {
      if (document.visibilityState === "visible") recheck();
    };
    window.addEventListener("hashchange", onHash);
    window.addEventListener("focus", onFocus);
    document.addEventListener("visibilitychange", onFocus);
    const timer = window.setInterval(recheck, ACCESS_CHECK_MS);
    boot();
    return () => {
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("focus", onFocus);
      document.removeEventListener("visibilitychange", onFocus);
      window.clearInterval(timer);
      offWorkspaces();
    };
  }, [boot, recheck]);

  const signOut = async () => {
    await api.logout();
    setToken(null);
    stream.stop();
    setMe(null);
  };

  if (bootError && me === undefined) {
    return (
      <main class="center-screen">
        <div class="login-card">
          <h1>Inbox</h1>
          <p class="form-error" role="alert">
            {bootError}
          </p>
          <button type="button" class="btn primary" onClick={boot}>
            Try again
          </button>
        </div>
        <Notices />
      </main>
    );
  }
  if (me === undefined) return <main class="center-screen muted">Loading…</main>;
  if (inviteToken) {
    return (
      <>
        <AcceptInvitation
          token={inviteToken}
          me={me}
          onSignedIn={async (token) => {
            setToken(token);
            return boot();
          }}
          onSignOut={signOut}
          onEnter={async (workspace) => {
            await boot();
            // The used token leaves the address and the history: going back would show a dead link.
            window.history.replaceState(null, "", window.location.pathname + window.location.search);
            setInviteToken(null);
            notify(`You joined ${workspace.name}.`);
          }}
        />
        <Notices />
      </>
    );
  }
  if (me === null) {
    return (
      <>
        <Login
          onLoggedIn={async (token) => {
            setToken(token);
            await boot();
          }}
        />
        <Notices />
      </>
    );
  }
  if (me.workspaces.length === 0) return <NoWorkspace me={me} onSignOut={signOut} />;
  // A new set of workspaces or roles starts the inbox afresh (list, stream, team).
  return <Inbox key={accessKey(me)} me={me} onLogout={() => setMe(null)} />;
}

function NoWorkspace({ me, onSignOut }: { me: Me; onSignOut: () => Promise<void> }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <main class="center-screen">
      <div class="login-card" role="region" aria-labelledby="no-workspace-title" data-testid="no-workspace">
        <h1 id="no-workspace-title">No workspace</h1>
        <p>
          {me.agent.email} is not a member of any workspace now. An admin of a workspace can invite you again.
        </p>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button
          type="button"
          class="btn primary wide"
          onClick={() => onSignOut().catch((err) => setError(errorMessage(err)))}
        >
          Sign out
        </button>
      </div>
      <Notices />
    </main>
  );
}

function Inbox({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const [selectedId, setSelectedId] = useState<string | null>(idFromHash());
  const [numbers, setNumbers] = useState<NumberInfo[]>([]);
  const [streamState, setStreamState] = useState<StreamState>(stream.state);
  const [panelOpen, setPanelOpen] = useState(() => window.matchMedia("(min-width: 1200px)").matches);
  const numbersTimer = useRef<number | undefined>(undefined);
  const [dialog, setDialog] = useState<"team" | "replies" | "password" | null>(null);
  const isAdmin = me.workspaces.some((w) => w.role === "admin");
  const unread = numbers.reduce((sum, n) => sum + (n.unread_conversations || 0), 0);
  useEffect(() => showUnreadInTitle(unread), [unread]);
  useEffect(() => () => showUnreadInTitle(0), []); // signed out: no count left in the title

  const loadNumbers = useCallback(async () => {
    try {
      setNumbers((await api.numbers()).items);
    } catch (err) {
      showError(err, "Could not load the WhatsApp numbers");
    }
  }, []);

  useEffect(() => {
    setMyId(me.agent.id);
    loadNumbers();
    stream.start();
    const offs = [
      stream.onState(setStreamState),
      stream.on("composing", (e: ComposingEvent) => applyComposingEvent(e)),
      stream.on("presence", (e: PresenceEvent) => e?.agent && applyPresence(e.agent.id, e.online)),
      // A customer's new message while the tab is hidden: a notification, when it is mine or nobody's.
      stream.on("conversation.updated", (c: Conversation) => {
        if (c?.id && shouldNotify(c, me.agent.id, document.visibilityState === "hidden")) {
          notifyNewMessage(c, (id) => {
            window.location.hash = `#/c/${encodeURIComponent(id)}`;
          });
        }
      }),
      // A colleague's note mentions me: a notice here, and a browser notification while the tab is hidden.
      stream.on("mention", (m: MentionEvent) => {
        if (!m?.conversation_id || !m.note) return;
        notify(mentionText(m), "info", 10_000);
        if (document.visibilityState === "hidden") {
          notifyMention(m, (id) => {
            window.location.hash = `#/c/${encodeURIComponent(id)}`;
          });
        }
      }),
      // Unread counts per number follow the conversations (at most one re-read a second).
      stream.on("conversation.updated", () => {
        if (numbersTimer.current) return;
        numbersTimer.current = window.setTimeout(() => {
          numbersTimer.current = undefined;
          loadNumbers();
        }, 1000);
      }),
      stream.on("resync", () => loadNumbers()),
      // The server refused the stream: if the session ended, api.me answers 401 and we go to login.
      stream.on("retrying", () => {
        api.me().catch(() => {});
      }),
    ];
    offs.push(askForNotificationsOnFirstClick());
    setStreamState(stream.state);
    // Crossing the wide-screen width opens the panel as a column, or closes the slide-over.
    const wide = window.matchMedia("(min-width: 1200px)");
    const onWidth = () => setPanelOpen(wide.matches);
    wide.addEventListener("change", onWidth);
    const onHash = () => setSelectedId(idFromHash());
    window.addEventListener("hashchange", onHash);
    return () => {
      offs.forEach((off) => off());
      window.removeEventListener("hashchange", onHash);
      wide.removeEventListener("change", onWidth);
      stream.stop();
    };
  }, [me, loadNumbers]);

  const select = (id: string) => {
    if (id !== selectedId) window.location.hash = `#/c/${encodeURIComponent(id)}`;
    setSelectedId(id);
  };

  const logout = async () => {
    try {
      await api.logout();
    } catch (err) {
      showError(err, "Logout failed");
      return;
    }
    setToken(null);
    stream.stop();
    window.location.hash = "";
    onLogout();
  };

  const workspace = me.workspaces[0];
  const currency = workspace?.currency || "EUR";

  return (
    <div class={`app ${selectedId ? "has-selection" : ""} ${selectedId && panelOpen ? "panel-open" : ""}`} data-stream={streamState}>
      <header class="topbar">
        <div class="brand">
          <Logo size={26} />
          <span>Inbox</span>
          {me.workspaces.length > 0 && (
            <span class="workspace" data-testid="workspaces" title={me.workspaces.map((w) => w.name).join(", ")}>
              {me.workspaces.map((w) => w.name).join(" · ")}
            </span>
          )}
        </div>
        <div class={`live live-${streamState}`} role="status" aria-live="polite" data-testid="stream-state">
          <span class="dot" aria-hidden="true" />
          {streamState === "open" ? "Live" : streamState === "connecting" ? "Connecting…" : "Reconnecting…"}
        </div>
        <div class="me">
          {isAdmin && (
            <button type="button" class="btn small ghost" onClick={() => setDialog("team")}>
              <Icon name="team" size={18} />
              Team
            </button>
          )}
          {isAdmin && (
            <button type="button" class="btn small ghost" onClick={() => setDialog("replies")}>
              <Icon name="library" size={18} />
              Replies
            </button>
          )}
          <span class="me-name">{me.agent.name}</span>
          <button
            type="button"
            class="icon-btn"
            aria-label="Change password"
            title="Change password"
            onClick={() => setDialog("password")}
          >
            <Icon name="key" />
          </button>
          <button type="button" class="icon-btn" aria-label="Log out" title="Log out" onClick={logout}>
            <Icon name="logout" />
          </button>
        </div>
      </header>
      <main class="columns">
        <ConversationList me={me} numbers={numbers} selectedId={selectedId} onSelect={select} />
        {selectedId ? (
          <ConversationView
            key={selectedId}
            me={me}
            conversationId={selectedId}
            numbers={numbers}
            panelOpen={panelOpen}
            onBack={() => {
              window.location.hash = "";
              setSelectedId(null);
            }}
            onTogglePanel={() => setPanelOpen(!panelOpen)}
          />
        ) : (
          <section class="column center-column" aria-label="Conversation">
            <div class="empty">
              <p class="big">Pick a conversation</p>
              <p class="muted">Messages from every connected number arrive on the left, newest first.</p>
            </div>
          </section>
        )}
        {selectedId && panelOpen && (
          <CustomerPanel conversationId={selectedId} currency={currency} onClose={() => setPanelOpen(false)} />
        )}
      </main>
      {dialog === "team" && <TeamDialog me={me} onClose={() => setDialog(null)} />}
      {dialog === "replies" && <RepliesDialog me={me} onClose={() => setDialog(null)} />}
      {dialog === "password" && <ChangePassword onClose={() => setDialog(null)} />}
      <Notices />
    </div>
  );
}

function Notices() {
  const list = useObservable(notices);
  return (
    <div class="notices" aria-live="assertive" aria-atomic="false">
      {list.map((n) => (
        <div class={`notice notice-${n.kind}`} role={n.kind === "error" ? "alert" : "status"} key={n.id} data-testid={`notice-${n.kind}`}>
          <span>{n.text}</span>
          <button type="button" class="icon-btn small" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
            <Icon name="close" size={16} />
          </button>
        </div>
      ))}
    </div>
  );
}

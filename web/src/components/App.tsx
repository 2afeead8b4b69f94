// The app: login, then the three columns. The open conversation is in the address (#/c/<id>), so a
// reload or the browser's back button keeps the agent where it was.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, setToken, setUnauthenticatedHandler } from "../api";
import { applyComposingEvent, applyPresence, dismiss, notices, setMyId, showError, useObservable } from "../store";
import { type StreamState, stream } from "../stream";
import type { ComposingEvent, Me, NumberInfo, PresenceEvent } from "../types";
import { Icon } from "./bits";
import { ConversationList } from "./ConversationList";
import { ConversationView } from "./ConversationView";
import { CustomerPanel } from "./CustomerPanel";
import { Login } from "./Login";

const idFromHash = (): string | null => {
  const match = /^#\/c\/(.+)$/.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : null;
};

export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined); // undefined: still asking
  const [bootError, setBootError] = useState<string | null>(null);

  const boot = useCallback(async () => {
    try {
      setMe(await api.me());
      setBootError(null);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setMe(null);
      else setBootError(err instanceof Error ? err.message : String(err));
    }
  }, []);

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      setToken(null);
      stream.stop();
      setMe(null);
    });
    boot();
  }, [boot]);

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
  return <Inbox me={me} onLogout={() => setMe(null)} />;
}

function Inbox({ me, onLogout }: { me: Me; onLogout: () => void }) {
  const [selectedId, setSelectedId] = useState<string | null>(idFromHash());
  const [numbers, setNumbers] = useState<NumberInfo[]>([]);
  const [streamState, setStreamState] = useState<StreamState>(stream.state);
  const [panelOpen, setPanelOpen] = useState(() => window.matchMedia("(min-width: 1200px)").matches);
  const numbersTimer = useRef<number | undefined>(undefined);

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
          <span class="logo" aria-hidden="true">
            <svg viewBox="0 0 32 32" width="26" height="26">
              <rect width="32" height="32" rx="8" fill="currentColor" />
              <path d="M8 10h16v10H14l-6 5z" fill="white" />
            </svg>
          </span>
          <span>Inbox</span>
          {me.workspaces.length === 1 && <span class="workspace">{workspace.name}</span>}
        </div>
        <div class={`live live-${streamState}`} role="status" aria-live="polite" data-testid="stream-state">
          <span class="dot" aria-hidden="true" />
          {streamState === "open" ? "Live" : streamState === "connecting" ? "Connecting…" : "Reconnecting…"}
        </div>
        <div class="me">
          <span class="me-name">{me.agent.name}</span>
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

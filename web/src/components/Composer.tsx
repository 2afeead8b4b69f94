// The reply box: text, notes, attachments, content library, canned replies ("/"), templates, and the
// closed-window banner.
// While the agent types, colleagues are told (POST /composing, throttled; false on send and blur).

import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { loadTeam, showError, showErrorIn, teams, useObservable } from "../store";
import type { CannedReply, Conversation, LibraryItem, Me, MessageItem, TeamMember, TimelineItem } from "../types";
import { type Attachment, AttachmentChip, kindOf } from "./Attachment";
import { Icon } from "./bits";
import { inputValue } from "./form/Field";
import { pickerKey } from "./InlinePicker";
import { LibraryMenu } from "./LibraryMenu";
import { type Conflict, ReplyConflict, conflictOf } from "./ReplyConflict";
import { MentionPicker, atQuery, matchingMembers, mentionedIn } from "./MentionPicker";
import { ReplyPicker, matchingReplies, slashQuery } from "./ReplyPicker";
import { TemplatePicker } from "./TemplatePicker";

const COMPOSING_REFRESH_MS = 3000;

interface Props {
  me: Me;
  conversation: Conversation;
  replyTo: MessageItem | null;
  onClearReply: () => void;
  onSent: (item: TimelineItem) => void;
  /** The newest seq of the timeline shown: a colleague's reply after it makes a send ask first. */
  lastSeq: number;
}

export function Composer({ me, conversation, replyTo, onClearReply, onSent, lastSeq }: Props) {
  const [mode, setMode] = useState<"reply" | "note">("reply");
  const [text, setText] = useState("");
  const [attachment, setAttachment] = useState<Attachment | null>(null);
  const [uploading, setUploading] = useState(false);
  const [sending, setSending] = useState(false);
  const [templatesOpen, setTemplatesOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  // The "/" picker: the workspace's canned replies (loaded on the first "/"), what is typed after the "/"
  // and where it starts, and the highlighted row.
  const [replies, setReplies] = useState<CannedReply[] | null>(null);
  const [slash, setSlash] = useState<{ start: number; query: string } | null>(null);
  const [activeReply, setActiveReply] = useState(0);
  // The note's "@" picker: what is typed after the "@", and the agents picked so far (id -> name).
  const [at, setAt] = useState<{ start: number; query: string } | null>(null);
  const [picked, setPicked] = useState<Map<string, string>>(new Map());
  const team = useObservable(teams)[conversation.workspace_id];
  const textRef = useRef<HTMLTextAreaElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const composingSince = useRef(0); // when we last told the server "composing"; 0 = not composing
  const conversationId = conversation.id;
  const windowOpen = conversation.window.open;
  const freeFormBlocked = mode === "reply" && !windowOpen;

  const stopComposing = (id = conversationId) => {
    if (!composingSince.current) return;
    composingSince.current = 0;
    api.composing(id, false).catch(() => {
      /* it expires on its own after a few seconds */
    });
  };

  const pingComposing = () => {
    if (mode !== "reply") return;
    const now = Date.now();
    if (now - composingSince.current < COMPOSING_REFRESH_MS) return;
    composingSince.current = now;
    api.composing(conversationId, true).catch((err) => {
      composingSince.current = 0;
      showError(err, "Could not tell colleagues you are typing");
    });
  };

  // Another conversation: drop the draft state and stop "composing" in the old one.
  useEffect(() => {
    setText("");
    setAttachment(null);
    setError(null);
    setMode("reply");
    setSlash(null);
    setAt(null);
    setPicked(new Map());
    return () => stopComposing(conversationId);
  }, [conversationId]);

  useEffect(() => {
    if (replyTo) textRef.current?.focus();
  }, [replyTo]);

  const onInput = (value: string, caret?: number) => {
    setText(value);
    setError(null);
    if (value.trim()) pingComposing();
    else stopComposing();
    const typed = mode === "reply" && caret !== undefined ? slashQuery(value, caret) : null;
    setSlash(typed);
    setActiveReply(0);
    if (typed && replies === null) loadReplies();
    const mentioning = mode === "note" && caret !== undefined ? atQuery(value, caret) : null;
    setAt(mentioning);
    if (mentioning) loadTeam(conversation.workspace_id);
  };

  const memberMatches = at && team ? matchingMembers(team, at.query, me.agent.id) : [];

  const insertMention = (member: TeamMember) => {
    const where = at;
    setAt(null);
    if (!where) return;
    const el = textRef.current;
    const inserted = `@${member.name} `;
    setPicked((current) => new Map(current).set(member.id, member.name));
    setText((current) => {
      const end = where.start + 1 + where.query.length;
      const next = current.slice(0, where.start) + inserted + current.slice(end);
      requestAnimationFrame(() => {
        el?.focus();
        el?.setSelectionRange(where.start + inserted.length, where.start + inserted.length);
      });
      return next;
    });
  };

  const loadReplies = async () => {
    setReplies([]); // asked once; a failure leaves the picker empty rather than asking on every key
    try {
      setReplies((await api.replies(conversation.workspace_id)).items);
    } catch (err) {
      showError(err, "Could not load the canned replies");
    }
  };

  const replyMatches = slash && replies ? matchingReplies(replies, slash.query) : [];

  const insertReply = async (reply: CannedReply) => {
    const at = slash;
    setSlash(null);
    if (!at) return;
    let rendered: string;
    try {
      rendered = (await api.renderReply(conversationId, reply.id)).text;
    } catch (err) {
      showErrorIn(setError, err, `Could not insert /${reply.shortcut}`);
      return;
    }
    const el = textRef.current;
    setText((current) => {
      // The "/query" typed is replaced; if the box changed meanwhile, the reply goes where the caret is.
      const typed = `/${at.query}`;
      const start = current.slice(at.start, at.start + typed.length) === typed ? at.start : (el?.selectionStart ?? current.length);
      const end = start === at.start ? at.start + typed.length : start;
      const next = current.slice(0, start) + rendered + current.slice(end);
      requestAnimationFrame(() => {
        el?.focus();
        el?.setSelectionRange(start + rendered.length, start + rendered.length);
      });
      return next;
    });
    pingComposing();
  };

  const send = async (force = false) => {
    if (sending || uploading) return;
    const body = text.trim();
    if (mode === "note") {
      if (!body) return;
    } else if (!body && !attachment) {
      return;
    }
    if (freeFormBlocked) {
      setError("This conversation is closed. Use a template to re-engage.");
      return;
    }
    setSending(true);
    setError(null);
    setConflict(null);
    stopComposing();
    const guard = { after_seq: lastSeq, ...(force ? { force: true } : {}) };
    // The box empties at once, so the agent can go on writing while this is sent; on a failure what
    // was sent comes back (unless something new has been written meanwhile).
    const sentAttachment = mode === "reply" ? attachment : null;
    const sentMode = mode;
    setText("");
    if (sentAttachment) setAttachment(null);
    try {
      if (sentMode === "note") {
        const { note } = await api.addNote(conversationId, body, mentionedIn(body, picked));
        setPicked(new Map());
        onSent({ ...note, kind: "note" });
      } else if (sentAttachment) {
        const payload: Parameters<typeof api.sendMedia>[1] = { type: sentAttachment.kind };
        if (sentAttachment.source === "upload") payload.upload_id = sentAttachment.upload.upload_id;
        else payload.library_item_id = sentAttachment.item.id;
        if (body && sentAttachment.kind !== "audio") payload.caption = body;
        if (sentAttachment.kind === "document") payload.filename = sentAttachment.name;
        const { message } = await api.sendMedia(conversationId, payload, guard);
        onSent({ ...message, kind: "message" });
      } else {
        const { message } = await api.sendText(conversationId, body, replyTo?.id, guard);
        onSent({ ...message, kind: "message" });
      }
      onClearReply();
    } catch (err) {
      setText((current) => (current.trim() ? current : body));
      if (sentAttachment) setAttachment((current) => current ?? sentAttachment);
      const refused = conflictOf(err);
      if (refused) {
        setConflict(refused);
      } else {
        showErrorIn(setError, err, sentMode === "note" ? "The note was not saved" : "The message was not sent");
      }
    } finally {
      setSending(false);
      textRef.current?.focus();
    }
  };

  const onKeyDown = (event: KeyboardEvent) => {
    if (at && pickerKey(event, memberMatches, activeReply, setActiveReply, insertMention, () => setAt(null))) return;
    if (slash && pickerKey(event, replyMatches, activeReply, setActiveReply, insertReply, () => setSlash(null))) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  };

  const onFile = async (file: File | undefined) => {
    if (!file) return;
    setUploading(true);
    setError(null);
    try {
      const upload = await api.upload(file);
      setAttachment({ source: "upload", upload, name: file.name, kind: kindOf(upload.mime_type || file.type) });
      textRef.current?.focus();
    } catch (err) {
      showErrorIn(setError, err, `Could not upload ${file.name}`);
    } finally {
      setUploading(false);
      if (fileRef.current) fileRef.current.value = "";
    }
  };

  const insertFromLibrary = (item: LibraryItem) => {
    if (item.type === "text") {
      const el = textRef.current;
      const snippet = item.text ?? "";
      const start = el?.selectionStart ?? text.length;
      const end = el?.selectionEnd ?? text.length;
      const next = text.slice(0, start) + snippet + text.slice(end);
      onInput(next);
      requestAnimationFrame(() => {
        el?.focus();
        el?.setSelectionRange(start + snippet.length, start + snippet.length);
      });
    } else {
      setAttachment({ source: "library", item, name: item.media?.filename || item.title, kind: item.type });
      textRef.current?.focus();
    }
  };

  const placeholder = mode === "note"
    ? "Write a note for your team (the customer never sees it; @ mentions a colleague)"
    : windowOpen
      ? "Type a reply… (Enter sends, Shift+Enter for a new line, / for canned replies)"
      : "Free-form replies are disabled: the 24-hour window is closed";

  return (
    <div class={`composer ${mode === "note" ? "composer-note" : ""}`}>
      {!windowOpen && (
        <div class="closed-banner" role="status" data-testid="closed-banner">
          <span>This conversation is closed. Use a template to re-engage.</span>
          <button type="button" class="btn small" onClick={() => setTemplatesOpen(true)}>
            Choose a template
          </button>
        </div>
      )}
      <div class="composer-tabs" role="group" aria-label="Reply or note">
        <button type="button" class={`tab ${mode === "reply" ? "active" : ""}`} aria-pressed={mode === "reply"} onClick={() => setMode("reply")}>
          Reply
        </button>
        <button
          type="button"
          class={`tab ${mode === "note" ? "active" : ""}`}
          aria-pressed={mode === "note"}
          onClick={() => {
            stopComposing();
            setMode("note");
          }}
        >
          Note
        </button>
      </div>
      {replyTo && mode === "reply" && (
        <div class="replying">
          <span>
            Replying to: <em>{replyTo.text || replyTo.media?.caption || replyTo.type}</em>
          </span>
          <button type="button" class="icon-btn small" aria-label="Cancel the reply" onClick={onClearReply}>
            <Icon name="close" size={16} />
          </button>
        </div>
      )}
      {attachment && mode === "reply" && <AttachmentChip attachment={attachment} onRemove={() => setAttachment(null)} />}
      <div class="composer-row">
        <div class="composer-tools">
          <button
            type="button"
            class="icon-btn"
            aria-label="Attach a file"
            title="Attach a file"
            disabled={freeFormBlocked || mode === "note" || uploading}
            onClick={() => fileRef.current?.click()}
          >
            <Icon name="attach" />
          </button>
          <input
            ref={fileRef}
            type="file"
            class="visually-hidden"
            aria-label="File to attach"
            tabIndex={-1}
            onChange={(e) => onFile((e.target as HTMLInputElement).files?.[0])}
          />
          <LibraryMenu
            key={conversationId}
            workspaceId={conversation.workspace_id}
            snippetsOnly={mode === "note"}
            disabled={freeFormBlocked}
            onPick={insertFromLibrary}
          />
          <button
            type="button"
            class="icon-btn"
            aria-label="Send a template"
            title="Templates"
            disabled={mode === "note"}
            onClick={() => setTemplatesOpen(true)}
          >
            <Icon name="template" />
          </button>
        </div>
        <label class="visually-hidden" for="composer-text">
          {mode === "note" ? "Internal note" : "Reply to the customer"}
        </label>
        <textarea
          id="composer-text"
          ref={textRef}
          rows={2}
          value={text}
          placeholder={placeholder}
          disabled={freeFormBlocked}
          aria-label={mode === "note" ? "Internal note" : "Reply to the customer"}
          onInput={(e) => onInput(inputValue(e), (e.target as HTMLTextAreaElement).selectionStart)}
          onKeyDown={onKeyDown}
          onBlur={() => {
            stopComposing();
            setSlash(null);
            setAt(null);
          }}
          aria-autocomplete="list"
        />
        {at && (
          <MentionPicker
            team={team}
            matches={memberMatches}
            active={Math.min(activeReply, Math.max(memberMatches.length - 1, 0))}
            onPick={insertMention}
            onHover={setActiveReply}
          />
        )}
        {slash && (
          <ReplyPicker
            replies={replies}
            matches={replyMatches}
            active={Math.min(activeReply, Math.max(replyMatches.length - 1, 0))}
            onPick={insertReply}
            onHover={setActiveReply}
          />
        )}
        <button
          type="button"
          class="btn primary send"
          aria-label={mode === "note" ? "Add the note" : "Send"}
          disabled={sending || uploading || freeFormBlocked || (!text.trim() && !(attachment && mode === "reply"))}
          onClick={() => send()}
        >
          {uploading ? "Uploading…" : sending ? "Sending…" : mode === "note" ? "Add note" : "Send"}
        </button>
      </div>
      {conflict && <ReplyConflict conflict={conflict} onSendAnyway={() => send(true)} onCancel={() => setConflict(null)} />}
      {error && (
        <p class="composer-error" role="alert">
          {error}
        </p>
      )}
      {templatesOpen && (
        <TemplatePicker
          conversation={conversation}
          lastSeq={lastSeq}
          onClose={() => setTemplatesOpen(false)}
          onSent={(message) => {
            setTemplatesOpen(false);
            onSent({ ...message, kind: "message" });
          }}
        />
      )}
    </div>
  );
}

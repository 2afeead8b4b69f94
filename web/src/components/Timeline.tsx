// The conversation's history: customer and agent bubbles, notes, activity lines, day separators.

import { Fragment } from "preact";
import { mediaUrl } from "../api";
import { activityText, clock, dayLabel, fileSize, formatPhone, fullTime, previewOf, sameDay } from "../format";
import type { ActivityItem, ContactCard, MessageItem, NoteItem, TimelineItem } from "../types";
import { Icon, StatusTicks } from "./bits";

interface Props {
  items: TimelineItem[];
  customerName: string;
  onReply: (message: MessageItem) => void;
}

export function Timeline({ items, customerName, onReply }: Props) {
  const byId = new Map<string, TimelineItem>();
  for (const item of items) byId.set(item.id, item);
  // A reaction arrives as its own message in some paths; shown on the message it reacts to instead
  // when that message is loaded and already carries it.
  return (
    <ol class="timeline" aria-label="Conversation history">
      {items.map((item, index) => {
        const previous = items[index - 1];
        const separator = !previous || !sameDay(previous.at, item.at);
        return (
          <Fragment key={item.id}>
            {separator && item.at && (
              <li class="day-sep" aria-hidden="false">
                <span>{dayLabel(item.at)}</span>
              </li>
            )}
            {item.kind === "message" ? (
              <Bubble message={item} byId={byId} customerName={customerName} onReply={onReply} />
            ) : item.kind === "note" ? (
              <Note note={item} />
            ) : (
              <Activity activity={item} />
            )}
          </Fragment>
        );
      })}
    </ol>
  );
}

function Activity({ activity }: { activity: ActivityItem }) {
  return (
    <li class="activity" data-testid="activity" data-action={activity.action}>
      <span>
        {activityText(activity)}
        <time dateTime={activity.at ?? undefined} title={fullTime(activity.at)}>
          {clock(activity.at)}
        </time>
      </span>
    </li>
  );
}

/** The note's text with each "@Name" of an agent it mentions marked (the rest as written). */
function withMentions(text: string, mentions: NoteItem["mentions"]) {
  const names = (mentions ?? []).map((m) => `@${m.name}`).filter((n) => n.length > 1);
  if (!names.length) return text;
  const escaped = names.sort((a, b) => b.length - a.length).map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return text.split(new RegExp(`(${escaped.join("|")})`)).map((part, i) =>
    names.includes(part) ? (
      <mark class="mention" key={i} data-testid="mention">
        {part}
      </mark>
    ) : (
      part
    ),
  );
}

function Note({ note }: { note: NoteItem }) {
  return (
    <li class="row out">
      <article class="note" data-testid="note" aria-label={`Team note by ${note.author?.name ?? "a colleague"}`}>
        <header>
          <Icon name="note" size={14} /> Note · only your team sees this
        </header>
        <p class="text">{withMentions(note.text, note.mentions)}</p>
        <footer>
          <span>{note.author?.name}</span>
          <time dateTime={note.at ?? undefined} title={fullTime(note.at)}>
            {clock(note.at)}
          </time>
        </footer>
      </article>
    </li>
  );
}

function quoteText(item: TimelineItem | undefined): string {
  if (!item) return "An earlier message";
  if (item.kind === "message") return item.text || item.media?.caption || previewOf(item.type, "");
  if (item.kind === "note") return item.text;
  return activityText(item);
}

function Bubble({
  message,
  byId,
  customerName,
  onReply,
}: {
  message: MessageItem;
  byId: Map<string, TimelineItem>;
  customerName: string;
  onReply: (message: MessageItem) => void;
}) {
  const out = message.direction === "out";
  const quoted = message.reply_to ? byId.get(message.reply_to) : undefined;
  const who = out ? message.sent_by?.name ?? "Business" : customerName;
  if (message.type === "reaction" && message.reaction) {
    return (
      <li class={`row ${out ? "out" : "in"}`}>
        <p class="reaction-line" data-testid="reaction-message">
          {who} reacted {message.reaction.emoji || "(removed)"} to “{quoteText(byId.get(message.reaction.message_id))}”
        </p>
      </li>
    );
  }
  return (
    <li class={`row ${out ? "out" : "in"}`}>
      <article
        class={`bubble ${out ? "bubble-out" : "bubble-in"} ${message.status === "failed" ? "bubble-failed" : ""}`}
        data-testid="message"
        data-message-id={message.id}
        data-direction={message.direction}
        data-type={message.type}
        id={`msg-${message.id}`}
        aria-label={`${out ? "Sent" : "Received"} message from ${who}`}
      >
        {out && <div class="sender">{who}</div>}
        {message.reply_to && (
          <button
            type="button"
            class="quote"
            aria-label="Show the message this replies to"
            onClick={() => document.getElementById(`msg-${message.reply_to}`)?.scrollIntoView({ block: "center", behavior: "smooth" })}
          >
            <strong>
              {quoted?.kind === "message" ? (quoted.direction === "out" ? quoted.sent_by?.name ?? "You" : customerName) : "Reply to"}
            </strong>
            <span>{quoteText(quoted)}</span>
          </button>
        )}
        {message.template && (
          <div class="template-tag">
            <Icon name="template" size={14} /> Template · {message.template.name}
          </div>
        )}
        <Content message={message} />
        {message.status === "failed" && message.error && (
          <p class="failure" role="note">
            Not delivered: {message.error.title}
            {message.error.code ? ` (${message.error.code})` : ""}
            {message.error.detail ? ` — ${message.error.detail}` : ""}
          </p>
        )}
        <footer class="bubble-foot">
          {message.edited && <span class="muted">edited</span>}
          <time dateTime={message.at ?? undefined} title={fullTime(message.at)}>
            {clock(message.at)}
          </time>
          {out && <StatusTicks status={message.status} error={message.error} />}
        </footer>
        {message.reactions?.length > 0 && (
          <ul class="reactions" aria-label="Reactions">
            {message.reactions.map((r, i) => (
              <li key={i} title={r.by?.name ?? (r.direction === "in" ? customerName : "")}>
                {r.emoji}
              </li>
            ))}
          </ul>
        )}
        {!message.revoked && (
          <button type="button" class="reply-btn" aria-label="Reply to this message" title="Reply" onClick={() => onReply(message)}>
            <Icon name="reply" size={16} />
          </button>
        )}
      </article>
    </li>
  );
}

function Content({ message }: { message: MessageItem }) {
  if (message.revoked) return <p class="text muted">This message was deleted.</p>;
  const media = message.media;
  const text = message.text;
  const caption = media?.caption && media.caption !== text ? media.caption : null;
  const parts = [];
  if (media) {
    const available = !media.status || media.status === "stored";
    const src = mediaUrl(media.id);
    const mime = media.mime_type ?? "";
    if (!available) {
      parts.push(
        <p class="media-missing" key="m">
          {media.status === "pending" ? "The attachment is being fetched…" : "The attachment is not available."}
        </p>,
      );
    } else if (message.type === "image" || message.type === "sticker" || (!message.type && mime.startsWith("image/"))) {
      parts.push(
        <a class="media-link" href={src} target="_blank" rel="noopener" key="m" aria-label="Open the image in full size">
          <img class={message.type === "sticker" ? "sticker" : "media-img"} src={src} alt={media.caption || "Image"} loading="lazy" />
        </a>,
      );
    } else if (message.type === "video" || mime.startsWith("video/")) {
      parts.push(<video class="media-video" src={src} controls preload="metadata" key="m" aria-label="Video" />);
    } else if (message.type === "audio" || mime.startsWith("audio/")) {
      parts.push(<audio class="media-audio" src={src} controls preload="none" key="m" aria-label="Audio message" />);
    } else {
      const name = media.filename || "Document";
      parts.push(
        <a class="doc" href={src} download={name} key="m" aria-label={`Download ${name}`}>
          <span class="doc-icon" aria-hidden="true">
            {(name.split(".").pop() || "FILE").slice(0, 4).toUpperCase()}
          </span>
          <span class="doc-name">
            <strong>{name}</strong>
            <small>{[mime, fileSize(media.size)].filter(Boolean).join(" · ")}</small>
          </span>
          <Icon name="download" size={18} />
        </a>,
      );
    }
  }
  if (message.location) parts.push(<LocationCard key="l" location={message.location} />);
  if (message.contacts?.length) {
    parts.push(
      <div key="c" class="contacts">
        {message.contacts.map((c, i) => (
          <ContactCardView key={i} contact={c} />
        ))}
      </div>,
    );
  }
  const interactiveText = !text && message.interactive ? interactiveTitle(message.interactive) : null;
  const shown = text || caption || interactiveText;
  if (shown) parts.push(<p class="text" key="t">{shown}</p>);
  if (text && caption) parts.push(<p class="text" key="cap">{caption}</p>);
  if (!parts.length) parts.push(<p class="text muted" key="x">{previewOf(message.type, "")}</p>);
  return <>{parts}</>;
}

function interactiveTitle(interactive: Record<string, unknown>): string | null {
  for (const key of ["button_reply", "list_reply"]) {
    const part = interactive[key] as { title?: string; description?: string } | undefined;
    if (part?.title) return part.description ? `${part.title} — ${part.description}` : part.title;
  }
  const nfm = interactive.nfm_reply as { body?: string; name?: string } | undefined;
  if (nfm) return nfm.body || nfm.name || "Form reply";
  const body = (interactive.body as { text?: string } | undefined)?.text;
  return body ?? null;
}

function LocationCard({ location }: { location: NonNullable<MessageItem["location"]> }) {
  const { latitude, longitude, name, address } = location;
  const hasPoint = typeof latitude === "number" && typeof longitude === "number";
  return (
    <div class="location" data-testid="location">
      <Icon name="map" size={22} />
      <div>
        {name && <strong>{name}</strong>}
        {address && <span>{address}</span>}
        {hasPoint && (
          <span class="muted">
            {latitude!.toFixed(5)}, {longitude!.toFixed(5)}
          </span>
        )}
        {hasPoint && (
          <a href={`https://www.openstreetmap.org/?mlat=${latitude}&mlon=${longitude}#map=16/${latitude}/${longitude}`} target="_blank" rel="noopener">
            Open the map
          </a>
        )}
      </div>
    </div>
  );
}

function ContactCardView({ contact }: { contact: ContactCard }) {
  const name = contact.name?.formatted_name || [contact.name?.first_name, contact.name?.last_name].filter(Boolean).join(" ") || "Contact";
  return (
    <div class="contact" data-testid="contact">
      <Icon name="user" size={20} />
      <div>
        <strong>{name}</strong>
        {contact.org?.company && <span class="muted">{contact.org.company}</span>}
        {(contact.phones ?? []).map((p, i) => (
          <span key={i}>
            {formatPhone(p.phone || p.wa_id)}
            {p.type ? <small class="muted"> · {p.type.toLowerCase()}</small> : null}
          </span>
        ))}
        {(contact.emails ?? []).map((e, i) => (
          <span key={`e${i}`}>{e.email}</span>
        ))}
      </div>
    </div>
  );
}

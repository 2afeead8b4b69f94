// The composer's "/" picker: the workspace's canned replies whose shortcut or title starts with what follows
// the "/" (the rule GET /api/replies?q= applies), moved through with the arrows; Enter or a click inserts.

import type { CannedReply } from "../types";

/** The "/word" being typed just before the caret (at the start or after a space), if any. */
export function slashQuery(text: string, caret: number): { start: number; query: string } | null {
  const match = /(^|\s)\/([^\s/]*)$/.exec(text.slice(0, caret));
  if (!match) return null;
  return { start: caret - match[2].length - 1, query: match[2] };
}

export function matchingReplies(replies: CannedReply[], query: string): CannedReply[] {
  const prefix = query.toLocaleLowerCase();
  return replies
    .filter((r) => r.shortcut.toLocaleLowerCase().startsWith(prefix) || r.title.toLocaleLowerCase().startsWith(prefix))
    .sort((a, b) => a.shortcut.localeCompare(b.shortcut));
}

interface Props {
  replies: CannedReply[] | null;
  matches: CannedReply[];
  active: number;
  onPick: (reply: CannedReply) => void;
  onHover: (index: number) => void;
}

export function ReplyPicker({ replies, matches, active, onPick, onHover }: Props) {
  return (
    <div class="popover reply-picker" data-testid="reply-picker">
      <div class="popover-head">Canned replies</div>
      {replies === null ? (
        <p class="muted pad">Loading…</p>
      ) : matches.length === 0 ? (
        <p class="muted pad">
          {replies.length === 0 ? "No canned replies yet. An admin can add them (Replies, at the top)." : "No reply matches."}
        </p>
      ) : (
        <ul role="listbox" aria-label="Canned replies" id="reply-picker-list">
          {matches.map((reply, index) => (
            <li key={reply.id}>
              <button
                type="button"
                role="option"
                id={`reply-option-${reply.id}`}
                aria-selected={index === active}
                class={index === active ? "active" : ""}
                // mousedown, not click: the textarea must not lose its caret before the insert.
                onMouseDown={(event) => {
                  event.preventDefault();
                  onPick(reply);
                }}
                onMouseEnter={() => onHover(index)}
              >
                <span class="reply-shortcut">/{reply.shortcut}</span>
                <span class="lib-text">
                  <strong>{reply.title}</strong>
                  <small class="muted">{reply.text}</small>
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// The composer's "/" picker: the workspace's canned replies whose shortcut or title starts with what follows
// the "/" (the rule GET /api/replies?q= applies), moved through with the arrows; Enter or a click inserts.

import type { CannedReply } from "../types";
import { InlinePicker, type Typed, typedAfter } from "./InlinePicker";

/** The "/word" being typed just before the caret (at the start or after a space), if any. */
export function slashQuery(text: string, caret: number): Typed | null {
  return typedAfter("/", text, caret);
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
    <InlinePicker
      heading="Canned replies"
      testId="reply-picker"
      listLabel="Canned replies"
      listId="reply-picker-list"
      options={replies}
      matches={matches}
      empty={(all) => (all.length === 0 ? "No canned replies yet. An admin can add them (Replies, at the top)." : "No reply matches.")}
      active={active}
      keyOf={(reply) => reply.id}
      optionId={(reply) => `reply-option-${reply.id}`}
      render={(reply) => (
        <>
          <span class="reply-shortcut">/{reply.shortcut}</span>
          <span class="lib-text">
            <strong>{reply.title}</strong>
            <small class="muted">{reply.text}</small>
          </span>
        </>
      )}
      onPick={onPick}
      onHover={onHover}
    />
  );
}

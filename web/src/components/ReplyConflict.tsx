// The double-reply guard's question (docs/api.md, "Team workflow"): a send refused with 409 `conflict`
// because a colleague replied after what the agent had seen asks "Omar replied 5 s ago: send anyway?".

import { ApiError } from "../api";
import { agoText } from "../format";

/** Who replied and when, as the refused send's `details` say. */
export interface Conflict {
  name: string;
  at: string | null;
}

/** The colleague's reply an error reports, or null when the error is something else. */
export function conflictOf(err: unknown): Conflict | null {
  const details = err instanceof ApiError && err.code === "conflict" ? err.details : null;
  const repliedBy = details?.replied_by as { name?: string } | undefined;
  if (!details || !repliedBy) return null;
  return { name: repliedBy.name || "A colleague", at: typeof details.at === "string" ? details.at : null };
}

export function ReplyConflict({ conflict, onSendAnyway, onCancel }: {
  conflict: Conflict;
  onSendAnyway: () => void;
  onCancel: () => void;
}) {
  return (
    <div class="composer-conflict" role="alertdialog" aria-label="A colleague replied">
      <span>
        {conflict.name} replied {agoText(conflict.at)}: send anyway?
      </span>
      <button type="button" class="btn small primary" onClick={onSendAnyway}>
        Send anyway
      </button>
      <button type="button" class="btn small ghost" onClick={onCancel}>
        Don't send
      </button>
    </div>
  );
}

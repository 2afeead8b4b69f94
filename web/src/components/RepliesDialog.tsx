// The "Canned replies" dialog of an admin: a workspace's replies (edit, remove) and the form that adds one.
// A reply's text may hold {{customer.name}}, {{customer.first_name}} and {{agent.name}}, filled when an
// agent inserts it with "/shortcut" in the composer.

import { useCallback, useEffect, useState } from "preact/hooks";
import { api, describeError } from "../api";
import { notify } from "../store";
import type { CannedReply, Me } from "../types";
import { Modal } from "./bits";
import { BusyButton, FormError } from "./form/Actions";
import { useAdminWorkspace, WorkspaceSelect } from "./form/AdminWorkspace";
import { Field, TextField, inputValue } from "./form/Field";
import { useSubmit } from "./form/useSubmit";

const PLACEHOLDER_HINT = "{{customer.first_name}}, {{customer.name}} and {{agent.name}} are filled in when it is inserted.";

export function RepliesDialog({ me, onClose }: { me: Me; onClose: () => void }) {
  const { adminOf, workspaceId, setWorkspaceId } = useAdminWorkspace(me);
  const [replies, setReplies] = useState<CannedReply[] | null>(null);
  const [editing, setEditing] = useState<CannedReply | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      setReplies((await api.replies(workspaceId)).items);
    } catch (err) {
      setError(`Could not load the canned replies: ${describeError(err)}`);
    }
  }, [workspaceId]);

  useEffect(() => {
    if (!workspaceId) return;
    setReplies(null);
    setEditing(null);
    load();
  }, [workspaceId, load]);

  const remove = async (reply: CannedReply) => {
    setError(null);
    try {
      await api.removeReply(reply.id);
      notify(`/${reply.shortcut} was removed.`);
    } catch (err) {
      setError(`Could not remove /${reply.shortcut}: ${describeError(err)}`);
    }
    if (editing?.id === reply.id) setEditing(null);
    await load();
  };

  if (!workspaceId) return null;
  return (
    <Modal title="Canned replies" onClose={onClose} wide>
      <div class="replies-admin" data-testid="replies-admin">
        <WorkspaceSelect adminOf={adminOf} workspaceId={workspaceId} onChange={setWorkspaceId} />
        <FormError error={error} />
        {replies === null ? (
          <p class="muted">Loading…</p>
        ) : replies.length === 0 ? (
          <p class="muted">No canned replies yet. Agents insert them by typing "/" and the shortcut.</p>
        ) : (
          <ul class="team-list" aria-label="Canned replies">
            {replies.map((r) => (
              <li key={r.id} data-testid="reply-row">
                <span class="reply-shortcut">/{r.shortcut}</span>
                <span class="team-name">
                  {r.title}
                  <small class="muted reply-text">{r.text}</small>
                </span>
                <button type="button" class="btn small" aria-label={`Edit /${r.shortcut}`} onClick={() => setEditing(r)}>
                  Edit
                </button>
                <button type="button" class="btn small" aria-label={`Remove /${r.shortcut}`} onClick={() => remove(r)}>
                  Remove
                </button>
              </li>
            ))}
          </ul>
        )}
        <ReplyForm
          key={editing?.id ?? "new"}
          workspaceId={workspaceId}
          reply={editing}
          onDone={async () => {
            setEditing(null);
            await load();
          }}
        />
      </div>
    </Modal>
  );
}

function ReplyForm({
  workspaceId,
  reply,
  onDone,
}: {
  workspaceId: string;
  reply: CannedReply | null;
  onDone: () => Promise<void>;
}) {
  const [shortcut, setShortcut] = useState(reply?.shortcut ?? "");
  const [title, setTitle] = useState(reply?.title ?? "");
  const [text, setText] = useState(reply?.text ?? "");
  const { busy, error, run } = useSubmit();

  const submit = (event: Event) => {
    event.preventDefault();
    return run(async () => {
      const body = { shortcut: shortcut.trim().replace(/^\//, ""), title: title.trim(), text };
      if (reply) {
        await api.updateReply(reply.id, body);
        notify(`/${body.shortcut} was saved.`);
      } else {
        await api.addReply({ workspace_id: workspaceId, ...body });
        notify(`/${body.shortcut} was added.`);
      }
      setShortcut("");
      setTitle("");
      setText("");
      await onDone();
    });
  };

  return (
    <section aria-labelledby="reply-form-title">
      <h3 id="reply-form-title">{reply ? `Edit /${reply.shortcut}` : "Add a canned reply"}</h3>
      <form class="reply-form" onSubmit={submit}>
        <TextField
          label="Shortcut"
          required
          maxLength={33}
          pattern="/?[^\s/]+"
          title="One word, without spaces"
          value={shortcut}
          onValue={setShortcut}
        />
        <TextField label="Title" maxLength={100} value={title} onValue={setTitle} />
        <Field label="Text">
          <textarea required maxLength={4096} rows={4} value={text} onInput={(e) => setText(inputValue(e))} />
        </Field>
        <p class="muted">{PLACEHOLDER_HINT}</p>
        <div class="form-actions">
          {reply && (
            <button type="button" class="btn" onClick={() => onDone()}>
              Cancel
            </button>
          )}
          <BusyButton type="submit" class="btn primary" busy={busy} busyLabel="Saving…">
            {reply ? "Save" : "Add reply"}
          </BusyButton>
        </div>
      </form>
      <FormError error={error} />
    </section>
  );
}

// The template picker: the number's templates, the chosen one's variables, and a live preview.

import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, api, errorMessage } from "../api";
import { showError, showErrorIn } from "../store";
import type { Conversation, MessageItem, Template, TemplateComponent } from "../types";
import { Modal } from "./bits";
import { type Conflict, ReplyConflict, conflictOf } from "./ReplyConflict";
import { BusyButton, DialogActions } from "./form/Actions";
import { TextField, TextInput } from "./form/Field";
import { useSubmit } from "./form/useSubmit";

const VARIABLE = /\{\{\s*([\w.]+)\s*\}\}/g;

/** The variables of a text in template order ({{1}}, {{2}} sorted; named ones as they appear). */
export function variablesOf(text: string | undefined): string[] {
  if (!text) return [];
  const seen: string[] = [];
  for (const match of text.matchAll(VARIABLE)) if (!seen.includes(match[1])) seen.push(match[1]);
  return seen.every((v) => /^\d+$/.test(v)) ? seen.sort((a, b) => Number(a) - Number(b)) : seen;
}

export function render(text: string | undefined, values: Record<string, string>): string {
  return (text ?? "").replace(VARIABLE, (whole, name: string) => values[name]?.trim() || whole);
}

const component = (t: Template, type: string): TemplateComponent | undefined =>
  (t.components as unknown as TemplateComponent[]).find((c) => c.type?.toUpperCase() === type);

interface Fields {
  headerVars: string[];
  headerMedia: string | null; // IMAGE | VIDEO | DOCUMENT
  bodyVars: string[];
  buttonVars: { index: number; text: string; url: string }[];
  named: boolean;
}

function fieldsOf(t: Template): Fields {
  const header = component(t, "HEADER");
  const format = header?.format?.toUpperCase() ?? "TEXT";
  const body = component(t, "BODY");
  const bodyVars = variablesOf(body?.text);
  const buttons = component(t, "BUTTONS")?.buttons ?? [];
  return {
    headerVars: format === "TEXT" ? variablesOf(header?.text) : [],
    headerMedia: header && ["IMAGE", "VIDEO", "DOCUMENT"].includes(format) ? format : null,
    bodyVars,
    buttonVars: buttons
      .map((b, index) => ({ index, text: b.text ?? "", url: b.url ?? "", type: b.type?.toUpperCase() }))
      .filter((b) => (b.type === "URL" && variablesOf(b.url).length > 0) || b.type === "COPY_CODE"),
    named: bodyVars.some((v) => !/^\d+$/.test(v)),
  };
}

function exampleOf(t: Template, name: string, index: number): string {
  const example = component(t, "BODY")?.example as
    | { body_text?: string[][]; body_text_named_params?: { param_name: string; example: string }[] }
    | undefined;
  const named = example?.body_text_named_params?.find((p) => p.param_name === name)?.example;
  return named ?? example?.body_text?.[0]?.[index] ?? "";
}

interface Props {
  conversation: Conversation;
  onClose: () => void;
  onSent: (message: MessageItem) => void;
  /** The newest seq the agent had seen: a colleague's reply after it makes the send ask first. */
  lastSeq: number;
}

export function TemplatePicker({ conversation, onClose, onSent, lastSeq }: Props) {
  const [templates, setTemplates] = useState<Template[] | null>(null);
  const [selected, setSelected] = useState<Template | null>(null);
  const [header, setHeader] = useState<Record<string, string>>({});
  const [headerMediaUrl, setHeaderMediaUrl] = useState("");
  const [body, setBody] = useState<Record<string, string>>({});
  const [buttons, setButtons] = useState<Record<number, string>>({});
  // The problems of a refused send are listed under its message.
  const { busy: sending, error, setError, run } = useSubmit(errorMessage);
  const [problems, setProblems] = useState<string[]>([]);
  const [filter, setFilter] = useState("");
  const [conflict, setConflict] = useState<Conflict | null>(null);

  useEffect(() => {
    api
      .templates(conversation.number_id)
      .then(({ items }) => setTemplates(items))
      .catch((err) => {
        setTemplates([]);
        showErrorIn(setError, err, "Could not load the templates");
      });
  }, [conversation.number_id]);

  const choose = (t: Template) => {
    setSelected(t);
    setHeader({});
    setBody({});
    setButtons({});
    setHeaderMediaUrl("");
    setProblems([]);
    setError(null);
  };

  const fields = useMemo(() => (selected ? fieldsOf(selected) : null), [selected]);
  const shown = (templates ?? []).filter((t) => `${t.name} ${t.language} ${t.category}`.toLowerCase().includes(filter.toLowerCase()));

  const send = async (force = false) => {
    if (!selected || !fields) return;
    const params: Record<string, unknown> = {};
    if (fields.headerMedia) {
      const kind = fields.headerMedia.toLowerCase();
      params.header = [{ type: kind, link: headerMediaUrl.trim() }];
    } else if (fields.headerVars.length) {
      params.header = fields.headerVars.map((v) => header[v] ?? "");
    }
    if (fields.bodyVars.length) {
      params.body = fields.named
        ? fields.bodyVars.map((v) => ({ name: v, text: body[v] ?? "" }))
        : fields.bodyVars.map((v) => body[v] ?? "");
    }
    if (fields.buttonVars.length) params.buttons = fields.buttonVars.map((b) => buttons[b.index] ?? "");
    setProblems([]);
    setConflict(null);
    const guard = { after_seq: lastSeq, ...(force ? { force: true } : {}) };
    await run(async () => {
      try {
        const { message } = await api.sendTemplate(conversation.id, selected.name, selected.language, params, guard);
        onSent(message);
      } catch (err) {
        const refused = conflictOf(err);
        if (refused) {
          setConflict(refused);
          return; // the question replaces the error message
        }
        if (err instanceof ApiError) setProblems(err.problems);
        showError(err, "The template was not sent");
        throw err; // to run, which shows its message on the form
      }
    });
  };

  const missing = fields
    ? [
        ...fields.headerVars.filter((v) => !header[v]?.trim()),
        ...fields.bodyVars.filter((v) => !body[v]?.trim()),
        ...fields.buttonVars.filter((b) => !buttons[b.index]?.trim()).map((b) => `button ${b.index + 1}`),
        ...(fields.headerMedia && !headerMediaUrl.trim() ? ["header media"] : []),
      ]
    : [];
  const approved = selected?.status?.toUpperCase() === "APPROVED";

  return (
    <Modal title="Send a template" onClose={onClose} wide>
      <div class="template-picker">
        <div class="template-list">
          <TextInput type="search" placeholder="Filter templates" aria-label="Filter templates" value={filter} onValue={setFilter} />
          {templates === null ? (
            <p class="muted pad">Loading…</p>
          ) : shown.length === 0 ? (
            <p class="muted pad">No templates for this number.</p>
          ) : (
            <ul aria-label="Templates">
              {shown.map((t) => (
                <li key={`${t.name}:${t.language}`}>
                  <button
                    type="button"
                    class={`template-item ${selected === t ? "selected" : ""}`}
                    aria-pressed={selected === t}
                    data-template={t.name}
                    data-language={t.language}
                    onClick={() => choose(t)}
                  >
                    <strong>{t.name}</strong>
                    <small>
                      {t.language} · {t.category.toLowerCase()}
                      {t.status.toUpperCase() !== "APPROVED" && <span class="warn"> · {t.status.toLowerCase()}</span>}
                    </small>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
        <div class="template-detail">
          {!selected || !fields ? (
            <p class="muted pad">Choose a template to see it, fill in its variables and preview the message.</p>
          ) : (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                send();
              }}
            >
              {!approved && (
                <p class="warn-box" role="note">
                  This template is {selected.status.toLowerCase()}: Meta accepts only approved templates.
                </p>
              )}
              {fields.headerMedia && (
                <TextField
                  label={`Header ${fields.headerMedia.toLowerCase()} (link)`}
                  type="url"
                  required
                  value={headerMediaUrl}
                  placeholder="https://…"
                  onValue={setHeaderMediaUrl}
                />
              )}
              {fields.headerVars.map((v) => (
                <TextField
                  key={`h${v}`}
                  label={<>Header {`{{${v}}}`}</>}
                  value={header[v] ?? ""}
                  onValue={(value) => setHeader({ ...header, [v]: value })}
                />
              ))}
              {fields.bodyVars.map((v, i) => (
                <TextField
                  key={`b${v}`}
                  label={`{{${v}}}`}
                  aria-label={`Variable ${v}`}
                  value={body[v] ?? ""}
                  placeholder={exampleOf(selected, v, i) ? `e.g. ${exampleOf(selected, v, i)}` : ""}
                  onValue={(value) => setBody({ ...body, [v]: value })}
                />
              ))}
              {fields.buttonVars.map((b) => (
                <TextField
                  key={`btn${b.index}`}
                  label={
                    <>
                      Button “{b.text}” {b.url ? <small class="muted">{b.url}</small> : null}
                    </>
                  }
                  value={buttons[b.index] ?? ""}
                  onValue={(value) => setButtons({ ...buttons, [b.index]: value })}
                />
              ))}
              {!fields.headerVars.length && !fields.bodyVars.length && !fields.buttonVars.length && !fields.headerMedia && (
                <p class="muted">This template has no variables.</p>
              )}
              <Preview template={selected} header={header} body={body} />
              {(error || problems.length > 0) && (
                <div class="form-error" role="alert">
                  <p>{error}</p>
                  {problems.length > 0 && (
                    <ul>
                      {problems.map((p) => (
                        <li key={p}>{p}</li>
                      ))}
                    </ul>
                  )}
                </div>
              )}
              {conflict && (
                <ReplyConflict conflict={conflict} onSendAnyway={() => send(true)} onCancel={() => setConflict(null)} />
              )}
              <DialogActions
                onCancel={onClose}
                cancelClass="btn ghost"
                hint={missing.length > 0 && <span class="muted">Fill in: {missing.join(", ")}</span>}
              >
                <BusyButton type="submit" class="btn primary" busy={sending} busyLabel="Sending…" disabled={missing.length > 0 || !approved}>
                  Send template
                </BusyButton>
              </DialogActions>
            </form>
          )}
        </div>
      </div>
    </Modal>
  );
}

function Preview({ template, header, body }: { template: Template; header: Record<string, string>; body: Record<string, string> }) {
  const h = component(template, "HEADER");
  const b = component(template, "BODY");
  const f = component(template, "FOOTER");
  const buttons = component(template, "BUTTONS")?.buttons ?? [];
  return (
    <figure class="template-preview" aria-label="Preview">
      <figcaption class="muted">Preview</figcaption>
      <div class="bubble bubble-out preview-bubble" data-testid="template-preview">
        {h && (h.format ?? "TEXT").toUpperCase() === "TEXT" && h.text && <p class="tp-header">{render(h.text, header)}</p>}
        {h && (h.format ?? "TEXT").toUpperCase() !== "TEXT" && <p class="tp-media muted">[{h.format?.toLowerCase()} header]</p>}
        {b?.text && <p class="text">{render(b.text, body)}</p>}
        {f?.text && <p class="tp-footer muted">{f.text}</p>}
        {buttons.length > 0 && (
          <div class="tp-buttons">
            {buttons.map((btn, i) => (
              <span key={i}>{btn.text}</span>
            ))}
          </div>
        )}
      </div>
    </figure>
  );
}

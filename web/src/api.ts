// The only way the screen talks to the server: the gateway's /api (docs/api.md). Every failure becomes an
// ApiError carrying the API's machine code and its message for a person, so callers can show it.

import type {
  Accepted, CannedReply, Conversation, Invitation, InvitationCreated, InvitationPreview, Role, Filter, LibraryItem, Me, MessageItem, NoteItem, NumberInfo, Order, CreateOrderBody, Page, Panel,
  AutoAssign, ConversationStatus, Customer, Stage, StatusView, TeamMember, Template, TimelinePage, Upload, WorkspaceSettings,
} from "./types";

/** The double-reply guard of a send: the newest seq the agent had seen, and whether to send anyway. */
export interface ReplyGuard {
  after_seq: number;
  force?: boolean;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The problems a 422 lists (e.g. template parameters), when it lists them. */
  get problems(): string[] {
    const problems = this.details?.problems;
    return Array.isArray(problems) ? problems.map(String) : [];
  }
}

// Called on any 401 so the app can go back to the login screen.
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

// Called on any 403 or 404 of a signed-in call: the agent may have lost a workspace (removed by an admin) or
// a role, which the server tells only through such answers, so the app re-reads /api/me.
let onAccessChanged: () => void = () => {};
export function setAccessChangedHandler(handler: () => void): void {
  onAccessChanged = handler;
}

// The token from the login answer, kept in memory only; after a reload the HttpOnly cookie
// authenticates (and it is what the event stream and media URLs use in any case).
let token: string | null = null;
export function setToken(value: string | null): void {
  token = value;
}

async function request<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(`/api/${path}`, { method, headers, body: payload, credentials: "same-origin", ...init });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "The server cannot be reached. Check the connection; the page retries by itself.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string; details?: Record<string, unknown> } })?.error;
    const apiError = new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? `The server answered ${response.status} ${response.statusText}`.trim(),
      error?.details ?? {},
    );
    if (response.status === 401 && !path.startsWith("auth/")) onUnauthenticated();
    if ((response.status === 403 || response.status === 404) && !path.startsWith("invitations/")) onAccessChanged();
    throw apiError;
  }
  return data as T;
}

const q = (params: Record<string, string | number | null | undefined>): string => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const s = search.toString();
  return s ? `?${s}` : "";
};

const enc = encodeURIComponent;

// A resource answered bare or in its envelope ({order: ...}): docs/api.md fixes one and not the other.
function unwrap<T>(value: unknown, key: string): T {
  const inner = (value as Record<string, unknown> | null)?.[key];
  return (inner && typeof inner === "object" ? inner : value) as T;
}

export const api = {
  login: (email: string, password: string) =>
    request<{ token: string; agent: Me["agent"] }>("POST", "auth/login", { email, password }),
  logout: () => request<void>("POST", "auth/logout"),
  me: () => request<Me>("GET", "me"),
  numbers: () => request<{ items: NumberInfo[] }>("GET", "numbers"),

  conversations: (
    params: {
      number?: string | null;
      filter: Filter;
      status?: StatusView;
      q?: string;
      cursor?: string | null;
      limit?: number;
    },
    signal?: AbortSignal,
  ) =>
    request<Page<Conversation>>("GET", `conversations${q({ ...params, limit: params.limit ?? 30 })}`, undefined, {
      signal,
    }),
  conversation: (id: string) => request<Conversation>("GET", `conversations/${enc(id)}`),
  timeline: (id: string, before?: string | null, limit = 40) =>
    request<TimelinePage>("GET", `conversations/${enc(id)}/timeline${q({ before, limit })}`),
  sendText: (id: string, text: string, replyTo?: string | null, guard?: ReplyGuard) =>
    request<{ message: MessageItem }>("POST", `conversations/${enc(id)}/messages`, {
      type: "text",
      text,
      ...(replyTo ? { reply_to: replyTo } : {}),
      ...guard,
    }),
  sendMedia: (
    id: string,
    body: { type: string; upload_id?: string; library_item_id?: string; caption?: string; filename?: string },
    guard?: ReplyGuard,
  ) => request<{ message: MessageItem }>("POST", `conversations/${enc(id)}/messages`, { ...body, ...guard }),
  sendTemplate: (id: string, name: string, language: string, params: Record<string, unknown>, guard?: ReplyGuard) =>
    request<{ message: MessageItem }>("POST", `conversations/${enc(id)}/templates`, { name, language, params, ...guard }),
  addNote: (id: string, text: string, mentions: string[] = []) =>
    request<{ note: NoteItem }>("POST", `conversations/${enc(id)}/notes`, { text, ...(mentions.length ? { mentions } : {}) }),
  assign: (id: string, agentId: string | null) =>
    request<{ conversation: Conversation }>("POST", `conversations/${enc(id)}/assign`, { agent_id: agentId }),
  setStatus: (id: string, status: ConversationStatus, until?: Date) =>
    request<{ conversation: Conversation }>("POST", `conversations/${enc(id)}/status`, {
      status,
      ...(until ? { until: until.toISOString() } : {}),
    }),
  markRead: (id: string) => request<unknown>("POST", `conversations/${enc(id)}/read`),
  viewing: (id: string, viewing: boolean) => request<void>("POST", `conversations/${enc(id)}/viewing`, { viewing }),
  composing: (id: string, composing: boolean) =>
    request<void>("POST", `conversations/${enc(id)}/composing`, { composing }),
  upload: (file: File) => {
    const form = new FormData();
    form.append("file", file, file.name);
    return request<Upload>("POST", "uploads", form);
  },
  templates: (numberId: string) => request<{ items: Template[] }>("GET", `templates${q({ number: numberId })}`),
  library: (workspaceId: string) => request<{ items: LibraryItem[] }>("GET", `library${q({ workspace: workspaceId })}`),
  replies: (workspaceId: string, query = "") =>
    request<{ items: CannedReply[] }>("GET", `replies${q({ workspace: workspaceId, q: query || undefined })}`),
  addReply: (body: { workspace_id: string; shortcut: string; title: string; text: string }) =>
    request<{ reply: CannedReply }>("POST", "replies", body),
  updateReply: (id: string, changes: { shortcut?: string; title?: string; text?: string }) =>
    request<{ reply: CannedReply }>("PATCH", `replies/${enc(id)}`, changes),
  removeReply: (id: string) => request<void>("DELETE", `replies/${enc(id)}`),
  /** The reply's text with its placeholders filled for this conversation's customer and the calling agent. */
  renderReply: (conversationId: string, replyId: string) =>
    request<{ text: string }>("GET", `conversations/${enc(conversationId)}/replies/${enc(replyId)}`),
  panel: (id: string) => request<Panel>("GET", `conversations/${enc(id)}/panel`),
  patchCustomer: async (id: string, patch: { name?: string; tags?: string[] }) =>
    unwrap<Customer>(await request<Customer | { customer: Customer }>("PATCH", `customers/${enc(id)}`, patch), "customer"),
  createOrder: (body: CreateOrderBody) =>
    request<{ order: Order }>("POST", "orders", body),
  order: async (id: string) => unwrap<Order>(await request<Order | { order: Order }>("GET", `orders/${enc(id)}`), "order"),
  setStage: (id: string, stage: Stage) => request<{ order: Order }>("POST", `orders/${enc(id)}/stage`, { stage }),
  agents: (workspaceId: string) => request<{ items: TeamMember[] }>("GET", `agents${q({ workspace: workspaceId })}`),

  // Members and invitations.
  changePassword: (currentPassword: string, newPassword: string) =>
    request<void>("POST", "me/password", { current_password: currentPassword, new_password: newPassword }),
  invite: (workspaceId: string, email: string, role: Role) =>
    request<InvitationCreated>("POST", "admin/invitations", { workspace_id: workspaceId, email, role }),
  invitations: (workspaceId: string) =>
    request<{ items: Invitation[] }>("GET", `admin/invitations${q({ workspace: workspaceId })}`),
  revokeInvitation: (id: string) => request<void>("DELETE", `admin/invitations/${enc(id)}`),
  workspaceSettings: (workspaceId: string) =>
    request<{ workspace: WorkspaceSettings }>("GET", `admin/workspaces/${enc(workspaceId)}`),
  changeWorkspace: (workspaceId: string, changes: { auto_assign?: AutoAssign }) =>
    request<{ workspace: WorkspaceSettings }>("PATCH", `admin/workspaces/${enc(workspaceId)}`, changes),
  removeMember: (workspaceId: string, agentId: string) =>
    request<void>("DELETE", `admin/workspaces/${enc(workspaceId)}/members/${enc(agentId)}`),
  // No session needed: whoever holds the token.
  invitation: (token: string) => request<InvitationPreview>("GET", `invitations/${enc(token)}`),
  acceptInvitation: (token: string, body: { name?: string; password?: string }) =>
    request<Accepted>("POST", `invitations/${enc(token)}/accept`, body),
};

/** Where a stored attachment is streamed from (the session cookie authenticates it). */
export const mediaUrl = (id: string): string => `/api/media/${enc(id)}`;

/** A person-readable line for any error, for the error area. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    const problems = err.problems;
    return problems.length ? `${err.message}: ${problems.join("; ")}` : err.message;
  }
  return errorMessage(err);
}

/** The message of an error alone (an ApiError's problems left to be shown apart, or not at all). */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

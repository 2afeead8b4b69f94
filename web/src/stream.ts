// The live stream (GET /api/stream, server-sent events). EventSource reconnects by itself after a
// dropped connection (sending Last-Event-ID); it gives up only when the server answers with an error
// status, and then this class retries with a backoff. Whenever the stream comes back after a gap,
// and when the server says it could not resume ("reset"), listeners of "resync" re-fetch what is on
// screen, because events of the gap may be lost.

export type StreamState = "connecting" | "open" | "reconnecting";

type Handler = (data: any) => void;

const EVENT_TYPES = [
  "conversation.updated",
  "message.created",
  "message.updated",
  "note.created",
  "mention",
  "activity.created",
  "composing",
  "presence",
  "viewing",
  "order.updated",
  "customer.updated",
  "workspaces",
  "reset",
];

export class LiveStream {
  private source: EventSource | null = null;
  private handlers = new Map<string, Set<Handler>>();
  private stateListeners = new Set<(state: StreamState) => void>();
  private retryTimer: number | undefined;
  private retryDelay = 1000;
  private hadGap = false;
  private stopped = true;
  state: StreamState = "connecting";

  constructor(private readonly url = "/api/stream") {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = null;
  }

  on(type: string, handler: Handler): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  onState(listener: (state: StreamState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: StreamState): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private emit(type: string, data: unknown): void {
    for (const handler of this.handlers.get(type) ?? []) {
      try {
        handler(data);
      } catch (err) {
        console.error(`handler of ${type} failed`, err);
      }
    }
  }

  private connect(): void {
    this.source?.close();
    const source = new EventSource(this.url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.retryDelay = 1000;
      this.setState("open");
      if (this.hadGap) {
        this.hadGap = false;
        this.emit("resync", null);
      }
    };
    source.onerror = (event: Event) => {
      if (source !== this.source) return;
      // The server's own "event: error" frame ({reason}) arrives here too; it then closes the stream.
      if (event instanceof MessageEvent) return;
      this.hadGap = true;
      this.setState("reconnecting");
      if (source.readyState === EventSource.CLOSED) this.scheduleRetry();
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        let data: unknown = null;
        try {
          data = JSON.parse((event as MessageEvent<string>).data);
        } catch {
          return;
        }
        if (type === "reset") this.emit("resync", data);
        else this.emit(type, data);
      });
    }
  }

  private scheduleRetry(): void {
    window.clearTimeout(this.retryTimer);
    if (this.stopped) return;
    this.retryTimer = window.setTimeout(() => {
      if (!this.stopped) {
        this.emit("retrying", null);
        this.connect();
      }
    }, this.retryDelay);
    this.retryDelay = Math.min(this.retryDelay * 2, 15000);
  }

  private onOnline = (): void => {
    // Back on the network: do not wait for the backoff.
    if (this.state !== "open") {
      this.retryDelay = 1000;
      this.hadGap = true;
      this.connect();
    }
  };
}

export const stream = new LiveStream();

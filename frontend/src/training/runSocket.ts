/**
 * Websocket client of one training run: `ws(s)://<host>/ws/trainings/<id>/?last_step=N`.
 *
 * The server first sends `training.status`, then every metric point with step > N, then live
 * events `{type: "training.metric" | "training.eval" | "training.status" | "training.checkpoint",
 * payload}`. When the connection drops, this client reconnects with exponential backoff
 * (with jitter) and asks for the points after the last step it holds (`lastStep()`), so the
 * caller sees no gaps; duplicates are possible by design and are removed by mergeByStep.
 * Close code 4403 (not allowed to watch) and `stop()` end it for good.
 */

export interface StatusPayload {
  status: string;
  step: number;
  total_steps: number;
  message: string;
  error: string;
  attempts: number;
}

export interface PointPayload {
  id: number;
  step: number;
  values: Record<string, unknown>;
}

export type RunEvent =
  | { type: "training.status"; payload: StatusPayload }
  | { type: "training.metric"; payload: PointPayload }
  | { type: "training.eval"; payload: PointPayload }
  | { type: "training.checkpoint"; payload: { step: number; best?: boolean } };

export type SocketState = "idle" | "connecting" | "open" | "waiting" | "denied" | "stopped";

/** The part of the browser WebSocket this client uses (tests pass a fake). */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number): void;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface RunSocketOptions {
  runId: number;
  /** Highest step already held (the server replays points with step > this). */
  lastStep: () => number;
  onEvent: (event: RunEvent) => void;
  onState?: (state: SocketState, info: { attempt: number; delayMs?: number }) => void;
  /** Defaults to the page's host with ws/wss matching http/https. */
  url?: (runId: number, lastStep: number) => string;
  createSocket?: (url: string) => SocketLike;
  backoff?: Backoff;
  random?: () => number;
  schedule?: (fn: () => void, ms: number) => unknown;
  cancelSchedule?: (handle: unknown) => void;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 15_000, factor: 2 };
const DENIED_CODES = new Set([4401, 4403, 4404]);

export function runSocketUrl(runId: number, lastStep: number): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}/ws/trainings/${runId}/?last_step=${lastStep}`;
}

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, 75-125% jitter. */
export function backoffDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, attempt));
  return Math.round(base * (0.75 + 0.5 * random()));
}

export class RunSocket {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private stopped = true;
  private state: SocketState = "idle";
  /** URLs connected to, in order (for diagnostics and tests). */
  readonly history: string[] = [];

  constructor(private readonly opts: RunSocketOptions) {}

  get currentState(): SocketState {
    return this.state;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Close for good (no reconnect). */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = s.onmessage = s.onerror = s.onopen = null;
      s.close(1000);
    }
    this.setState("stopped");
  }

  /** Drop the current connection and connect again at once (e.g. after a resume truncation). */
  reconnectNow(): void {
    if (this.stopped) return;
    this.clearTimer();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = s.onmessage = s.onerror = s.onopen = null;
      s.close(1000);
    }
    this.attempt = 0;
    this.connect();
  }

  /** Close the current connection as if the network dropped it (the client reconnects). */
  dropConnection(): void {
    this.socket?.close(4000);
  }

  private setState(state: SocketState, delayMs?: number): void {
    this.state = state;
    this.opts.onState?.(state, { attempt: this.attempt, delayMs });
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      (this.opts.cancelSchedule ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>)))(this.timer);
      this.timer = null;
    }
  }

  private connect(): void {
    const url = (this.opts.url ?? runSocketUrl)(this.opts.runId, this.opts.lastStep());
    this.history.push(url);
    this.setState("connecting");
    let socket: SocketLike;
    try {
      socket = (this.opts.createSocket ?? ((u) => new WebSocket(u) as unknown as SocketLike))(url);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => this.setState("open");
    socket.onmessage = (ev) => {
      let event: RunEvent;
      try {
        event = JSON.parse(String(ev.data)) as RunEvent;
      } catch {
        return; // not ours; ignore
      }
      this.attempt = 0; // the server is talking to us: the next drop starts the backoff afresh
      this.opts.onEvent(event);
    };
    socket.onerror = () => {
      /* onclose follows and decides */
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (DENIED_CODES.has(ev.code)) {
        this.stopped = true;
        this.setState("denied");
        return;
      }
      this.retry();
    };
  }

  private retry(): void {
    const delay = backoffDelay(this.attempt, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random);
    this.attempt++;
    this.setState("waiting", delay);
    const schedule = this.opts.schedule ?? ((fn, ms) => setTimeout(fn, ms));
    this.timer = schedule(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }
}

/**
 * Autosave of an asset's masks: saves a while after the last edit, retries transient failures
 * with backoff, and never marks a version saved unless the server accepted exactly that version.
 * DOM-free; the annotator wires `save` to `PUT /api/v1/assets/{id}/masks/`.
 */
export type SaveState = "saved" | "dirty" | "saving" | "error";

export interface AutosaveOptions<P> {
  /** Current document version (increments on every edit, undo and redo). */
  version: () => number;
  /** Snapshot of what to save for the current version. */
  payload: () => P;
  /** Send one snapshot; reject to signal failure. */
  save: (payload: P) => Promise<void>;
  /** Whether an error is worth retrying automatically (default: always). */
  isTransient?: (err: unknown) => boolean;
  debounceMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  onChange?: (state: SaveState, error: unknown) => void;
}

export class Autosaver<P> {
  state: SaveState = "saved";
  error: unknown = null;
  savedVersion: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<void> | null = null;
  private failures = 0;
  private disposed = false;

  constructor(private readonly o: AutosaveOptions<P>) {
    this.savedVersion = o.version();
  }

  get hasUnsaved(): boolean {
    return this.o.version() !== this.savedVersion;
  }

  /** Call after every change of the document. */
  changed(): void {
    if (this.disposed) return;
    if (!this.hasUnsaved) {
      if (!this.inFlight) this.set("saved", null);
      return;
    }
    if (this.state !== "error" && this.state !== "saving") this.set("dirty", null);
    if (this.state !== "error") this.schedule(this.o.debounceMs ?? 1500);
  }

  /** Save now (e.g. before leaving the asset); resolves true when everything is saved. */
  async flush(): Promise<boolean> {
    this.clearTimer();
    for (let i = 0; i < 3 && this.hasUnsaved; i++) {
      if (this.inFlight) await this.inFlight;
      else await this.run();
      if (this.state === "error") return false;
    }
    return !this.hasUnsaved;
  }

  /** Retry after an error without waiting for the backoff. */
  retryNow(): void {
    this.clearTimer();
    void this.run();
  }

  dispose(): void {
    this.disposed = true;
    this.clearTimer();
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private run(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (!this.hasUnsaved) {
      this.set("saved", null);
      return Promise.resolve();
    }
    const version = this.o.version();
    const payload = this.o.payload();
    this.set("saving", null);
    const p = this.o
      .save(payload)
      .then(() => {
        this.savedVersion = version;
        this.failures = 0;
        this.inFlight = null;
        if (this.disposed) return;
        if (this.hasUnsaved) {
          // Edits arrived while saving: save again soon.
          this.set("dirty", null);
          this.schedule(this.o.debounceMs ?? 1500);
        } else this.set("saved", null);
      })
      .catch((err: unknown) => {
        this.inFlight = null;
        this.failures++;
        if (this.disposed) return;
        this.set("error", err);
        const transient = this.o.isTransient ? this.o.isTransient(err) : true;
        if (transient) {
          const base = this.o.retryBaseMs ?? 1000;
          const delay = Math.min(this.o.retryMaxMs ?? 30_000, base * 2 ** (this.failures - 1));
          this.schedule(delay);
        }
      });
    this.inFlight = p;
    return p;
  }

  private set(state: SaveState, error: unknown): void {
    this.state = state;
    this.error = error;
    this.o.onChange?.(state, error);
  }
}

/**
 * Everything of one asset that outlives a render: its mask document, autosave queue, journal
 * writes and the revision its saves are conditional on. One AssetSession is created when an
 * asset opens and closed when the annotator leaves it; nothing of it can reach another asset
 * (its save always targets its own asset id, its document has its own image's size).
 *
 * DOM-free so the lifecycle is unit tested (session.test.ts).
 */
import { Autosaver, type SaveState } from "./autosave";
import type { Journal } from "./journal";
import type { ApiMask, MaskDocument } from "./maskDocument";

export interface SaveBody {
  masks: ApiMask[];
  /** The revision these edits started from; 0 = "no revision yet" (the first save). */
  base_revision: number;
}

export interface SaveResult {
  revision: number | null;
  status?: string;
}

export interface SessionOptions {
  assetId: number;
  doc: MaskDocument;
  /** Revision of the loaded masks (null: nothing saved yet). */
  revision: number | null;
  /** Send the masks of this asset; resolves with the revision the server stored. */
  save: (assetId: number, body: SaveBody) => Promise<SaveResult>;
  journal: Journal;
  /** The document holds edits the server has not seen (restored from the journal). */
  unsaved?: boolean;
  isTransient?: (err: unknown) => boolean;
  onSaveState?: (state: SaveState, error: unknown) => void;
  onSaved?: (result: SaveResult) => void;
  debounceMs?: number;
  journalDelayMs?: number;
}

export class AssetSession {
  readonly assetId: number;
  readonly doc: MaskDocument;
  readonly saver: Autosaver<SaveBody>;
  /** Revision every save is conditional on (null: none yet, sent as 0). */
  revision: number | null;
  closed = false;
  private journalTimer: ReturnType<typeof setTimeout> | null = null;
  /** Journal writes and deletes run one after another, in the order they were asked for. */
  private journalChain: Promise<void> = Promise.resolve();
  private readonly unsubscribe: () => void;

  constructor(private readonly o: SessionOptions) {
    this.assetId = o.assetId;
    this.doc = o.doc;
    this.revision = o.revision;
    this.saver = new Autosaver<SaveBody>({
      version: () => this.doc.version,
      payload: () => ({ masks: this.doc.toApi(), base_revision: this.revision ?? 0 }),
      save: async (body) => {
        const res = await o.save(this.assetId, { ...body, base_revision: this.revision ?? 0 });
        this.revision = res.revision;
        if (!this.closed) o.onSaved?.(res);
      },
      isTransient: o.isTransient,
      debounceMs: o.debounceMs,
      onChange: (state, error) => {
        if (state === "saved") this.forgetJournal();
        if (!this.closed) o.onSaveState?.(state, error);
      },
    });
    if (o.unsaved) this.saver.savedVersion = -1;
    this.unsubscribe = this.doc.subscribe(() => this.changed());
    if (o.unsaved) this.changed();
  }

  get hasUnsaved(): boolean {
    return this.saver.hasUnsaved;
  }

  private changed(): void {
    this.saver.changed();
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.journalTimer = setTimeout(() => this.writeJournal(), this.o.journalDelayMs ?? 250);
  }

  private queue(op: () => Promise<void>): Promise<void> {
    this.journalChain = this.journalChain.then(op).catch(() => {});
    return this.journalChain;
  }

  /** Journal the current edits now (when there are any unsaved). */
  writeJournal(): Promise<void> {
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.journalTimer = null;
    if (!this.saver.hasUnsaved) return this.journalChain;
    const entry = {
      assetId: this.assetId,
      baseRevision: this.revision,
      width: this.doc.width,
      height: this.doc.height,
      masks: this.doc.toApi(),
      savedAt: Date.now(),
    };
    return this.queue(() => this.o.journal.put(entry));
  }

  private forgetJournal(): void {
    if (this.saver.hasUnsaved) return;
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.journalTimer = null;
    void this.queue(() => this.o.journal.remove(this.assetId));
  }

  /** After a 409: the user keeps their edits and overwrites revision `current` (conditionally). */
  keepMine(current: number | null): void {
    this.revision = current;
    this.saver.retryNow();
  }

  /** Before navigating to another asset: save what is pending. False (and the edits kept,
   * journaled) when the save failed; the caller then stays and tells the user. */
  async leave(): Promise<boolean> {
    await this.writeJournal();
    return this.saver.flush();
  }

  /** The annotator left this asset (unmount, back button): journal and save what is pending
   * in the background, then stop. Nothing is reported to the UI any more. */
  close(): Promise<boolean> {
    if (this.closed) return Promise.resolve(!this.saver.hasUnsaved);
    this.closed = true;
    this.unsubscribe();
    void this.writeJournal();
    return this.saver.flush().finally(() => this.saver.dispose());
  }

  /** Drop this asset's unsaved edits (the user chose the server's version): nothing more is
   * saved or journaled, and the journal entry is deleted. */
  discard(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    this.saver.dispose();
    if (this.journalTimer) clearTimeout(this.journalTimer);
    this.journalTimer = null;
    return this.queue(() => this.o.journal.remove(this.assetId));
  }

  /** Resolves when the journal writes asked for so far are done (tests). */
  journalIdle(): Promise<void> {
    return this.journalChain;
  }
}

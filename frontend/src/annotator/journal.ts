/**
 * Local journal of unsaved annotator edits, so a crash, a closed tab or a reload loses nothing.
 *
 * One entry per asset: the masks as they were after the last edit, the revision they were edited
 * from and when. The annotator writes it shortly after each edit and deletes it once the server
 * accepted exactly that version; on opening an asset with an entry, it offers it back.
 * Stored in IndexedDB (`tessera-journal`); `memoryJournal` is the same contract for tests.
 */
import type { ApiMask } from "./maskDocument";

export interface JournalEntry {
  assetId: number;
  /** Revision the edits started from (null: none yet); a restore saves against it. */
  baseRevision: number | null;
  width: number;
  height: number;
  masks: ApiMask[];
  /** Date.now() of the write. */
  savedAt: number;
}

export interface Journal {
  get(assetId: number): Promise<JournalEntry | null>;
  put(entry: JournalEntry): Promise<void>;
  remove(assetId: number): Promise<void>;
}

export function memoryJournal(): Journal & { entries: Map<number, JournalEntry> } {
  const entries = new Map<number, JournalEntry>();
  return {
    entries,
    get: async (id) => entries.get(id) ?? null,
    put: async (e) => void entries.set(e.assetId, structuredClone(e)),
    remove: async (id) => void entries.delete(id),
  };
}

const DB = "tessera-journal";
const STORE = "edits";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "assetId" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  return open().then(
    (db) =>
      new Promise<T>((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => {
          db.close();
          resolve(req.result as T);
        };
        tx.onerror = tx.onabort = () => {
          db.close();
          reject(tx.error ?? req.error);
        };
      }),
  );
}

/** The browser's journal; when IndexedDB is unavailable (private mode) it silently keeps nothing. */
export function indexedDbJournal(): Journal {
  if (typeof indexedDB === "undefined") return { get: async () => null, put: async () => {}, remove: async () => {} };
  return {
    get: async (id) => (await run<JournalEntry | undefined>("readonly", (s) => s.get(id))) ?? null,
    put: async (e) => void (await run("readwrite", (s) => s.put(e))),
    remove: async (id) => void (await run("readwrite", (s) => s.delete(id))),
  };
}

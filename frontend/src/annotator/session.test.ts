import { describe, expect, it } from "vitest";
import { memoryJournal } from "./journal";
import { MaskDocument } from "./maskDocument";
import { AssetSession, type SaveBody } from "./session";
import { capsuleStamp } from "./stamps";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake masks endpoint with the server's rule: base_revision must be the current revision (0 = none). */
function fakeServer() {
  const current = new Map<number, { revision: number; body: SaveBody }>();
  const calls: { assetId: number; body: SaveBody }[] = [];
  let failing = false;
  return {
    current,
    calls,
    fail(on: boolean) {
      failing = on;
    },
    save: async (assetId: number, body: SaveBody) => {
      calls.push({ assetId, body });
      await sleep(1);
      if (failing) throw new Error("network down");
      const cur = current.get(assetId);
      if ((cur?.revision ?? 0) !== body.base_revision) throw Object.assign(new Error("conflict"), { status: 409 });
      const revision = (cur?.revision ?? 0) + 1;
      current.set(assetId, { revision, body });
      return { revision };
    },
  };
}

function paintSomething(doc: MaskDocument, x: number): void {
  doc.begin("Brush");
  const id = doc.createObject(7);
  doc.paint(id, capsuleStamp(x, 5, x + 3, 5, 2, doc.width, doc.height)!);
  doc.commit();
}

function open(server: ReturnType<typeof fakeServer>, journal: ReturnType<typeof memoryJournal>, assetId: number,
  w: number, h: number, revision: number | null = null) {
  return new AssetSession({
    assetId,
    doc: new MaskDocument(w, h),
    revision,
    save: server.save,
    journal,
    debounceMs: 10_000, // only explicit flushes save in these tests
    journalDelayMs: 1,
  });
}

describe("AssetSession", () => {
  it("first save is conditional on 'no revision yet' and later saves on the last revision", async () => {
    const server = fakeServer();
    const s = open(server, memoryJournal(), 1, 40, 30);
    paintSomething(s.doc, 5);
    expect(await s.leave()).toBe(true);
    paintSomething(s.doc, 20);
    expect(await s.leave()).toBe(true);
    expect(server.calls.map((c) => c.body.base_revision)).toEqual([0, 1]);
    expect(s.revision).toBe(2);
  });

  it("a second session racing the first save of an unlabeled asset is refused, not applied", async () => {
    const server = fakeServer();
    const journal = memoryJournal();
    const a = open(server, journal, 1, 40, 30);
    const b = open(server, journal, 1, 40, 30);
    paintSomething(a.doc, 5);
    paintSomething(b.doc, 20);
    expect(await a.leave()).toBe(true);
    expect(await b.leave()).toBe(false);
    expect(server.current.get(1)!.body.masks).toEqual(a.doc.toApi());
    expect(b.hasUnsaved).toBe(true);
    b.keepMine(1); // the user's explicit choice: overwrite revision 1
    await b.saver.flush();
    expect(server.current.get(1)!.body.masks).toEqual(b.doc.toApi());
  });

  it("closing an asset saves its pending edits to that asset only, with its own size", async () => {
    const server = fakeServer();
    const journal = memoryJournal();
    const a = open(server, journal, 1, 500, 375);
    paintSomething(a.doc, 5);
    const closing = a.close();
    const b = open(server, journal, 2, 338, 500); // next asset opens while A still saves
    expect(await closing).toBe(true);
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0].assetId).toBe(1);
    expect(server.calls[0].body.masks[0].rle.size).toEqual([375, 500]);
    paintSomething(a.doc, 30); // a closed session's document no longer saves anything
    await sleep(5);
    expect(server.calls).toHaveLength(1);
    expect(b.hasUnsaved).toBe(false);
    await b.close();
    expect(server.calls).toHaveLength(1);
  });

  it("journals unsaved edits, keeps them when the save fails and forgets them once saved", async () => {
    const server = fakeServer();
    const journal = memoryJournal();
    const s = open(server, journal, 3, 40, 30);
    paintSomething(s.doc, 5);
    await sleep(5);
    await s.journalIdle();
    expect(journal.entries.get(3)?.masks).toEqual(s.doc.toApi());
    expect(journal.entries.get(3)?.baseRevision).toBe(null);
    server.fail(true);
    expect(await s.leave()).toBe(false);
    await s.journalIdle();
    expect(journal.entries.has(3)).toBe(true);
    server.fail(false);
    expect(await s.leave()).toBe(true);
    await s.journalIdle();
    expect(journal.entries.has(3)).toBe(false);
  });

  it("a session restored from the journal starts unsaved and saves against the journal's base", async () => {
    const server = fakeServer();
    const journal = memoryJournal();
    const first = open(server, journal, 4, 40, 30);
    paintSomething(first.doc, 5);
    expect(await first.leave()).toBe(true); // revision 1
    paintSomething(first.doc, 20);
    server.fail(true);
    await first.close(); // crash-like: the save fails, the journal keeps the edits
    server.fail(false);
    const entry = (await journal.get(4))!;
    expect(entry.baseRevision).toBe(1);
    const restored = new AssetSession({
      assetId: 4,
      doc: MaskDocument.fromApi(entry.width, entry.height, entry.masks),
      revision: entry.baseRevision,
      unsaved: true,
      save: server.save,
      journal,
      debounceMs: 10_000,
    });
    expect(restored.hasUnsaved).toBe(true);
    expect(await restored.leave()).toBe(true);
    expect(server.current.get(4)!.revision).toBe(2);
    expect(server.current.get(4)!.body.masks).toEqual(entry.masks);
  });
});

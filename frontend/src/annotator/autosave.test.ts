import { describe, expect, it } from "vitest";
import { Autosaver, type SaveState } from "./autosave";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out");
    await sleep(2);
  }
}

/** A document stand-in: a list of edits and a version counter. */
function fakeDoc() {
  const doc = { version: 0, edits: [] as number[] };
  return {
    doc,
    edit(v: number) {
      doc.edits.push(v);
      doc.version++;
    },
  };
}

describe("Autosaver", () => {
  it("retries transient failures and ends with the server holding the latest edits", async () => {
    const { doc, edit } = fakeDoc();
    const server: number[][] = [];
    let failNext = 2;
    const states: SaveState[] = [];
    const saver = new Autosaver({
      version: () => doc.version,
      payload: () => [...doc.edits],
      save: async (p) => {
        await sleep(5);
        if (failNext > 0) {
          failNext--;
          throw new Error("network down");
        }
        server.push(p);
      },
      debounceMs: 5,
      retryBaseMs: 5,
      onChange: (s) => states.push(s),
    });
    edit(1);
    saver.changed();
    edit(2);
    saver.changed();
    await until(() => saver.state === "saved");
    expect(server[server.length - 1]).toEqual([1, 2]);
    expect(states.filter((s) => s === "error").length).toBe(2);
    expect(saver.hasUnsaved).toBe(false);
  });

  it("saves again when edits arrive during a save", async () => {
    const { doc, edit } = fakeDoc();
    const server: number[][] = [];
    const saver = new Autosaver({
      version: () => doc.version,
      payload: () => [...doc.edits],
      save: async (p) => {
        await sleep(20);
        server.push(p);
      },
      debounceMs: 1,
    });
    edit(1);
    saver.changed();
    await until(() => saver.state === "saving");
    edit(2); // lands while the first request is in flight
    saver.changed();
    expect(saver.state).toBe("saving");
    await until(() => saver.state === "saved" && server.length === 2);
    expect(server).toEqual([[1], [1, 2]]);
  });

  it("flush() saves immediately and reports failure for permanent errors without retrying", async () => {
    const { doc, edit } = fakeDoc();
    let calls = 0;
    const saver = new Autosaver({
      version: () => doc.version,
      payload: () => [...doc.edits],
      save: async () => {
        calls++;
        throw new Error("400 invalid");
      },
      isTransient: () => false,
      debounceMs: 10_000,
      retryBaseMs: 1,
    });
    edit(1);
    saver.changed();
    expect(await saver.flush()).toBe(false);
    await sleep(20);
    expect(calls).toBe(1);
    expect(saver.state).toBe("error");
    expect(saver.hasUnsaved).toBe(true);
    saver.dispose();
  });

  it("a change notification without a new version sends nothing", async () => {
    const { doc } = fakeDoc();
    let calls = 0;
    const saver = new Autosaver({
      version: () => doc.version % 2, // the version seen by the saver is unchanged
      payload: () => null,
      save: async () => {
        calls++;
      },
      debounceMs: 1,
    });
    doc.version = 2;
    saver.changed();
    await sleep(10);
    expect(calls).toBe(0);
    expect(saver.state).toBe("saved");
  });
});

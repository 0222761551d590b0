import { describe, expect, it } from "vitest";
import { History } from "../lib/history";
import { MaskDocument } from "./maskDocument";
import { capsuleStamp, floodStamp, polygonStamp } from "./stamps";

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Class of each pixel (0 = none) — what a semantic mask export would contain. */
function classMap(doc: MaskDocument): Uint32Array {
  const owners = doc.ownerMap();
  const out = new Uint32Array(owners.length);
  for (let i = 0; i < owners.length; i++) out[i] = owners[i] ? doc.get(owners[i])!.classId : 0;
  return out;
}

describe("History", () => {
  it("undoes and redoes in order and drops redo on a new command", () => {
    const h = new History();
    const log: number[] = [];
    let value = 0;
    const set = (from: number, to: number) => ({
      label: `${from}->${to}`,
      undo: () => {
        value = from;
        log.push(from);
      },
      redo: () => {
        value = to;
        log.push(to);
      },
    });
    value = 1;
    h.push(set(0, 1));
    value = 2;
    h.push(set(1, 2));
    expect(h.undo()?.label).toBe("1->2");
    expect(value).toBe(1);
    expect(h.undo()?.label).toBe("0->1");
    expect(value).toBe(0);
    expect(h.undo()).toBeNull();
    expect(h.redo()?.label).toBe("0->1");
    expect(value).toBe(1);
    h.push(set(1, 5));
    expect(h.canRedo).toBe(false);
    expect(log).toEqual([1, 0, 1]);
  });

  it("keeps at most `limit` commands", () => {
    const h = new History(3);
    for (let i = 0; i < 5; i++) h.push({ label: String(i), undo: () => {}, redo: () => {} });
    expect(h.size).toBe(3);
    expect(h.undo()?.label).toBe("4");
  });
});

describe("stamps", () => {
  it("rasterizes a disc by pixel centres", () => {
    const s = capsuleStamp(5, 5, 5, 5, 2, 20, 20)!;
    let area = 0;
    for (const v of s.data) area += v;
    // Pixel centres within distance 2 of (5,5): offsets (±0.5, ±1.5) etc. -> 12 pixels.
    expect(area).toBe(12);
    expect(s.box).toEqual({ x0: 3, y0: 3, x1: 8, y1: 8 });
  });

  it("fills a polygon with the even-odd rule", () => {
    const s = polygonStamp([[2, 2], [8, 2], [8, 6], [2, 6]], 20, 20)!;
    let area = 0;
    for (const v of s.data) area += v;
    expect(area).toBe(6 * 4);
  });

  it("flood-fills a region bounded by other labels", () => {
    const w = 10;
    const h = 10;
    const labels = new Uint32Array(w * h);
    // A ring of label 1 around the 4x4 hole at (3..6, 3..6).
    for (let y = 2; y < 8; y++) for (let x = 2; x < 8; x++) labels[y * w + x] = 1;
    for (let y = 3; y < 7; y++) for (let x = 3; x < 7; x++) labels[y * w + x] = 0;
    const s = floodStamp(labels, w, h, 4, 4)!;
    expect(s.box).toEqual({ x0: 3, y0: 3, x1: 7, y1: 7 });
    expect(s.data.every((v) => v === 1)).toBe(true);
    const outside = floodStamp(labels, w, h, 0, 0)!;
    let area = 0;
    for (const v of outside.data) area += v;
    expect(area).toBe(100 - 36);
  });

  it("fill stops at image colour edges within the tolerance and at mask outlines", () => {
    // 20 x 10 image: left half dark (value 10..20, noisy), right half bright (200); no labels.
    const w = 20;
    const h = 10;
    const rgba = new Uint8ClampedArray(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const v = i % w < 10 ? 10 + (i % 3) * 5 : 200;
      rgba.set([v, v, v, 255], i * 4);
    }
    const labels = new Uint32Array(w * h);
    const left = floodStamp(labels, w, h, 2, 2, { rgba, tolerance: 16 })!;
    expect(left.box).toEqual({ x0: 0, y0: 0, x1: 10, y1: 10 });
    expect(left.data.every((v) => v === 1)).toBe(true);
    // Too tight a tolerance leaves out the noisy neighbours; the widest one ignores colour.
    const tight = floodStamp(labels, w, h, 2, 2, { rgba, tolerance: 0 })!;
    expect(tight.data.reduce((a, v) => a + v, 0)).toBeLessThan(50);
    const all = floodStamp(labels, w, h, 2, 2, { rgba, tolerance: 255 })!;
    expect(all.box).toEqual({ x0: 0, y0: 0, x1: 20, y1: 10 });
    // A labeled column cuts the bright half: the fill stays on its side.
    for (let y = 0; y < h; y++) labels[y * w + 15] = 3;
    const right = floodStamp(labels, w, h, 17, 5, { rgba, tolerance: 16 })!;
    expect(right.box).toEqual({ x0: 16, y0: 0, x1: 20, y1: 10 });
  });
});

describe("MaskDocument", () => {
  it("paints, keeps objects disjoint, erases, and round-trips through the API format", () => {
    const doc = new MaskDocument(40, 30);
    doc.begin("Brush");
    const a = doc.createObject(7);
    doc.paint(a, capsuleStamp(5, 5, 25, 5, 3, 40, 30)!);
    doc.commit();
    doc.begin("Polygon");
    const b = doc.createObject(9);
    doc.paint(b, polygonStamp([[10, 0], [20, 0], [20, 20], [10, 20]], 40, 30)!);
    doc.commit();
    // b claimed the middle of a's stroke.
    expect(doc.get(a)!.at(15, 5)).toBe(0);
    expect(doc.get(b)!.at(15, 5)).toBe(1);
    expect(doc.get(a)!.at(6, 5)).toBe(1);
    doc.begin("Eraser");
    doc.erase(capsuleStamp(15, 10, 15, 10, 2, 40, 30)!);
    doc.commit();
    expect(doc.get(b)!.at(15, 10)).toBe(0);
    const before = classMap(doc);
    const again = MaskDocument.fromApi(40, 30, doc.toApi());
    expect(Array.from(classMap(again))).toEqual(Array.from(before));
    expect(again.objects.map((o) => o.classId)).toEqual([7, 9]);
  });

  it("undo/redo restore every intermediate state exactly (random edits)", () => {
    const W = 64;
    const H = 48;
    const rand = rng(42);
    const doc = new MaskDocument(W, H);
    const states: Uint32Array[] = [classMap(doc)];
    const counts: number[] = [0];
    for (let step = 0; step < 60; step++) {
      const kind = rand();
      const x = rand() * W;
      const y = rand() * H;
      const objs = doc.objects;
      if (kind < 0.35 || objs.length === 0) {
        doc.begin("Brush");
        const id = doc.createObject(1 + Math.floor(rand() * 4));
        doc.paint(id, capsuleStamp(x, y, x + rand() * 20 - 10, y + rand() * 20 - 10, 1 + rand() * 6, W, H)!);
        doc.commit();
      } else if (kind < 0.55) {
        const id = objs[Math.floor(rand() * objs.length)].id;
        doc.begin("Brush more");
        for (let k = 0; k < 3; k++) {
          const s = capsuleStamp(x + k * 3, y, x + k * 3 + 2, y + 4, 2 + rand() * 4, W, H);
          if (s) doc.paint(id, s);
        }
        doc.commit();
      } else if (kind < 0.7) {
        doc.begin("Eraser");
        const s = capsuleStamp(x, y, x + 8, y + 3, 1 + rand() * 8, W, H);
        if (s) doc.erase(s);
        doc.commit();
      } else if (kind < 0.8) {
        doc.begin("Fill");
        const id = doc.createObject(2);
        const s = floodStamp(doc.ownerMap(), W, H, Math.floor(x), Math.floor(y));
        if (s) doc.paint(id, s);
        doc.commit();
      } else if (kind < 0.9) {
        doc.deleteObject(objs[Math.floor(rand() * objs.length)].id);
      } else {
        doc.setObjectClass(objs[Math.floor(rand() * objs.length)].id, 5);
      }
      states.push(classMap(doc));
      counts.push(doc.objects.length);
    }
    const steps = doc.history.size;
    expect(steps).toBeGreaterThan(40);
    // Walk back: each undo must land exactly on an earlier recorded state, in order.
    const seen: Uint32Array[] = [];
    while (doc.undo()) seen.push(classMap(doc));
    expect(doc.objects.length).toBe(0);
    expect(classMap(doc).every((v) => v === 0)).toBe(true);
    // And forward again to the final state.
    while (doc.redo());
    expect(Array.from(classMap(doc))).toEqual(Array.from(states[states.length - 1]));
    expect(doc.objects.length).toBe(counts[counts.length - 1]);
    // Each state seen while undoing is one of the recorded states (no invented pixels).
    const key = (m: Uint32Array) => Array.from(m).join(",");
    const recorded = new Set(states.map(key));
    for (const s of seen) expect(recorded.has(key(s))).toBe(true);
  });

  it("a stroke of many pointer moves equals one capsule, with a tight box after commit", () => {
    const doc = new MaskDocument(500, 300);
    doc.begin("Brush");
    const id = doc.createObject(1);
    for (let i = 0; i < 100; i++) doc.paint(id, capsuleStamp(20 + i * 4, 150, 24 + i * 4, 150 - i, 6, 500, 300)!);
    doc.commit();
    // Expected: the union of the same stamps in a plain full-size array (no boxes, no growth).
    const expected = new Uint32Array(500 * 300);
    for (let i = 0; i < 100; i++) {
      const s = capsuleStamp(20 + i * 4, 150, 24 + i * 4, 150 - i, 6, 500, 300)!;
      const bw = s.box.x1 - s.box.x0;
      for (let y = s.box.y0; y < s.box.y1; y++)
        for (let x = s.box.x0; x < s.box.x1; x++) if (s.data[(y - s.box.y0) * bw + x - s.box.x0]) expected[y * 500 + x] = 1;
    }
    const o = doc.get(id)!;
    expect(o.box).toEqual(o.tightBox());
    expect(Array.from(classMap(doc))).toEqual(Array.from(expected));
    let area = 0;
    for (let y = 0; y < 300; y++) for (let x = 0; x < 500; x++) area += o.at(x, y);
    expect(area).toBe(o.area());
    expect(o.box.x0).toBeLessThanOrEqual(14);
    expect(o.box.x1).toBeGreaterThanOrEqual(420);
  });

  it("undo of a stroke restores the object it cut into", () => {
    const doc = new MaskDocument(20, 20);
    doc.begin("a");
    const a = doc.createObject(1);
    doc.paint(a, polygonStamp([[0, 0], [20, 0], [20, 20], [0, 20]], 20, 20)!);
    doc.commit();
    const full = classMap(doc);
    doc.begin("b");
    const b = doc.createObject(2);
    doc.paint(b, capsuleStamp(10, 10, 10, 10, 4, 20, 20)!);
    doc.commit();
    expect(doc.get(a)!.at(10, 10)).toBe(0);
    doc.undo();
    expect(doc.get(b)).toBeUndefined();
    expect(Array.from(classMap(doc))).toEqual(Array.from(full));
    doc.redo();
    expect(doc.get(b)!.at(10, 10)).toBe(1);
    expect(doc.get(a)!.at(10, 10)).toBe(0);
  });

  it("counts versions and reports dirty regions, not the whole frame, for brush strokes", () => {
    const doc = new MaskDocument(4000, 3000);
    const dirty: (object | null)[] = [];
    doc.subscribe((c) => dirty.push(c.dirty));
    const v0 = doc.version;
    doc.begin("Brush");
    const id = doc.createObject(1);
    doc.paint(id, capsuleStamp(2000, 1500, 2010, 1500, 5, 4000, 3000)!);
    doc.commit();
    expect(doc.version).toBe(v0 + 1);
    const last = dirty[dirty.length - 1] as { x0: number; x1: number };
    expect(last.x1 - last.x0).toBeLessThan(40);
    expect(doc.get(id)!.data.length).toBeLessThan(40 * 40);
  });
});

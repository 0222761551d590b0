import { describe, expect, it } from "vitest";
import fixtures from "../__fixtures__/rle.json";
import {
  countsArea,
  countsBox,
  countsToString,
  decodeToBoxBitmap,
  decodeToColumnMajor,
  decodeToRowMajor,
  encodeBoxBitmap,
  encodeColumnMajor,
  encodeRowMajor,
  stringToCounts,
} from "./rle";

interface Case {
  name: string;
  size: [number, number];
  counts: string;
  area: number;
  bbox: [number, number, number, number];
  bits?: string;
  uncompressed?: number[];
  rects?: [number, number, number, number][];
}

const cases = (fixtures as unknown as { cases: Case[] }).cases;

/** Row-major H x W mask of a fixture case, rebuilt from its stored form. */
function rowMajorMask(c: Case): Uint8Array {
  const [h, w] = c.size;
  const out = new Uint8Array(h * w);
  if (c.bits !== undefined) {
    const bytes = Buffer.from(c.bits, "base64");
    for (let i = 0; i < h * w; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  } else {
    for (const [x0, y0, x1, y1] of c.rects!) {
      for (let y = y0; y < y1; y++) out.fill(1, y * w + x0, y * w + x1);
    }
  }
  return out;
}

function toColumnMajor(rm: Uint8Array, h: number, w: number): Uint8Array {
  const cm = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) cm[x * h + y] = rm[y * w + x];
  return cm;
}

describe("COCO RLE against pycocotools fixtures", () => {
  it("has fixtures", () => {
    expect(cases.length).toBeGreaterThan(10);
  });

  for (const c of cases) {
    describe(c.name, () => {
      const [h, w] = c.size;
      const rm = rowMajorMask(c);

      it("encodes to the same compressed string", () => {
        const counts = encodeRowMajor(rm, h, w);
        if (c.uncompressed) expect(counts).toEqual(c.uncompressed);
        expect(countsToString(counts)).toBe(c.counts);
        expect(countsToString(encodeColumnMajor(toColumnMajor(rm, h, w)))).toBe(c.counts);
      });

      it("decodes the compressed string to the same mask", () => {
        const counts = stringToCounts(c.counts);
        if (c.uncompressed) expect(counts).toEqual(c.uncompressed);
        expect(Buffer.from(decodeToRowMajor(counts, h, w)).equals(Buffer.from(rm))).toBe(true);
        if (h * w <= 200_000) {
          expect(Array.from(decodeToColumnMajor(counts, h, w))).toEqual(Array.from(toColumnMajor(rm, h, w)));
        }
      });

      it("gives pycocotools' area and bbox", () => {
        const counts = stringToCounts(c.counts);
        expect(countsArea(counts)).toBe(c.area);
        const box = countsBox(counts, h, w);
        if (c.area === 0) expect(box).toBeNull();
        else expect([box!.x0, box!.y0, box!.x1 - box!.x0, box!.y1 - box!.y0]).toEqual(c.bbox);
      });

      it("round-trips through a box bitmap", () => {
        const bm = decodeToBoxBitmap(stringToCounts(c.counts), h, w);
        if (c.area === 0) {
          expect(bm).toBeNull();
          return;
        }
        expect(countsToString(encodeBoxBitmap(bm!, h, w))).toBe(c.counts);
      });
    });
  }
});

describe("box bitmaps with padding", () => {
  it("encodes a box larger than the set pixels like the full mask", () => {
    const h = 6;
    const w = 5;
    const rm = new Uint8Array(h * w);
    rm[2 * w + 1] = 1;
    rm[5 * w + 3] = 1; // touches the bottom edge: the run must end before the next column's top
    rm[0 * w + 2] = 1;
    const box = { x0: 1, y0: 0, x1: 4, y1: 6 };
    const data = new Uint8Array(3 * 6);
    for (let y = 0; y < 6; y++) for (let x = 1; x < 4; x++) data[y * 3 + (x - 1)] = rm[y * w + x];
    expect(encodeBoxBitmap({ box, data }, h, w)).toEqual(encodeColumnMajor(toColumnMajor(rm, h, w)));
  });

  it("handles a mask that starts with a set pixel", () => {
    expect(encodeColumnMajor([1, 1, 0, 1])).toEqual([0, 2, 1, 1]);
    expect(stringToCounts(countsToString([0, 2, 1, 1]))).toEqual([0, 2, 1, 1]);
  });

  it("rejects counts that do not cover the image", () => {
    expect(() => decodeToRowMajor([3, 2], 2, 3)).toThrow();
  });
});

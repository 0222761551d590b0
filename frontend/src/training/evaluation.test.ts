import { describe, expect, it } from "vitest";
import type { SamplePrediction } from "../api/training";
import { countsToString, encodeRowMajor } from "../lib/rle";
import { paintLabels, sampleClassMap, sampleMasks, truthClassMap } from "./evaluation";

const H = 4;
const W = 5;

function rle(bits: number[]) {
  return { size: [H, W] as [number, number], counts: countsToString(encodeRowMajor(Uint8Array.from(bits), H, W)) };
}

// label 1 in the top-left 2x2, label 3 on the last column
const one = Array.from({ length: H * W }, (_, i) => (Math.floor(i / W) < 2 && i % W < 2 ? 1 : 0));
const three = Array.from({ length: H * W }, (_, i) => (i % W === W - 1 ? 1 : 0));

describe("sample predictions", () => {
  it("reads the list format and the keyed format alike", () => {
    const list: SamplePrediction = { index: 0, size: [H, W], masks: [{ label: 1, rle: rle(one) }, { label: 3, rle: rle(three) }] };
    const keyed: SamplePrediction = { index: 0, size: [H, W], masks: { "1": rle(one), "3": rle(three) } };
    expect(sampleMasks(list).map(([l]) => l)).toEqual([1, 3]);
    expect(sampleMasks(keyed).map(([l]) => l)).toEqual([1, 3]);
    const expected = one.map((v, i) => (three[i] ? 3 : v));
    expect([...sampleClassMap(list)]).toEqual(expected);
    expect([...sampleClassMap(keyed)]).toEqual(expected);
  });

  it("treats missing masks as nothing predicted", () => {
    expect(sampleMasks({ index: 0, size: [H, W], masks: [] })).toEqual([]);
    expect([...sampleClassMap({ index: 0, size: [H, W], masks: [] })]).toEqual(new Array(H * W).fill(0));
  });
});

describe("ground truth and painting", () => {
  it("rasterises an asset's masks as model labels (class index + 1)", () => {
    const masks = [{ class_id: 70, rle: rle(one) }, { class_id: 90, rle: rle(three) }, { class_id: 5, rle: rle(three) }];
    const labelOf = new Map([[70, 1], [90, 3]]); // class 5 no longer exists: skipped
    const expected = one.map((v, i) => (three[i] ? 3 : v));
    expect([...truthClassMap(masks, H, W, labelOf)!]).toEqual(expected);
    expect(truthClassMap(masks, H + 1, W, labelOf)).toBeNull(); // another size: not comparable
  });

  it("fills half-transparent or outlines region edges opaque", () => {
    // a 3x3 block of label 2 in a 5x5 map: its centre is not an edge
    const labels = new Uint8Array(25);
    for (const y of [1, 2, 3]) for (const x of [1, 2, 3]) labels[y * 5 + x] = 2;
    const fill = paintLabels(labels, 5, 5, () => [10, 20, 30], "fill");
    const outline = paintLabels(labels, 5, 5, () => [10, 20, 30], "outline");
    const alpha = (px: Uint8ClampedArray, x: number, y: number) => px[(y * 5 + x) * 4 + 3];
    expect(alpha(fill, 2, 2)).toBe(140);
    expect(alpha(fill, 0, 0)).toBe(0);
    expect(alpha(outline, 2, 2)).toBe(0);
    expect(alpha(outline, 1, 1)).toBe(255);
    expect([...outline.slice((1 * 5 + 2) * 4, (1 * 5 + 2) * 4 + 3)]).toEqual([10, 20, 30]);
  });
});

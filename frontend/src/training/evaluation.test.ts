import { describe, expect, it } from "vitest";
import type { SamplePrediction } from "../api/training";
import { countsToString, encodeRowMajor } from "../lib/rle";
import { sampleClassMap, sampleMasks } from "./evaluation";

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

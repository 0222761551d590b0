/**
 * Reading eval points: the predicted masks of a validation sample (label -> COCO RLE) and
 * the class map they paint. Samples come as `masks: [{label, rle}]` (current server) or as
 * an object keyed by label (earlier builds); both read the same here.
 */
import type { SamplePrediction } from "../api/training";
import type { CocoRle } from "../lib/rle";
import { decodeToRowMajor, stringToCounts } from "../lib/rle";

export function sampleMasks(sample: SamplePrediction): [number, CocoRle][] {
  const masks = sample.masks as unknown;
  if (Array.isArray(masks)) {
    return masks
      .filter((m): m is { label: number; rle: CocoRle } => !!m && typeof m === "object" && "rle" in m)
      .map((m) => [Number(m.label), m.rle]);
  }
  if (masks && typeof masks === "object") {
    return Object.entries(masks as Record<string, CocoRle>).map(([k, rle]) => [Number(k), rle]);
  }
  return [];
}

/** (H*W) row-major model labels of a sample (0 where no label was predicted). */
export function sampleClassMap(sample: SamplePrediction): Uint8Array {
  const [h, w] = sample.size;
  const out = new Uint8Array(h * w);
  for (const [label, rle] of sampleMasks(sample)) {
    const bits = decodeToRowMajor(stringToCounts(rle.counts), h, w);
    for (let i = 0; i < bits.length; i++) if (bits[i]) out[i] = label;
  }
  return out;
}

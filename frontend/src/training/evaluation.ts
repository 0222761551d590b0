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

/**
 * (H*W) row-major model labels of an asset's current masks (ground truth): class id ->
 * `labelOf` (class.index + 1). Null when the masks are not at the sample's size.
 */
export function truthClassMap(
  masks: readonly { class_id: number; rle: CocoRle }[],
  h: number,
  w: number,
  labelOf: ReadonlyMap<number, number>,
): Uint8Array | null {
  const out = new Uint8Array(h * w);
  for (const m of masks) {
    if (m.rle.size[0] !== h || m.rle.size[1] !== w) return null;
    const label = labelOf.get(m.class_id);
    if (!label) continue;
    const bits = decodeToRowMajor(stringToCounts(m.rle.counts), h, w);
    for (let i = 0; i < bits.length; i++) if (bits[i]) out[i] = label;
  }
  return out;
}

/**
 * RGBA pixels for a label map: "fill" paints every labelled pixel half-transparent, "outline"
 * paints opaque only the labelled pixels on a region's edge (a 4-neighbour with another label).
 */
export function paintLabels(
  labels: Uint8Array,
  h: number,
  w: number,
  colorOf: (label: number) => [number, number, number],
  style: "fill" | "outline",
): Uint8ClampedArray<ArrayBuffer> {
  const rgba = new Uint8ClampedArray(h * w * 4);
  const colors = new Map<number, [number, number, number]>();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const label = labels[i];
      if (!label) continue;
      if (style === "outline") {
        const edge =
          x === 0 || x === w - 1 || y === 0 || y === h - 1 ||
          labels[i - 1] !== label || labels[i + 1] !== label || labels[i - w] !== label || labels[i + w] !== label;
        if (!edge) continue;
      }
      let c = colors.get(label);
      if (!c) colors.set(label, (c = colorOf(label)));
      rgba[i * 4] = c[0];
      rgba[i * 4 + 1] = c[1];
      rgba[i * 4 + 2] = c[2];
      rgba[i * 4 + 3] = style === "fill" ? 140 : 255;
    }
  }
  return rgba;
}

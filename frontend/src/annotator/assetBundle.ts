/**
 * What the annotator needs to open one asset, loaded as one unit: its metadata, its decoded
 * image, its saved masks (checked against the image's size) and any journaled edits. The page
 * renders an asset only from a bundle of that asset, so a previous asset's image or masks can
 * never meet the next one's (the Prev/Next blank-page and stale-stage bugs).
 */
import { api } from "../api/client";
import type { Asset, MaskEntry } from "../api/types";
import { indexedDbJournal, type Journal, type JournalEntry } from "./journal";

export interface AssetBundle {
  asset: Asset;
  image: HTMLImageElement;
  width: number;
  height: number;
  masks: MaskEntry[];
  revision: number | null;
  /** Unsaved edits kept on this device that differ from the saved masks, if any. */
  journal: JournalEntry | null;
}

export const journal: Journal = indexedDbJournal();

/** Saves of assets the annotator just left, still in flight: reopening one waits for its save. */
const closing = new Map<number, Promise<unknown>>();

export function registerClosing(assetId: number, done: Promise<unknown>): void {
  const p = done.catch(() => {}).finally(() => {
    if (closing.get(assetId) === p) closing.delete(assetId);
  });
  closing.set(assetId, p);
}

function loadImage(url: string, signal?: AbortSignal): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.decoding = "async";
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("The image could not be loaded."));
    signal?.addEventListener("abort", () => {
      img.src = "";
      reject(new DOMException("aborted", "AbortError"));
    });
    img.src = url;
  });
}

export async function loadAssetBundle(assetId: number, signal?: AbortSignal): Promise<AssetBundle> {
  await closing.get(assetId);
  const [asset, saved, kept] = await Promise.all([
    api<Asset>(`/assets/${assetId}/`, { signal }),
    api<{ masks: MaskEntry[]; revision?: number | null }>(`/assets/${assetId}/masks/`, { signal }),
    journal.get(assetId).catch(() => null),
  ]);
  const image = await loadImage(asset.file_url, signal);
  const width = image.naturalWidth || asset.width;
  const height = image.naturalHeight || asset.height;
  for (const m of saved.masks) {
    const [h, w] = m.rle.size;
    if (h !== height || w !== width)
      throw new Error(`The saved masks of ${asset.name} are ${w}×${h} but its image is ${width}×${height}.`);
  }
  let entry = kept;
  if (entry && (entry.width !== width || entry.height !== height || JSON.stringify(entry.masks) === JSON.stringify(saved.masks))) {
    await journal.remove(assetId).catch(() => {});
    entry = null;
  }
  return { asset, image, width, height, masks: saved.masks, revision: saved.revision ?? null, journal: entry };
}

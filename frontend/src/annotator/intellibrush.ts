/**
 * IntelliBrush client: sends click/box prompts to the server and returns the proposed mask as a
 * box bitmap. Points are image pixel coordinates [x, y, label] with label 1 = include, 0 = exclude;
 * the box is [x0, y0, x1, y1] in pixels.
 */
import { api } from "../api/client";
import type { IntelliBrushRequest, IntelliBrushResult } from "../api/types";
import { rleToBoxBitmap, type BoxBitmap } from "../lib/rle";

export interface Proposal {
  bitmap: BoxBitmap | null;
  score: number;
  method: string;
  message?: string;
}

export async function requestProposal(
  assetId: number,
  prompt: { points: [number, number, number][]; box?: [number, number, number, number] },
  signal?: AbortSignal,
): Promise<Proposal> {
  const body: IntelliBrushRequest = { points: prompt.points };
  if (prompt.box) body.box = prompt.box;
  const res = await api<IntelliBrushResult>(`/assets/${assetId}/intellibrush/`, { method: "POST", body, signal });
  return {
    bitmap: rleToBoxBitmap(res.rle),
    score: res.score,
    method: res.method,
    message: res.message ?? res.hint ?? undefined,
  };
}

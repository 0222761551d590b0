/**
 * IntelliBrush client: turns click/box prompts into a proposed mask (a box bitmap).
 *
 * Points are image pixel coordinates [x, y, label] with label 1 = include, 0 = exclude; the box
 * is [x0, y0, x1, y1] in pixels.
 *
 * Three ways to answer, chosen per asset by `IntelliBrushSession.prepare()`:
 * - "browser": the asset's SAM embedding is fetched once and every click is decoded here with
 *   onnxruntime-web (`samDecoder.ts`);
 * - "server": SAM runs on the server (`POST /assets/{id}/intellibrush/`), used when the decoder
 *   cannot run in this browser (the ONNX graph or the wasm runtime failed to load, or the
 *   embedding is not ready yet), or when this browser is slow: after the first few in-browser
 *   decodes, if their median is above SLOW_DECODE_MS the next SERVER_TRIALS clicks are answered
 *   by the server and timed, and the session stays with the server when its fastest round trip
 *   was at most half the browser's median (on a 2-core machine ViT-B takes 130-500 ms per
 *   click in wasm, the server ~50 ms in ONNX Runtime).
 *   `?ib=browser` in the page URL pins in-browser decoding (benchmarks); `?ib=webgpu` and
 *   `?ib=wasm` pin it too and force that execution provider (otherwise `chooseProvider` picks
 *   WebGPU on a hardware GPU adapter, else wasm; the panel names the one in use);
 * - "fallback": the server has no SAM weights (409 `sam_unavailable`); its classical fallback
 *   answers, and the UI says how to install weights.
 * Consecutive clicks refine the previous proposal: its low-res logits go back in as the
 * decoder's mask input (both in the browser and on the server, so both give the same mask).
 */
import { api, ApiError } from "../api/client";
import type { IntelliBrushRequest, IntelliBrushResult } from "../api/types";
import { rleToBoxBitmap, type BoxBitmap } from "../lib/rle";
import {
  base64ToHalfBits,
  fetchEmbedding,
  getDecoder,
  halfBitsToBase64,
  halfToFloat,
  type DecoderProvider,
  type SamDecoder,
  type SamEmbedding,
} from "./samDecoder";

export type IbMethod = "loading" | "browser" | "server" | "fallback";

/** Which method answers clicks, and why (for the UI). */
export interface IbMode {
  method: IbMethod;
  /** Short label shown in the IntelliBrush panel. */
  label: string;
  /** Why this method (e.g. the decoder error), or how to get SAM (install hint). */
  detail?: string;
}

export interface Proposal {
  bitmap: BoxBitmap | null;
  score: number;
  /** "sam (browser)", "sam" (server) or "fallback". */
  method: string;
  message?: string;
  /** Milliseconds spent producing it (decoder run, or the whole request). */
  ms?: number;
}

export type Prompt = { points: [number, number, number][]; box?: [number, number, number, number] };

const LABELS: Record<IbMethod, string> = {
  loading: "loading SAM…",
  browser: "SAM (in browser)",
  server: "SAM (server)",
  fallback: "fallback: no SAM weights",
};

function mode(method: IbMethod, detail?: string): IbMode {
  return { method, label: LABELS[method], detail };
}

/** One POST to the server endpoint (SAM on the server, or its fallback). */
export async function requestProposal(
  assetId: number,
  prompt: Prompt & { maskInput?: string | null; returnLogits?: boolean },
  signal?: AbortSignal,
): Promise<IntelliBrushResult> {
  const body: IntelliBrushRequest & { return_logits?: boolean } = { points: prompt.points };
  if (prompt.box) body.box = prompt.box;
  if (prompt.maskInput) body.mask_input = prompt.maskInput;
  if (prompt.returnLogits) body.return_logits = true;
  return api<IntelliBrushResult>(`/assets/${assetId}/intellibrush/`, { method: "POST", body, signal });
}

/** In-browser decodes slower than this (median) make the session compare with the server. */
export const SLOW_DECODE_MS = 150;
/** In-browser decodes measured before that comparison. */
export const DECODES_BEFORE_CHECK = 3;
/** Server clicks timed for it (the fastest counts: the first may warm the server). */
export const SERVER_TRIALS = 2;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Whether clicks should go to the server: this browser decodes slowly and one server
 * round trip (whole request) took at most half its median decode. */
export function preferServer(browserDecodeMs: number[], serverRoundTripMs: number): boolean {
  const browser = median(browserDecodeMs);
  return browser > SLOW_DECODE_MS && serverRoundTripMs * 2 <= browser;
}

/** The page's `?ib=`: "browser" pins in-browser decoding; "webgpu" / "wasm" also force the provider. */
function ibParam(): string | null {
  return typeof location !== "undefined" ? new URLSearchParams(location.search).get("ib") : null;
}

function pinnedToBrowser(): boolean {
  return ["browser", "webgpu", "wasm"].includes(ibParam() ?? "");
}

/** Statistics kept for tests and benchmarks (window.__tessera.intellibrush()). */
export interface IbStats {
  method: IbMethod;
  /** Decoder-only milliseconds of each in-browser decode (session.run + thresholding). */
  decodeMs: number[];
  /** The session.run part of decodeMs (the rest is thresholding to a bitmap). */
  decodeRunMs: number[];
  /** Base64 fp16 mask input used by the last proposal (null: none), the server's format. */
  lastMaskInput: string | null;
  embeddingMs: number | null;
  decoderLoadMs: number | null;
  threads: number | null;
  /** The in-browser decoder's execution provider and, for WebGPU, its adapter. */
  provider: DecoderProvider | null;
  adapter: string | null;
  /** The fastest server click timed against slow in-browser decoding (ms), if any. */
  serverCheckMs: number | null;
}

/** Per-asset IntelliBrush state: how clicks are answered, and the logits to refine. */
export class IntelliBrushSession {
  private prepared: Promise<IbMode> | null = null;
  private emb: SamEmbedding | null = null;
  private decoder: SamDecoder | null = null;
  /** fp16 bits of the last SAM proposal's low-res logits (refinement input), or null. */
  private prevLowRes: Uint16Array | null = null;
  mode: IbMode = mode("loading");
  readonly stats: IbStats = {
    method: "loading",
    decodeMs: [],
    decodeRunMs: [],
    lastMaskInput: null,
    embeddingMs: null,
    decoderLoadMs: null,
    threads: null,
    provider: null,
    adapter: null,
    serverCheckMs: null,
  };
  private speedChecked = pinnedToBrowser();

  constructor(
    readonly assetId: number,
    private readonly onMode: (m: IbMode) => void = () => {},
  ) {}

  private setMode(m: IbMode): IbMode {
    this.mode = m;
    this.stats.method = m.method;
    this.onMode(m);
    return m;
  }

  /** Decide the method once (fetch the embedding and the decoder); safe to call repeatedly. */
  prepare(): Promise<IbMode> {
    if (!this.prepared) this.prepared = this.doPrepare();
    return this.prepared;
  }

  private async doPrepare(): Promise<IbMode> {
    this.setMode(mode("loading"));
    let emb: SamEmbedding;
    try {
      const t0 = performance.now();
      emb = await fetchEmbedding(this.assetId);
      this.stats.embeddingMs = performance.now() - t0;
    } catch (e) {
      if (e instanceof ApiError && e.code === "sam_unavailable") {
        const install = (e.details as { install?: string } | null)?.install;
        return this.setMode(mode("fallback", install ?? e.message));
      }
      // Not ready yet, or a transient error: the server answers (it waits for the embedding);
      // the next asset load tries the browser again.
      return this.setMode(mode("server", `Embedding not available in the browser: ${(e as Error).message}`));
    }
    try {
      const t0 = performance.now();
      this.decoder = await getDecoder(emb.decoderUrl, ibParam());
      this.stats.decoderLoadMs = performance.now() - t0;
      this.stats.threads = this.decoder.threads;
      this.stats.provider = this.decoder.provider;
      this.stats.adapter = this.decoder.adapter;
    } catch (e) {
      return this.setMode(mode("server", `The in-browser decoder could not load: ${(e as Error).message}`));
    }
    this.emb = emb;
    return this.setMode(mode("browser", `${emb.modelType}, ${this.decoder.runtime}`));
  }

  /** Server clicks still to answer (and time) before deciding between browser and server. */
  private trialsLeft = 0;
  private trialMs: number[] = [];

  /** Once in-browser decoding turns out slow, the next SERVER_TRIALS clicks go to the server
   * (real answers, no duplicate work; the first may warm the server, so the fastest counts). */
  private startTrialIfSlow(): void {
    const decodes = this.stats.decodeMs;
    if (this.speedChecked || decodes.length < DECODES_BEFORE_CHECK || median(decodes) <= SLOW_DECODE_MS) return;
    this.speedChecked = true;
    this.trialsLeft = SERVER_TRIALS;
  }

  private endTrial(): void {
    const serverMs = Math.min(...this.trialMs);
    this.stats.serverCheckMs = serverMs;
    const decodes = this.stats.decodeMs;
    if (this.mode.method === "browser" && preferServer(decodes, serverMs)) {
      const here = Math.round(median(decodes));
      this.setMode(mode("server", `the server answers a click in ${Math.round(serverMs)} ms; this browser decodes in ${here} ms`));
    }
  }

  /** Forget the previous proposal (after accept or discard): the next click starts afresh. */
  reset(): void {
    this.prevLowRes = null;
  }

  /** The proposal for `prompt`, refining the previous one of this prompt session. */
  async propose(prompt: Prompt, signal?: AbortSignal): Promise<Proposal> {
    await this.prepare();
    if (signal?.aborted) throw new DOMException("aborted", "AbortError");
    const maskBits = this.prevLowRes;
    this.stats.lastMaskInput = maskBits ? halfBitsToBase64(maskBits) : null;
    const trial = this.mode.method === "browser" && this.trialsLeft > 0;
    if (this.mode.method === "browser" && this.decoder && this.emb && !trial) {
      try {
        const r = await this.decoder.decode(this.emb, prompt, maskBits ? halfToFloat(maskBits) : null);
        this.stats.decodeMs.push(r.timing.totalMs);
        this.stats.decodeRunMs.push(r.timing.runMs);
        if (signal?.aborted) throw new DOMException("aborted", "AbortError");
        this.prevLowRes = r.lowResHalf;
        this.startTrialIfSlow();
        return { bitmap: r.bitmap, score: r.score, method: "sam (browser)", ms: r.timing.totalMs };
      } catch (e) {
        if ((e as Error).name === "AbortError") throw e;
        this.decoder = null;
        this.setMode(mode("server", `The in-browser decoder failed: ${(e as Error).message}`));
      }
    }
    const t0 = performance.now();
    const sam = this.mode.method !== "fallback";
    const res = await requestProposal(
      this.assetId,
      { ...prompt, maskInput: sam ? this.stats.lastMaskInput : null, returnLogits: sam },
      signal,
    );
    if (res.method === "fallback" && this.mode.method !== "fallback") this.setMode(mode("fallback", res.hint ?? undefined));
    if (trial) {
      this.trialMs.push(performance.now() - t0);
      if (--this.trialsLeft === 0) this.endTrial();
    }
    const logits = (res as { low_res_logits?: { data: string } | null }).low_res_logits;
    this.prevLowRes = logits ? base64ToHalfBits(logits.data) : null;
    return {
      bitmap: rleToBoxBitmap(res.rle),
      score: res.score,
      method: res.method,
      message: res.message ?? undefined,
      ms: performance.now() - t0,
    };
  }
}

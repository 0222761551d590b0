/// <reference types="vite/client" />
/**
 * In-browser SAM decoding for IntelliBrush with onnxruntime-web (WebGPU or WebAssembly).
 *
 * The server computes each image's SAM embedding once (on a GPU worker) and serves it from
 * `GET /api/v1/assets/{id}/embedding/?encoding=binary` (little-endian fp16 bytes, shape and
 * transform in `X-Sam-*` headers). The prompt encoder + mask decoder is a small ONNX graph from
 * `GET /api/v1/intellibrush/decoder.onnx?model_type=...`. With both in hand every click is decoded
 * here, without a round trip.
 *
 * The decoder's inputs follow the server's recipe (`annotator/intellibrush/onnx_export.py`,
 * `decoder_inputs`) exactly, so the browser and the server give the same mask for the same
 * prompt:
 *   image_embeddings (1, C, h, w) float32   the fp16 embedding widened to float32
 *   point_coords     (1, N, 2)               clicks (x, y) times (scale_x, scale_y), then box
 *                                            corners; without a box a (0, 0) padding point
 *   point_labels     (1, N)                  1 include, 0 exclude, 2 / 3 box corners, -1 padding
 *   mask_input       (1, 1, 4h, 4w)          previous low-res logits, or zeros
 *   has_mask_input   (1,)                    1 when mask_input is meaningful
 *   orig_im_size     (2,)                    original (height, width)
 * Outputs: masks (1, 1, H, W) logits at the original size (mask = logit > 0), iou_predictions
 * (1, 1), low_res_masks (1, 1, 4h, 4w). The graph already picks the single best mask with the
 * same rule as the server (`default_multimask`).
 *
 * Execution provider (`chooseProvider`): WebGPU when the browser offers a hardware GPU adapter,
 * else WebAssembly (SIMD, up to 2 threads). A software adapter (SwiftShader, which Chromium offers
 * where there is no usable GPU; `info.isFallbackAdapter`) runs the shaders on the CPU, slower than
 * wasm SIMD, so it is not chosen unless forced with `?ib=webgpu` (`?ib=wasm` forces wasm). WebGPU
 * needs onnxruntime-web's WebGPU build (`onnxruntime-web/webgpu`, its own asyncify .wasm), loaded
 * only when chosen; ops the WebGPU provider lacks run on its CPU provider.
 *
 * The .wasm and .mjs files of onnxruntime-web are bundled by Vite (`?url` imports) and served
 * from our own origin; nothing comes from a CDN.
 */
import type * as OrtModule from "onnxruntime-web";
import ortWebgpuMjsUrl from "onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url";
import ortWebgpuWasmUrl from "onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url";
import ortMjsUrl from "onnxruntime-web/ort-wasm-simd-threaded.mjs?url";
import ortWasmUrl from "onnxruntime-web/ort-wasm-simd-threaded.wasm?url";
import { API, errorFrom } from "../api/client";
import type { BoxBitmap } from "../lib/rle";

// ---------------------------------------------------------------------------------- fp16

let halfTable: Float32Array | null = null;

/** Value of one IEEE 754 binary16 bit pattern. */
function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Widen fp16 bit patterns to float32 (a 65536-entry table, built once). */
export function halfToFloat(bits: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = halfBitsToFloat(i);
  }
  const t = halfTable;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> nearest fp16 bit pattern (round half to even, like numpy's astype(float16)). */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit 1 in and round.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (possibly to inf).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** Round every value to the nearest fp16 (in place) and return its little-endian fp16 bytes. */
export function roundToHalf(values: Float32Array): Uint16Array {
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = floatToHalfBits(values[i]);
  values.set(halfToFloat(bits));
  return bits;
}

/** Base64 of fp16 bits (the server's `mask_input` format). */
export function halfBitsToBase64(bits: Uint16Array): string {
  const bytes = new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(s);
}

/** fp16 bits from base64 (the server's `low_res_logits.data`): the inverse of halfBitsToBase64. */
export function base64ToHalfBits(b64: string): Uint16Array {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return new Uint16Array(bytes.buffer);
}

// ---------------------------------------------------------------------------------- embedding

/** One image's SAM embedding plus what decoding needs (from the embedding endpoint). */
export interface SamEmbedding {
  assetId: number;
  modelType: string;
  /** (1, C, h, w) float32, row-major. */
  data: Float32Array;
  shape: [number, number, number, number];
  /** (height, width) of the original image. */
  originalSize: [number, number];
  /** (height, width) of the image resized so its longest side is `imageSize`. */
  inputSize: [number, number];
  imageSize: number;
  /** Click (x, y) in original pixels maps to (x * scaleX, y * scaleY) in the decoder's frame. */
  scaleX: number;
  scaleY: number;
  /** (4h, 4w): size of the low-res logits the decoder returns and accepts. */
  maskInputSize: [number, number];
  decoderUrl: string;
  bytes: number;
}

function ints(header: string | null, name: string): number[] {
  if (!header) throw new Error(`embedding response lacks ${name}`);
  return header.split(",").map((v) => Number(v.trim()));
}

/**
 * Fetch an asset's embedding (binary fp16). Rejects with the server's ApiError, e.g. 409
 * `sam_unavailable` when no SAM weights are installed, 503 `embedding_pending`.
 */
export async function fetchEmbedding(assetId: number, signal?: AbortSignal): Promise<SamEmbedding> {
  const res = await fetch(`${API}/assets/${assetId}/embedding/?encoding=binary`, {
    credentials: "same-origin",
    // JSON is listed so that errors can be negotiated (DRF answers 406 to octet-stream only).
    headers: { Accept: "application/octet-stream, application/json;q=0.9" },
    signal,
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw errorFrom(res.status, body, `embedding: ${res.status} ${res.statusText}`);
  }
  const raw = await res.arrayBuffer();
  const h = res.headers;
  const shape = ints(h.get("X-Sam-Embedding-Shape"), "X-Sam-Embedding-Shape") as SamEmbedding["shape"];
  const [oh, ow] = ints(h.get("X-Sam-Original-Size"), "X-Sam-Original-Size");
  const [ih, iw] = ints(h.get("X-Sam-Input-Size"), "X-Sam-Input-Size");
  const count = shape.reduce((a, b) => a * b, 1);
  if (raw.byteLength !== count * 2) throw new Error(`embedding is ${raw.byteLength} bytes, expected ${count * 2}`);
  return {
    assetId,
    modelType: h.get("X-Sam-Model-Type") ?? "",
    data: halfToFloat(new Uint16Array(raw)),
    shape,
    originalSize: [oh, ow],
    inputSize: [ih, iw],
    imageSize: Number(h.get("X-Sam-Image-Size")),
    scaleX: iw / ow,
    scaleY: ih / oh,
    maskInputSize: [4 * shape[2], 4 * shape[3]],
    decoderUrl: h.get("X-Sam-Decoder-Url") ?? "",
    bytes: raw.byteLength,
  };
}

// ---------------------------------------------------------------------------------- feeds

/** A prompt in original-image pixels. */
export interface SamPrompt {
  /** [x, y, label]; label 1 include, 0 exclude. */
  points: [number, number, number][];
  /** [x0, y0, x1, y1]. */
  box?: [number, number, number, number] | null;
}

/** Point inputs of the decoder: coords (N*2 floats, decoder frame) and labels (N floats). */
export function promptToPoints(
  emb: Pick<SamEmbedding, "scaleX" | "scaleY">,
  prompt: SamPrompt,
): { coords: Float32Array; labels: Float32Array; n: number } {
  const n = prompt.points.length + (prompt.box ? 2 : 1);
  const coords = new Float32Array(n * 2);
  const labels = new Float32Array(n);
  let i = 0;
  for (const [x, y, label] of prompt.points) {
    coords[2 * i] = x * emb.scaleX;
    coords[2 * i + 1] = y * emb.scaleY;
    labels[i++] = label;
  }
  if (prompt.box) {
    const [x0, y0, x1, y1] = prompt.box;
    coords.set([x0 * emb.scaleX, y0 * emb.scaleY, x1 * emb.scaleX, y1 * emb.scaleY], 2 * i);
    labels[i] = 2;
    labels[i + 1] = 3;
  } else {
    labels[i] = -1; // padding point at (0, 0)
  }
  return { coords, labels, n };
}

/**
 * Threshold full-size logits (H x W, row-major) at 0 into a mask cropped to its bounding box;
 * null when no pixel is set.
 */
export function logitsToBoxBitmap(logits: Float32Array, h: number, w: number): BoxBitmap | null {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let first = -1;
    let last = -1;
    for (let x = 0; x < w; x++) {
      if (logits[row + x] > 0) {
        if (first < 0) first = x;
        last = x;
      }
    }
    if (first >= 0) {
      if (first < x0) x0 = first;
      if (last > x1) x1 = last;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const data = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    const src = (y + y0) * w + x0;
    const dst = y * bw;
    for (let x = 0; x < bw; x++) data[dst + x] = logits[src + x] > 0 ? 1 : 0;
  }
  return { box: { x0, y0, x1: x1 + 1, y1: y1 + 1 }, data };
}

// ---------------------------------------------------------------------------------- runtime

type Ort = typeof OrtModule;

/** Where the decoder runs: onnxruntime-web's WebGPU or WebAssembly execution provider. */
export type DecoderProvider = "webgpu" | "wasm";

/** The part of a WebGPU adapter we look at (`GPUAdapter`; `isFallbackAdapter` moved to `info`). */
export interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}

/** A software adapter (e.g. SwiftShader): WebGPU emulated on the CPU. */
export function isSoftwareAdapter(adapter: GpuAdapterLike): boolean {
  return Boolean(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter);
}

/** "vendor architecture", plus ", software" for a fallback adapter (for the panel). */
export function adapterName(adapter: GpuAdapterLike): string {
  const i = adapter.info ?? {};
  const name = [i.vendor, i.architecture].filter(Boolean).join(" ") || i.description || "unknown GPU";
  return isSoftwareAdapter(adapter) ? `${name}, software` : name;
}

/**
 * The provider for this page: `ib` ("webgpu" or "wasm", the page's `?ib=`) forces one; otherwise
 * WebGPU when there is a hardware adapter, else wasm.
 */
export function chooseProvider(adapter: GpuAdapterLike | null, ib: string | null): DecoderProvider {
  if (ib === "webgpu" || ib === "wasm") return ib;
  return adapter && !isSoftwareAdapter(adapter) ? "webgpu" : "wasm";
}

let adapterPromise: Promise<GpuAdapterLike | null> | null = null;

/** The browser's WebGPU adapter, asked once per page; null without WebGPU (or no adapter). */
function gpuAdapter(): Promise<GpuAdapterLike | null> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } }).gpu;
  adapterPromise ??= gpu ? gpu.requestAdapter().catch(() => null) : Promise.resolve(null);
  return adapterPromise;
}

/** Each provider's onnxruntime-web build and its own .mjs/.wasm. */
const BUILDS: Record<DecoderProvider, { load: () => Promise<unknown>; mjs: string; wasm: string }> = {
  wasm: { load: () => import("onnxruntime-web/wasm"), mjs: ortMjsUrl, wasm: ortWasmUrl },
  webgpu: { load: () => import("onnxruntime-web/webgpu"), mjs: ortWebgpuMjsUrl, wasm: ortWebgpuWasmUrl },
};
const ortPromises = new Map<DecoderProvider, Promise<Ort>>();

/**
 * Threads for the wasm backend: 2 when they can work, else 1. Threads need a cross-origin
 * isolated page *and* a worker script (ORT's .mjs) served with a Cross-Origin-Embedder-Policy
 * header; without that header Chromium blocks the worker (ERR_BLOCKED_BY_RESPONSE) and session
 * creation never finishes, so the header is checked first.
 */
async function ortThreads(mjsUrl: string): Promise<number> {
  const override = (globalThis as { __TESSERA_ORT_THREADS?: number }).__TESSERA_ORT_THREADS;
  if (override) return override;
  const cores = Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1));
  if (!globalThis.crossOriginIsolated || cores === 1) return 1;
  try {
    const res = await fetch(mjsUrl, { method: "HEAD", credentials: "same-origin" });
    return res.ok && res.headers.get("Cross-Origin-Embedder-Policy") ? cores : 1;
  } catch {
    return 1;
  }
}

/** Load the onnxruntime-web build of `provider` once, pointing it at our own copies of its files. */
export function loadOrt(provider: DecoderProvider = "wasm"): Promise<Ort> {
  let p = ortPromises.get(provider);
  if (!p) {
    const build = BUILDS[provider];
    const mjs = new URL(build.mjs, location.href);
    const wasm = new URL(build.wasm, location.href);
    p = Promise.all([build.load(), ortThreads(mjs.href)]).then(([mod, threads]) => {
      const ort = mod as Ort;
      ort.env.wasm.wasmPaths = { mjs, wasm };
      ort.env.wasm.numThreads = threads;
      ort.env.logLevel = "error";
      return ort;
    });
    ortPromises.set(provider, p);
    p.catch(() => ortPromises.delete(provider));
  }
  return p;
}

/** Reject with an Error after `ms` (a stuck wasm start must not leave the tool "loading"). */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** How long loading the runtime and the graph may take before the server answers instead. */
export const DECODER_LOAD_TIMEOUT_MS = 60_000;

/** Result of one decode. */
export interface SamDecodeResult {
  bitmap: BoxBitmap | null;
  /** The decoder's predicted IoU of the mask. */
  score: number;
  /** (4h, 4w) low-res logits, rounded to fp16; feed back as `maskInput` to refine. */
  lowRes: Float32Array;
  /** fp16 bits of `lowRes` (the server's `mask_input` format). */
  lowResHalf: Uint16Array;
  timing: { runMs: number; postMs: number; totalMs: number };
}

/** One loaded decoder graph (per model type). Runs are serialised (a session runs one at a time). */
export class SamDecoder {
  private queue: Promise<unknown> = Promise.resolve();
  private embTensor: { emb: SamEmbedding; tensor: OrtModule.Tensor } | null = null;

  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtModule.InferenceSession,
    readonly url: string,
    readonly provider: DecoderProvider,
    readonly threads: number,
    /** The WebGPU adapter's name (webgpu only). */
    readonly adapter: string | null,
  ) {}

  /** Fetch the ONNX graph at `url` and create a session on `provider` (`adapter`: WebGPU's). */
  static async load(url: string, provider: DecoderProvider = "wasm", adapter: GpuAdapterLike | null = null): Promise<SamDecoder> {
    const ort = await loadOrt(provider);
    if (provider === "webgpu" && adapter) ort.env.webgpu.adapter = adapter as typeof ort.env.webgpu.adapter;
    const res = await fetch(url, { credentials: "same-origin" });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      throw errorFrom(res.status, body, `decoder: ${res.status} ${res.statusText}`);
    }
    const model = new Uint8Array(await res.arrayBuffer());
    const session = await withTimeout(
      // One provider named, so a WebGPU that cannot start fails here instead of silently running
      // on wasm under the WebGPU label (nodes WebGPU lacks still run on ORT's CPU provider).
      ort.InferenceSession.create(model, { executionProviders: [provider], graphOptimizationLevel: "all" }),
      DECODER_LOAD_TIMEOUT_MS,
      `starting the ${provider} decoder`,
    );
    const name = provider === "webgpu" && adapter ? adapterName(adapter) : null;
    return new SamDecoder(ort, session, url, provider, ort.env.wasm.numThreads ?? 1, name);
  }

  /** Where it runs, for the panel: "WebGPU (nvidia ampere)" or "wasm, 2 thread(s)". */
  get runtime(): string {
    return this.provider === "webgpu" ? `WebGPU (${this.adapter ?? "default adapter"})` : `wasm, ${this.threads} thread(s)`;
  }

  /**
   * Decode one prompt against `emb`. `maskInput`: the previous result's `lowRes` to refine it, or
   * null. Returns the thresholded mask at the original size.
   */
  decode(emb: SamEmbedding, prompt: SamPrompt, maskInput: Float32Array | null): Promise<SamDecodeResult> {
    const run = this.queue.then(() => this.run(emb, prompt, maskInput));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(emb: SamEmbedding, prompt: SamPrompt, maskInput: Float32Array | null): Promise<SamDecodeResult> {
    const { Tensor } = this.ort;
    const t0 = performance.now();
    if (this.embTensor?.emb !== emb) this.embTensor = { emb, tensor: new Tensor("float32", emb.data, emb.shape) };
    const { coords, labels, n } = promptToPoints(emb, prompt);
    const [mh, mw] = emb.maskInputSize;
    if (maskInput && maskInput.length !== mh * mw) throw new Error(`mask input must be ${mh}x${mw}`);
    const [oh, ow] = emb.originalSize;
    const feeds = {
      image_embeddings: this.embTensor.tensor,
      point_coords: new Tensor("float32", coords, [1, n, 2]),
      point_labels: new Tensor("float32", labels, [1, n]),
      mask_input: new Tensor("float32", maskInput ?? new Float32Array(mh * mw), [1, 1, mh, mw]),
      has_mask_input: new Tensor("float32", new Float32Array([maskInput ? 1 : 0]), [1]),
      orig_im_size: new Tensor("float32", new Float32Array([oh, ow]), [2]),
    };
    const out = await this.session.run(feeds);
    const t1 = performance.now();
    const masks = out.masks.data as Float32Array;
    const score = (out.iou_predictions.data as Float32Array)[0];
    const lowRes = new Float32Array(out.low_res_masks.data as Float32Array);
    for (const t of Object.values(out)) t.dispose();
    const lowResHalf = roundToHalf(lowRes);
    const bitmap = logitsToBoxBitmap(masks, oh, ow);
    const t2 = performance.now();
    return { bitmap, score, lowRes, lowResHalf, timing: { runMs: t1 - t0, postMs: t2 - t1, totalMs: t2 - t0 } };
  }
}

const decoders = new Map<string, Promise<SamDecoder>>();

/** The decoder at `url` on this page's provider (`chooseProvider`); a WebGPU session that fails
 * to start, unless forced, gives way to wasm. */
async function loadDecoder(url: string, ib: string | null): Promise<SamDecoder> {
  const adapter = await gpuAdapter();
  const provider = chooseProvider(adapter, ib);
  if (provider === "wasm" || ib === "webgpu") return SamDecoder.load(url, provider, adapter);
  try {
    return await SamDecoder.load(url, provider, adapter);
  } catch (e) {
    console.warn("IntelliBrush: WebGPU decoder failed, using wasm:", e);
    return SamDecoder.load(url, "wasm");
  }
}

/** The decoder at `url` (the URL names the model type), loaded once per page and `ib` (the
 * page's `?ib=`, which may force a provider). */
export function getDecoder(url: string, ib: string | null = null): Promise<SamDecoder> {
  const key = `${ib === "webgpu" || ib === "wasm" ? ib : "auto"} ${url}`;
  let p = decoders.get(key);
  if (!p) {
    p = loadDecoder(url, ib);
    decoders.set(key, p);
    p.catch(() => decoders.delete(key)); // a later attempt may succeed (e.g. after a network blip)
  }
  return p;
}

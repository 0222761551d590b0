import { describe, expect, it } from "vitest";
import {
  adapterName,
  chooseProvider,
  floatToHalfBits,
  halfBitsToBase64,
  halfToFloat,
  isSoftwareAdapter,
  logitsToBoxBitmap,
  promptToPoints,
  roundToHalf,
} from "./samDecoder";

describe("fp16", () => {
  it("widens known bit patterns", () => {
    const bits = new Uint16Array([0x0000, 0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00]);
    const f = halfToFloat(bits);
    expect(Array.from(f.slice(0, 3))).toEqual([0, 1, -2]);
    expect(f[3]).toBeCloseTo(0.333251953125, 12);
    expect(f[4]).toBe(65504);
    expect(f[5]).toBe(2 ** -24);
    expect(Object.is(f[6], -0)).toBe(true);
    expect(f[7]).toBe(Infinity);
    expect(f[8]).toBe(-Infinity);
    expect(Number.isNaN(halfToFloat(new Uint16Array([0x7e00]))[0])).toBe(true);
  });

  it("rounds to nearest, ties to even, like numpy", () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(-2)).toBe(0xc000);
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds up to inf
    expect(floatToHalfBits(1e-8)).toBe(0); // below half the smallest subnormal
    expect(floatToHalfBits(2 ** -24)).toBe(0x0001);
    // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3 * 2^-11 lies between 1 + 2^-10 (odd) and 1 + 2^-9 (even): up.
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Subnormal tie: 1.5 * 2^-24 -> 2 * 2^-24 (even).
    expect(floatToHalfBits(1.5 * 2 ** -24)).toBe(0x0002);
  });

  it("round-trips every finite half exactly", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const floats = halfToFloat(all);
    const wrong: number[] = [];
    for (let i = 0; i < 65536; i++) {
      if (((i >> 10) & 0x1f) === 31) continue; // inf / nan
      if (floatToHalfBits(floats[i]) !== i) wrong.push(i);
    }
    expect(wrong).toEqual([]);
  });

  it("roundToHalf replaces values by their fp16 and returns the bits", () => {
    const v = new Float32Array([0.1, -3.14159, 1000.7]);
    const bits = roundToHalf(v);
    expect(Array.from(v)).toEqual(Array.from(halfToFloat(bits)));
    expect(v[0]).toBeCloseTo(0.1, 3);
    expect(halfBitsToBase64(new Uint16Array([0x3c00]))).toBe(btoa("\x00\x3c"));
  });
});

describe("decoder feeds (the server's decoder_inputs recipe)", () => {
  const emb = { scaleX: 1024 / 640, scaleY: 768 / 480 };

  it("scales clicks and appends a padding point without a box", () => {
    const { coords, labels, n } = promptToPoints(emb, { points: [[100, 50, 1], [10, 20, 0]] });
    expect(n).toBe(3);
    expect(Array.from(coords)).toEqual([160, 80, 16, 32, 0, 0]);
    expect(Array.from(labels)).toEqual([1, 0, -1]);
  });

  it("turns a box into two corner points labelled 2 and 3, without padding", () => {
    const { coords, labels, n } = promptToPoints(emb, { points: [[100, 50, 1]], box: [0, 30, 640, 480] });
    expect(n).toBe(3);
    expect(Array.from(coords)).toEqual([160, 80, 0, 48, 1024, 768]);
    expect(Array.from(labels)).toEqual([1, 2, 3]);
  });
});

describe("logitsToBoxBitmap", () => {
  it("crops the positive logits to their box", () => {
    const w = 5;
    const h = 4;
    const logits = new Float32Array(w * h).fill(-1);
    logits[1 * w + 2] = 0.5;
    logits[2 * w + 3] = 3;
    logits[2 * w + 1] = 0; // zero is not inside (threshold is > 0)
    const bm = logitsToBoxBitmap(logits, h, w)!;
    expect(bm.box).toEqual({ x0: 2, y0: 1, x1: 4, y1: 3 });
    expect(Array.from(bm.data)).toEqual([1, 0, 0, 1]);
  });

  it("is null for an empty mask", () => {
    expect(logitsToBoxBitmap(new Float32Array(12).fill(-2), 3, 4)).toBeNull();
  });
});

describe("execution provider", () => {
  // What Chromium reports: SwiftShader (headless, --use-webgpu-adapter=swiftshader) and a real GPU.
  const swiftshader = { info: { vendor: "google", architecture: "swiftshader", description: "", isFallbackAdapter: true } };
  const nvidia = { info: { vendor: "nvidia", architecture: "ampere", description: "", isFallbackAdapter: false } };
  // Older Chromium put the flag on the adapter itself, and info may lack it.
  const oldSoftware = { info: { vendor: "google", architecture: "swiftshader" }, isFallbackAdapter: true };
  const bare = {};

  it("uses WebGPU only on a hardware adapter", () => {
    expect(chooseProvider(nvidia, null)).toBe("webgpu");
    expect(chooseProvider(bare, null)).toBe("webgpu");
    expect(chooseProvider(swiftshader, null)).toBe("wasm");
    expect(chooseProvider(oldSoftware, null)).toBe("wasm");
    expect(chooseProvider(null, null)).toBe("wasm");
    expect(chooseProvider(nvidia, "browser")).toBe("webgpu"); // ?ib=browser pins, does not pick
  });

  it("?ib=webgpu and ?ib=wasm force the provider", () => {
    expect(chooseProvider(swiftshader, "webgpu")).toBe("webgpu");
    expect(chooseProvider(null, "webgpu")).toBe("webgpu"); // then fails to load, and says so
    expect(chooseProvider(nvidia, "wasm")).toBe("wasm");
    expect(chooseProvider(nvidia, "nonsense")).toBe("webgpu");
  });

  it("names the adapter for the panel", () => {
    expect(isSoftwareAdapter(swiftshader)).toBe(true);
    expect(isSoftwareAdapter(nvidia)).toBe(false);
    expect(adapterName(swiftshader)).toBe("google swiftshader, software");
    expect(adapterName(nvidia)).toBe("nvidia ampere");
    expect(adapterName({ info: { description: "Intel(R) UHD" } })).toBe("Intel(R) UHD");
    expect(adapterName(bare)).toBe("unknown GPU");
  });
});

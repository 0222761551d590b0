import { describe, expect, it } from "vitest";
import {
  addPoints,
  alignSeries,
  emptySeries,
  etaSeconds,
  formatDuration,
  highestStep,
  mergeByStep,
  plottedCount,
  resumeStep,
  trackResume,
  truncateAfter,
  type Point,
} from "./series";

const p = (step: number, loss = step / 10): Point => ({ id: step, step, values: { loss } });

describe("mergeByStep", () => {
  it("appends in-order points and skips steps already held", () => {
    const [a, addedA] = mergeByStep([], [p(1), p(2), p(3)]);
    expect(addedA).toBe(3);
    const [b, addedB] = mergeByStep(a, [p(3, 99), p(4)]);
    expect(addedB).toBe(1);
    expect(b.map((x) => x.step)).toEqual([1, 2, 3, 4]);
    expect(b[2].values.loss).toBe(0.3); // the first value of a step wins
  });

  it("inserts out-of-order points at their place", () => {
    const [a] = mergeByStep([], [p(10), p(30)]);
    const [b, added] = mergeByStep(a, [p(20), p(5), p(40), p(20)]);
    expect(added).toBe(3);
    expect(b.map((x) => x.step)).toEqual([5, 10, 20, 30, 40]);
  });

  it("gives the same result for any arrival order with duplicates (replay + live overlap)", () => {
    const steps = Array.from({ length: 50 }, (_, i) => i * 3);
    const all = steps.map((s) => p(s));
    // deterministic shuffles with duplicates
    for (let seed = 1; seed < 20; seed++) {
      let x = seed;
      const rnd = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
      const incoming = [...all, ...all.filter(() => rnd() < 0.3)].sort(() => rnd() - 0.5);
      let merged: Point[] = [];
      for (let i = 0; i < incoming.length; i += 7) merged = mergeByStep(merged, incoming.slice(i, i + 7))[0];
      expect(merged.map((q) => q.step)).toEqual(steps);
    }
  });

  it("returns the same array when nothing is new", () => {
    const [a] = mergeByStep([], [p(1)]);
    const s1 = addPoints({ ...emptySeries, train: a }, "train", [p(1)]);
    expect(s1.train).toBe(a);
  });
});

describe("run series", () => {
  it("keeps kinds apart and tells the step to resume from", () => {
    let s = addPoints(emptySeries, "train", [p(5), p(10)]);
    expect(resumeStep(emptySeries)).toBe(-1);
    s = addPoints(s, "eval", [{ step: 10, values: { miou: 0.5 } }]);
    expect(highestStep(s)).toBe(10);
    // one below: an eval at the highest train step may not have arrived yet
    expect(resumeStep(s)).toBe(9);
    expect(s.eval).toHaveLength(1);
  });

  it("truncates points of steps trained again after a resume", () => {
    let s = addPoints(emptySeries, "train", [p(5), p(10), p(15), p(20)]);
    s = addPoints(s, "eval", [{ step: 10, values: {} }, { step: 20, values: {} }]);
    const t = truncateAfter(s, 10);
    expect(t.train.map((x) => x.step)).toEqual([5, 10]);
    expect(t.eval.map((x) => x.step)).toEqual([10]);
    expect(truncateAfter(t, 10)).toBe(t);
    // the re-trained steps are accepted again, with their new values
    const u = addPoints(t, "train", [p(15, 7)]);
    expect(u.train[2].values.loss).toBe(7);
  });
});

describe("alignSeries", () => {
  it("builds a shared step axis with nulls where a series has no point", () => {
    const train = [p(1), p(2), p(3)];
    const ev = [{ step: 2, values: { miou: 0.4 } }, { step: 4, values: { miou: 0.6 } }];
    const cols = alignSeries([
      { points: train, pick: (q) => q.values.loss as number },
      { points: ev, pick: (q) => q.values.miou as number },
    ]);
    expect(cols[0]).toEqual([1, 2, 3, 4]);
    expect(cols[1]).toEqual([1 / 10, 2 / 10, 3 / 10, null]);
    expect(cols[2]).toEqual([null, 0.4, null, 0.6]);
    expect(plottedCount(cols)).toBe(5);
  });

  it("treats missing and non-finite values as gaps", () => {
    const cols = alignSeries([{ points: [{ step: 1, values: {} }, { step: 2, values: { loss: NaN } }], pick: (q) => q.values.loss as number }]);
    expect(cols[1]).toEqual([null, null]);
    expect(plottedCount(cols)).toBe(0);
  });
});

describe("etaSeconds", () => {
  it("uses images per second and the batch size", () => {
    // 100 steps left at 8 images/s with batch 4 = 2 steps/s -> 50 s
    expect(etaSeconds({ step: 100, totalSteps: 200, imagesPerSecond: 8, batchSize: 4 })).toBeCloseTo(50);
  });
  it("falls back to wall time per step", () => {
    expect(etaSeconds({ step: 10, totalSteps: 30, startedAt: 0, now: 20_000 })).toBeCloseTo(40);
    expect(etaSeconds({ step: 0, totalSteps: 30, startedAt: 0, now: 20_000 })).toBeNull();
    expect(etaSeconds({ step: 30, totalSteps: 30 })).toBe(0);
  });
  it("formats durations", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(125)).toBe("2 min 5 s");
    expect(formatDuration(3 * 3600 + 60)).toBe("3 h 1 min");
  });
});

describe("trackResume", () => {
  it("truncates once when a re-queued run runs again, at its resumed step", () => {
    let t = { attempts: null as number | null, pending: false };
    let cut: number | null;
    [t, cut] = trackResume(t, { status: "running", step: 40, attempts: 0 });
    expect(cut).toBeNull();
    [t, cut] = trackResume(t, { status: "queued", step: 57, attempts: 1 }); // worker lost at 57
    expect(cut).toBeNull();
    [t, cut] = trackResume(t, { status: "preparing", step: 57, attempts: 1 });
    expect(cut).toBeNull();
    [t, cut] = trackResume(t, { status: "running", step: 50, attempts: 1 }); // from checkpoint 50
    expect(cut).toBe(50);
    [t, cut] = trackResume(t, { status: "running", step: 50, attempts: 1 });
    expect(cut).toBeNull();
  });

  it("does not truncate on the first status seen (a page opened on a resumed run)", () => {
    const [, cut] = trackResume({ attempts: null, pending: false }, { status: "running", step: 10, attempts: 2 });
    expect(cut).toBeNull();
  });
});

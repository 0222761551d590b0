import { describe, expect, it } from "vitest";
import { planFill } from "./fill";

/** 12 x 6 image: dark left half, bright right half; object 5 owns columns 0-1. */
function scene() {
  const width = 12;
  const height = 6;
  const rgba = new Uint8ClampedArray(width * height * 4);
  const labels = new Uint32Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const v = i % width < 6 ? 20 : 220;
    rgba.set([v, v, v, 255], i * 4);
    if (i % width < 2) labels[i] = 5;
  }
  return { width, height, rgba, labels };
}

describe("planFill", () => {
  it("fills the unlabeled region of the clicked colour only", () => {
    const { width, height, rgba, labels } = scene();
    const plan = planFill({ labels, width, height, x: 3, y: 3, target: null, overwrite: false, color: { rgba, tolerance: 30 } });
    expect(plan.kind).toBe("fill");
    if (plan.kind !== "fill") return;
    expect(plan.stamp.box).toEqual({ x0: 2, y0: 0, x1: 6, y1: 6 });
    expect(plan.area).toBe(4 * 6);
  });

  it("does not take another object's pixels unless told to", () => {
    const { width, height, rgba, labels } = scene();
    const color = { rgba, tolerance: 30 };
    expect(planFill({ labels, width, height, x: 0, y: 0, target: 9, overwrite: false, color })).toEqual({
      kind: "refused",
      owner: 5,
    });
    expect(planFill({ labels, width, height, x: 0, y: 0, target: 5, overwrite: true, color }).kind).toBe("none");
    const over = planFill({ labels, width, height, x: 0, y: 0, target: 9, overwrite: true, color });
    expect(over.kind === "fill" && over.stamp.box).toEqual({ x0: 0, y0: 0, x1: 2, y1: 6 });
  });

  it("ignores colour at the widest tolerance, never crossing outlines", () => {
    const { width, height, rgba, labels } = scene();
    const plan = planFill({ labels, width, height, x: 8, y: 1, target: null, overwrite: false, color: { rgba, tolerance: 255 } });
    expect(plan.kind === "fill" && plan.area).toBe(10 * 6);
  });
});

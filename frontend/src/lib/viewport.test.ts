import { describe, expect, it } from "vitest";
import { fitView, imageToScreen, MAX_SCALE, panBy, pixelAt, screenToImage, zoomAt } from "./viewport";

describe("viewport transforms", () => {
  it("maps screen to image and back", () => {
    const v = { scale: 2.5, tx: 30, ty: -12 };
    const [ix, iy] = screenToImage(v, 130, 88);
    expect(ix).toBeCloseTo(40);
    expect(iy).toBeCloseTo(40);
    expect(imageToScreen(v, ix, iy)).toEqual([130, 88]);
    expect(pixelAt(v, 131, 89)).toEqual([40, 40]);
    expect(pixelAt(v, 129.9, 88)).toEqual([39, 40]);
  });

  it("zooms around the cursor: the image point under it stays put", () => {
    let v = fitView(4000, 3000, 1200, 800);
    const cursor: [number, number] = [713, 301];
    const before = screenToImage(v, ...cursor);
    for (const f of [1.2, 1.2, 3, 0.5, 10]) {
      v = zoomAt(v, cursor[0], cursor[1], f);
      const after = screenToImage(v, ...cursor);
      expect(after[0]).toBeCloseTo(before[0], 6);
      expect(after[1]).toBeCloseTo(before[1], 6);
    }
  });

  it("clamps the zoom and still keeps the cursor point", () => {
    const v0 = { scale: 30, tx: 0, ty: 0 };
    const v = zoomAt(v0, 100, 100, 100);
    expect(v.scale).toBe(MAX_SCALE);
    expect(screenToImage(v, 100, 100)[0]).toBeCloseTo(screenToImage(v0, 100, 100)[0]);
  });

  it("fits and centres the image, and pans in screen space", () => {
    const v = fitView(4000, 3000, 1232, 932, 16);
    expect(v.scale).toBeCloseTo(0.3);
    const [cx, cy] = imageToScreen(v, 2000, 1500);
    expect(cx).toBeCloseTo(616);
    expect(cy).toBeCloseTo(466);
    const p = panBy(v, 10, -5);
    expect(imageToScreen(p, 2000, 1500)).toEqual([cx + 10, cy - 5]);
  });
});

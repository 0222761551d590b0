import { describe, expect, it } from "vitest";
import { NONE, pickClick } from "./selection";

const page = [10, 11, 12, 13, 14];
const ids = (p: { ids: Set<number> }) => [...p.ids].sort((a, b) => a - b);

describe("pickClick", () => {
  it("toggles one tile per plain click", () => {
    const once = pickClick(NONE, page, 1, false);
    expect(ids(once)).toEqual([11]);
    expect(ids(pickClick(once, page, 1, false))).toEqual([]);
  });

  it("selects the range from the anchor on shift-click, in either direction", () => {
    const start = pickClick(NONE, page, 3, false);
    expect(ids(pickClick(start, page, 1, true))).toEqual([11, 12, 13]);
    const forward = pickClick(pickClick(NONE, page, 0, false), page, 2, true);
    expect(ids(forward)).toEqual([10, 11, 12]);
    expect(forward.anchor).toBe(0);
  });

  it("shift-click on a picked tile unpicks the range", () => {
    const all = pickClick(pickClick(NONE, page, 0, false), page, 4, true);
    const after = pickClick({ ...all, anchor: 1 }, page, 3, true);
    expect(ids(after)).toEqual([10, 14]);
  });

  it("a click after 'all matching' starts from the page's tiles, minus the clicked one", () => {
    const after = pickClick({ ids: new Set(), allMatching: true, anchor: null }, page, 2, false);
    expect(after.allMatching).toBe(false);
    expect(ids(after)).toEqual([10, 11, 13, 14]);
  });

  it("shift-click without an anchor is a plain click", () => {
    expect(ids(pickClick(NONE, page, 2, true))).toEqual([12]);
  });
});

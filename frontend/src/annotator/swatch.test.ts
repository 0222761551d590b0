import { describe, expect, it } from "vitest";
import { swatchFill } from "./panels";

describe("swatchFill", () => {
  it("hatches the ignore class in its colour and leaves the others plain", () => {
    const base = { id: 1, name: "road", color: "#123456", index: 0 };
    expect(swatchFill(base)).toBe("#123456");
    const fill = swatchFill({ ...base, is_ignore: true });
    expect(fill).toMatch(/^repeating-linear-gradient\(/);
    expect(fill).toContain("#123456");
  });
});

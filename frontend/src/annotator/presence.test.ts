import { describe, expect, it } from "vitest";
import { describePresence } from "./presence";

describe("describePresence", () => {
  it("names each other person once and counts their tabs", () => {
    expect(describePresence([])).toBe("");
    expect(describePresence([{ id: "a", user: "alice" }])).toBe("alice");
    expect(
      describePresence([
        { id: "a", user: "alice" },
        { id: "b", user: "bob" },
        { id: "c", user: "alice" },
        { id: "d", user: "carol" },
      ]),
    ).toBe("alice (2 tabs), bob and carol");
  });
});

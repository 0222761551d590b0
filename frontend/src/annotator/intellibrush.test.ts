import { describe, expect, it } from "vitest";
import { DECODES_BEFORE_CHECK, median, preferServer, SLOW_DECODE_MS } from "./intellibrush";

describe("choosing between in-browser and server decoding", () => {
  it("keeps a fast browser whatever the server does", () => {
    expect(preferServer([40, 45, 50], 5)).toBe(false);
    expect(preferServer(Array(DECODES_BEFORE_CHECK).fill(SLOW_DECODE_MS), 1)).toBe(false);
  });

  it("moves a slow browser to a server that is at least twice as fast", () => {
    expect(preferServer([480, 510, 495], 60)).toBe(true);
    expect(preferServer([480, 510, 495], 247)).toBe(true);
    expect(preferServer([480, 510, 495], 260)).toBe(false); // not worth a round trip
  });

  it("uses the median, so one slow first decode does not decide", () => {
    expect(median([900, 60, 70])).toBe(70);
    expect(preferServer([900, 60, 70], 10)).toBe(false);
    expect(median([1, 2, 3, 4])).toBe(2.5);
  });
});

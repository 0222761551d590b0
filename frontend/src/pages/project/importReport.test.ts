import { describe, expect, it } from "vitest";
import type { Job } from "../../api/types";
import { countsLine, summarizeImport } from "./importReport";

const base: Job = {
  id: 1,
  kind: "import",
  status: "failed",
  progress: 1,
  message: "",
  result: {},
  errors: [],
  download_url: null,
  params: { format: "labelme", format_given: false, detected: { name: "labelme", title: "LabelMe", reason: "a.json has shapes" } },
};

describe("summarizeImport", () => {
  it("offers to import the rest only when items had errors", () => {
    const refused = summarizeImport({
      ...base,
      errors: [{ code: "bad_shape", message: "Unknown shape_type 'banana'.", where: "a.json: shapes[1]" }],
    });
    expect(refused.canImportRest).toBe(true);
    expect(refused.errors[0]).toEqual({ code: "bad_shape", text: "Unknown shape_type 'banana'.", where: "a.json: shapes[1]" });
    expect(refused.format).toEqual({ name: "labelme", title: "LabelMe", detected: true, reason: "a.json has shapes" });
    const crashed = summarizeImport({ ...base, errors: [{ code: "worker_crashed", message: "x", where: "" }] });
    expect(crashed.canImportRest).toBe(false);
  });

  it("reads repairs, skips and counts from a finished import", () => {
    const done = summarizeImport({
      ...base,
      status: "succeeded",
      result: {
        format: { name: "coco", title: "COCO", detected: false, reason: "" },
        warnings: [{ where: "a.json: shapes[0]", message: "moved onto its border" }],
        skipped: [{ where: "a.json: shapes[4]", reason: "wholly outside" }],
        left_out: [],
        counts: { imported_images: 1, imported_objects: 4, repaired: 1, skipped: 1, left_out: 0 },
      },
    });
    expect(done.format?.title).toBe("COCO");
    expect(done.skipped[0].text).toBe("wholly outside");
    expect(countsLine(done.counts!)).toBe("Imported 4 objects on 1 image · 1 repaired · 1 skipped");
  });
});

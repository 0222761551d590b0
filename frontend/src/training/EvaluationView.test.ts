import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { ConfusionHeatmap } from "./EvaluationView";

describe("ConfusionHeatmap", () => {
  it("labels rows and columns with class names and shows each cell's share of its row", () => {
    const html = renderToStaticMarkup(
      createElement(ConfusionHeatmap, { matrix: [[90, 10], [25, 75]], names: ["background", "circle"] }),
    );
    const cells = [...html.matchAll(/<td[^>]*title="([^"]+)"[^>]*>([^<]+)<\/td>/g)].map((m) => [m[1], m[2]]);
    expect(cells).toEqual([
      ["background → background: 90 px", "90%"],
      ["background → circle: 10 px", "10%"],
      ["circle → background: 25 px", "25%"],
      ["circle → circle: 75 px", "75%"],
    ]);
    expect((html.match(/<th scope="row">([^<]+)</g) ?? []).map((s) => s.split(">")[1].replace("<", ""))).toEqual(["background", "circle"]);
    // the diagonal is green, the errors red, stronger for larger shares
    expect(html).toContain("rgba(34,197,94,0.912)");
    expect(html).toContain("rgba(239,68,68,0.208)");
  });

  it("shows a dash for a class with no true pixels", () => {
    const html = renderToStaticMarkup(createElement(ConfusionHeatmap, { matrix: [[5, 0], [0, 0]], names: ["a", "b"] }));
    expect(html).toContain(">—</td>");
  });
});

import { describe, expect, it } from "vitest";
import { configToForm, DEFAULT_FORM, formToRequest, parseResolution, problemsByField } from "./config";

describe("builder form", () => {
  it("sends numbers, leaves empty fields to the server and converts the hold-out percent", () => {
    const { body, errors } = formToRequest({ ...DEFAULT_FORM, name: "tiny", resolution: "64x64", steps: "40", lr: "3e-3", warmup_steps: "", val_fraction: "25" });
    expect(errors).toEqual([]);
    expect(body.name).toBe("tiny");
    expect(body.val_fraction).toBe(0.25);
    expect(body.config.resolution).toEqual([64, 64]);
    expect(body.config.steps).toBe(40);
    expect(body.config.lr).toBe(0.003);
    expect("warmup_steps" in body.config).toBe(false);
    expect("pretrained" in body.config).toBe(false);
    expect(body.config.keep_best_metric).toBe("miou");
  });

  it("reports text that is not a number before asking the server", () => {
    const { errors } = formToRequest({ ...DEFAULT_FORM, batch_size: "eight", resolution: "big" });
    expect(errors.map(([f]) => f).sort()).toEqual(["batch_size", "resolution"]);
  });

  it("round-trips a saved config", () => {
    const { body } = formToRequest({ ...DEFAULT_FORM, name: "a", optimizer: "sgd", momentum: "0.8", keep_best_metric: "", resolution: "96x96" });
    const form = configToForm("a", body.config, body.val_fraction);
    expect(formToRequest(form).body).toEqual(body);
  });

  it("parses resolutions", () => {
    expect(parseResolution("512x384")).toEqual([512, 384]);
    expect(parseResolution(" 64 × 64 ")).toEqual([64, 64]);
    expect(parseResolution("64")).toBeNull();
  });
});

describe("problemsByField", () => {
  it("puts the API's problem sentences next to their fields", () => {
    const problems = [
      "resolution 63x63 is not allowed for segformer/tiny; allowed: 32x32, 64x64",
      "batch_size must be >= 1",
      "warmup_steps must be >= 0 and smaller than steps",
      "steps must be >= 1",
      "unknown segformer variant 'b9'; choose one of ['b0', 'tiny']",
      "early stopping needs keep_best_metric",
    ];
    const by = problemsByField(problems);
    expect(by.resolution).toEqual([problems[0]]);
    expect(by.batch_size).toEqual([problems[1]]);
    expect(by.warmup_steps).toEqual([problems[2]]);
    expect(by.steps).toEqual([problems[3]]);
    expect(by.variant).toEqual([problems[4]]);
    expect(by.early_stopping_patience).toEqual([problems[5]]);
    expect(by.keep_best_metric).toEqual([problems[5]]);
  });
});

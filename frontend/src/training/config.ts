/**
 * The workflow builder's form model: TrainConfig defaults (mirroring
 * training/modeling/trainer.py), form <-> config conversion, and mapping the API's 400
 * `details.problems` sentences onto the form fields they are about.
 */
import type { Augmentations, ModelSpec, TrainConfig } from "../api/training";

export const SCHEDULES = ["constant", "linear", "cosine", "poly"] as const;
export const OPTIMIZERS = ["adamw", "sgd"] as const;
export const BEST_METRICS = ["miou", "mean_f1", "pixel_accuracy"] as const;
export const MIXED_PRECISION = ["auto", "no", "fp16", "bf16"] as const;

export const DEFAULT_AUGMENTATIONS: Augmentations = {
  hflip: true,
  scale_crop: false,
  scale_range: [0.5, 1.0],
  rotate: false,
  rotate_degrees: 15,
  color_jitter: false,
  color_strength: 0.3,
};

/** Every field of the builder; numbers are kept as the text typed so a field can be empty. */
export interface BuilderForm {
  name: string;
  family: string;
  variant: string;
  resolution: string; // "HxW" or "" for the model's default
  batch_size: string;
  steps: string;
  lr: string;
  schedule: TrainConfig["schedule"];
  warmup_steps: string;
  optimizer: TrainConfig["optimizer"];
  weight_decay: string;
  momentum: string;
  augmentations: Augmentations;
  val_fraction: string; // percent held out when no asset is in the val split
  pretrained: string; // "" = the model's default source
  eval_interval: string;
  log_interval: string;
  checkpoint_every_n_steps: string;
  keep_best_metric: string; // "" = none
  keep_last_k: string;
  early_stopping_patience: string;
  num_gpus: string;
  mixed_precision: TrainConfig["mixed_precision"];
  seed: string;
}

export const DEFAULT_FORM: BuilderForm = {
  name: "",
  family: "segformer",
  variant: "tiny",
  resolution: "",
  batch_size: "8",
  steps: "1000",
  lr: "0.00006",
  schedule: "poly",
  warmup_steps: "0",
  optimizer: "adamw",
  weight_decay: "0.01",
  momentum: "0.9",
  augmentations: DEFAULT_AUGMENTATIONS,
  val_fraction: "20",
  pretrained: "",
  eval_interval: "100",
  log_interval: "10",
  checkpoint_every_n_steps: "0",
  keep_best_metric: "miou",
  keep_last_k: "2",
  early_stopping_patience: "0",
  num_gpus: "1",
  mixed_precision: "auto",
  seed: "0",
};

const NUMERIC = [
  "batch_size",
  "steps",
  "lr",
  "warmup_steps",
  "weight_decay",
  "momentum",
  "eval_interval",
  "log_interval",
  "checkpoint_every_n_steps",
  "keep_last_k",
  "early_stopping_patience",
  "num_gpus",
  "seed",
] as const;

export type FieldName = keyof BuilderForm | "val_fraction";

export function parseResolution(text: string): [number, number] | null {
  const m = text.trim().match(/^(\d+)\s*[x×]\s*(\d+)$/i);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function formatResolution(r: readonly number[]): string {
  return `${r[0]}x${r[1]}`;
}

/**
 * Form -> the JSON body of POST /projects/{id}/workflows/. Fields left empty are not sent
 * (the server's defaults apply). Text that is not a number is reported here, before asking
 * the server, as [field, message] pairs.
 */
export function formToRequest(form: BuilderForm): {
  body: { name: string; config: Partial<TrainConfig>; val_fraction: number };
  errors: [FieldName, string][];
} {
  const errors: [FieldName, string][] = [];
  const config: Record<string, unknown> = {
    family: form.family,
    variant: form.variant,
    schedule: form.schedule,
    optimizer: form.optimizer,
    mixed_precision: form.mixed_precision,
    augmentations: form.augmentations,
    keep_best_metric: form.keep_best_metric || null,
  };
  if (form.pretrained) config.pretrained = form.pretrained;
  if (form.resolution) {
    const r = parseResolution(form.resolution);
    if (r) config.resolution = r;
    else errors.push(["resolution", "resolution must look like 512x512"]);
  }
  for (const key of NUMERIC) {
    const text = form[key].trim();
    if (text === "") continue;
    const n = Number(text);
    if (!Number.isFinite(n)) errors.push([key, `${key} must be a number`]);
    else config[key] = n;
  }
  let valFraction = 0.2;
  const pct = Number(form.val_fraction);
  if (form.val_fraction.trim() === "" || !Number.isFinite(pct)) errors.push(["val_fraction", "val_fraction must be a number"]);
  else valFraction = pct / 100;
  const name = form.name.trim() || `${form.family}-${form.variant} ${new Date().toISOString().slice(0, 16).replace("T", " ")}`;
  return { body: { name, config: config as Partial<TrainConfig>, val_fraction: valFraction }, errors };
}

/** A saved workflow's config -> the form (to run it again with changes). */
export function configToForm(name: string, config: Partial<TrainConfig>, valFraction: number): BuilderForm {
  const f: BuilderForm = { ...DEFAULT_FORM, name };
  for (const key of NUMERIC) if (typeof config[key] === "number") f[key] = String(config[key]);
  if (config.family) f.family = config.family;
  if (config.variant) f.variant = config.variant;
  if (config.resolution) f.resolution = formatResolution(config.resolution);
  if (config.schedule) f.schedule = config.schedule;
  if (config.optimizer) f.optimizer = config.optimizer;
  if (config.mixed_precision) f.mixed_precision = config.mixed_precision;
  if (config.augmentations) f.augmentations = { ...DEFAULT_AUGMENTATIONS, ...config.augmentations };
  if (config.pretrained) f.pretrained = config.pretrained;
  f.keep_best_metric = config.keep_best_metric ?? "";
  f.val_fraction = String(Math.round(valFraction * 1000) / 10);
  return f;
}

/** Fields named in a problem sentence from the API (e.g. "batch_size must be >= 1"). */
const FIELD_PATTERNS: [FieldName, RegExp][] = [
  ["resolution", /\bresolution\b/],
  ["pretrained", /\bpretrained\b/],
  ["batch_size", /\bbatch_size\b|\bbatch \d+/],
  ["warmup_steps", /\bwarmup_steps\b/],
  ["steps", /(^|[^_])\bsteps must\b/],
  ["lr", /\blr\b/],
  ["schedule", /\bschedule\b/],
  ["optimizer", /\boptimizer\b/],
  ["weight_decay", /\bweight_decay\b/],
  ["eval_interval", /\beval_interval\b/],
  ["log_interval", /\blog_interval\b/],
  ["checkpoint_every_n_steps", /\bcheckpoint_every_n_steps\b/],
  ["keep_last_k", /\bkeep_last_k\b/],
  ["keep_best_metric", /\bkeep_best_metric\b/],
  ["early_stopping_patience", /\bearly_stopping_patience\b|\bearly stopping\b/],
  ["num_gpus", /\bnum_gpus\b/],
  ["mixed_precision", /\bmixed_precision\b/],
  ["augmentations", /\baugmentations?\b/],
  ["val_fraction", /\bval_fraction\b/],
  ["family", /\bunknown model family\b/],
  ["variant", /\bunknown \S+ variant\b/],
];

export function problemsByField(problems: readonly string[]): Partial<Record<FieldName, string[]>> {
  const out: Partial<Record<FieldName, string[]>> = {};
  for (const p of problems) {
    for (const [field, re] of FIELD_PATTERNS) {
      if (re.test(p)) (out[field] ??= []).push(p);
    }
  }
  return out;
}

/** The spec for the chosen family/variant, if listed. */
export function findSpec(models: readonly ModelSpec[] | undefined, family: string, variant: string): ModelSpec | undefined {
  return models?.find((m) => m.family === family && m.variant === variant);
}

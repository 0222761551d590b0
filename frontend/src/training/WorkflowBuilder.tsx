/**
 * The training workflow builder: every setting the workflow API accepts, with the server's
 * defaults, and the **Run Training** button (saves the workflow, then starts a run of it).
 * Problems the API reports (400 details.problems) are listed and shown next to their fields.
 */
import { useEffect, useMemo, useState, type ReactNode } from "react";
import { problemsOf, useModels, useStartTraining, type TrainingRun } from "../api/training";
import { SplitReadiness } from "../pages/project/SplitReadiness";
import {
  BEST_METRICS,
  DEFAULT_FORM,
  MIXED_PRECISION,
  OPTIMIZERS,
  SCHEDULES,
  findSpec,
  formToRequest,
  formatResolution,
  problemsByField,
  type BuilderForm,
  type FieldName,
} from "./config";

const savedFormKey = (projectId: number) => `tessera.training-form.${projectId}`;

function loadSavedForm(projectId: number): BuilderForm | null {
  try {
    const raw = sessionStorage.getItem(savedFormKey(projectId));
    return raw ? { ...DEFAULT_FORM, ...(JSON.parse(raw) as Partial<BuilderForm>) } : null;
  } catch {
    return null;
  }
}

function saveForm(projectId: number, form: BuilderForm | null): void {
  try {
    if (form) sessionStorage.setItem(savedFormKey(projectId), JSON.stringify(form));
    else sessionStorage.removeItem(savedFormKey(projectId));
  } catch {
    // storage full or disabled: the form just starts from the defaults next time
  }
}

interface Props {
  projectId: number;
  initial?: BuilderForm;
  onStarted: (run: TrainingRun) => void;
}

export function WorkflowBuilder({ projectId, initial, onStarted }: Props) {
  const models = useModels();
  const start = useStartTraining(projectId);
  // The last submitted settings of this project survive a failed run and a reload (tab session).
  const [form, setForm] = useState<BuilderForm>(() => initial ?? loadSavedForm(projectId) ?? DEFAULT_FORM);
  const [localErrors, setLocalErrors] = useState<[FieldName, string][]>([]);
  useEffect(() => {
    if (initial) setForm(initial);
  }, [initial]);

  const spec = findSpec(models.data, form.family, form.variant);
  const families = useMemo(() => [...new Set((models.data ?? []).map((m) => m.family))], [models.data]);
  const variants = (models.data ?? []).filter((m) => m.family === form.family);
  const serverProblems = start.error ? problemsOf(start.error) : [];
  const problems = [...localErrors.map(([, m]) => m), ...serverProblems];
  const byField = problemsByField(problems);
  for (const [f, m] of localErrors) (byField[f] ??= []).includes(m) || byField[f]!.push(m);

  const set = <K extends keyof BuilderForm>(key: K, value: BuilderForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const setAug = (key: keyof BuilderForm["augmentations"], value: unknown) =>
    setForm((f) => ({ ...f, augmentations: { ...f.augmentations, [key]: value } }));

  // An empty choice means the model's suggested source: its default when the weights are here.
  const pretrained = form.pretrained || spec?.suggested_pretrained || "";
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const { body, errors } = formToRequest({ ...form, pretrained });
    setLocalErrors(errors);
    if (errors.length) return;
    saveForm(projectId, form);
    start.mutate(body, { onSuccess: onStarted });
  };

  const field = (name: FieldName, label: string, input: ReactNode, hint?: string) => (
    <label className={byField[name] ? "field invalid" : "field"}>
      <span>{label}</span>
      {input}
      {hint && <span className="hint">{hint}</span>}
      {byField[name]?.map((m) => (
        <span key={m} className="field-error">
          {m}
        </span>
      ))}
    </label>
  );
  const numberInput = (name: keyof BuilderForm, label: string, hint?: string, step = "any") =>
    field(
      name,
      label,
      <input
        type="number"
        name={name}
        step={step}
        value={form[name] as string}
        aria-invalid={!!byField[name]}
        onChange={(e) => set(name, e.target.value as never)}
      />,
      hint,
    );

  return (
    <form className="builder card" onSubmit={submit} aria-label="Training workflow" noValidate>
      <h2>New training</h2>
      {problems.length > 0 && (
        <div className="problems" role="alert" data-testid="builder-problems">
          <strong>This training cannot run:</strong>
          <ul>
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      <fieldset>
        <legend>Model</legend>
        {field("name", "Workflow name", <input name="name" value={form.name} placeholder="(automatic)" onChange={(e) => set("name", e.target.value)} />)}
        {field(
          "family",
          "Family",
          <select
            name="family"
            value={form.family}
            onChange={(e) => {
              const fam = e.target.value;
              const first = (models.data ?? []).find((m) => m.family === fam);
              setForm((f) => ({ ...f, family: fam, variant: first?.variant ?? f.variant, resolution: "", pretrained: "" }));
            }}
          >
            {(families.length ? families : [form.family]).map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>,
        )}
        {field(
          "variant",
          "Variant",
          <select name="variant" value={form.variant} onChange={(e) => setForm((f) => ({ ...f, variant: e.target.value, resolution: "", pretrained: "" }))}>
            {(variants.length ? variants : [{ variant: form.variant, description: "" }]).map((m) => (
              <option key={m.variant} value={m.variant}>
                {m.variant}
              </option>
            ))}
          </select>,
          spec ? `${spec.description} · ${spec.params_m} M params · ~${spec.memory_gb} GB` : undefined,
        )}
        {field(
          "resolution",
          "Resolution",
          <select name="resolution" value={form.resolution} onChange={(e) => set("resolution", e.target.value)}>
            <option value="">default{spec ? ` (${formatResolution(spec.default_resolution)})` : ""}</option>
            {(spec?.allowed_resolutions ?? []).map((r) => (
              <option key={formatResolution(r)} value={formatResolution(r)}>
                {formatResolution(r)}
              </option>
            ))}
            {form.resolution && !spec?.allowed_resolutions.some((r) => formatResolution(r) === form.resolution) && (
              <option value={form.resolution}>{form.resolution}</option>
            )}
          </select>,
        )}
        {field(
          "pretrained",
          "Pretrained weights",
          <select name="pretrained" value={pretrained} onChange={(e) => set("pretrained", e.target.value)}>
            {!spec && <option value="">default</option>}
            {(spec?.pretrained_sources ?? []).map((s) => (
              <option key={s} value={s} data-local={spec?.local_sources?.[s] ? "yes" : "no"}>
                {s === "none" ? "none (random initialisation)" : `${s} — ${spec?.pretrained[s] ?? ""}`}
                {s !== "none" && spec?.local_sources && !spec.local_sources[s] ? " (weights not on this server)" : ""}
              </option>
            ))}
          </select>,
          "Weights come from the weights folder or the Hugging Face cache; a missing source is an error, never a silent random start.",
        )}
      </fieldset>

      <fieldset>
        <legend>Optimisation</legend>
        {numberInput("batch_size", "Batch size (per GPU)", undefined, "1")}
        {numberInput("steps", "Steps", undefined, "1")}
        {numberInput("lr", "Learning rate")}
        {field(
          "schedule",
          "LR schedule",
          <select name="schedule" value={form.schedule} onChange={(e) => set("schedule", e.target.value as BuilderForm["schedule"])}>
            {SCHEDULES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>,
        )}
        {numberInput("warmup_steps", "Warm-up steps", undefined, "1")}
        {field(
          "optimizer",
          "Optimizer",
          <select name="optimizer" value={form.optimizer} onChange={(e) => set("optimizer", e.target.value as BuilderForm["optimizer"])}>
            {OPTIMIZERS.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>,
        )}
        {numberInput("weight_decay", "Weight decay")}
        {form.optimizer === "sgd" && numberInput("momentum", "Momentum")}
        {field(
          "mixed_precision",
          "Mixed precision",
          <select name="mixed_precision" value={form.mixed_precision} onChange={(e) => set("mixed_precision", e.target.value as BuilderForm["mixed_precision"])}>
            {MIXED_PRECISION.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>,
          "auto = bf16/fp16 on GPU, none on CPU",
        )}
        {numberInput("seed", "Seed", undefined, "1")}
      </fieldset>

      <fieldset>
        <legend>Augmentations</legend>
        <label className="check">
          <input type="checkbox" checked={form.augmentations.hflip} onChange={(e) => setAug("hflip", e.target.checked)} /> Horizontal flip
        </label>
        <label className="check">
          <input type="checkbox" checked={form.augmentations.scale_crop} onChange={(e) => setAug("scale_crop", e.target.checked)} /> Random scale crop
        </label>
        {form.augmentations.scale_crop && (
          <div className="row">
            <label>
              min area
              <input type="number" step="0.05" value={form.augmentations.scale_range[0]} onChange={(e) => setAug("scale_range", [Number(e.target.value), form.augmentations.scale_range[1]])} />
            </label>
            <label>
              max area
              <input type="number" step="0.05" value={form.augmentations.scale_range[1]} onChange={(e) => setAug("scale_range", [form.augmentations.scale_range[0], Number(e.target.value)])} />
            </label>
          </div>
        )}
        <label className="check">
          <input type="checkbox" checked={form.augmentations.rotate} onChange={(e) => setAug("rotate", e.target.checked)} /> Rotation
        </label>
        {form.augmentations.rotate && (
          <label>
            ± degrees
            <input type="number" value={form.augmentations.rotate_degrees} onChange={(e) => setAug("rotate_degrees", Number(e.target.value))} />
          </label>
        )}
        <label className="check">
          <input type="checkbox" checked={form.augmentations.color_jitter} onChange={(e) => setAug("color_jitter", e.target.checked)} /> Colour jitter
        </label>
        {form.augmentations.color_jitter && (
          <label>
            strength
            <input type="number" step="0.05" value={form.augmentations.color_strength} onChange={(e) => setAug("color_strength", Number(e.target.value))} />
          </label>
        )}
        {byField.augmentations?.map((m) => (
          <span key={m} className="field-error">
            {m}
          </span>
        ))}
      </fieldset>

      <fieldset>
        <legend>Data, evaluation and checkpoints</legend>
        {numberInput(
          "val_fraction",
          "Validation hold-out (%)",
          "Assets in the val split are the validation set; only when there are none is this share of the train split held out.",
        )}
        {numberInput("eval_interval", "Evaluate every (steps)", undefined, "1")}
        {numberInput("log_interval", "Log every (steps)", undefined, "1")}
        {numberInput("checkpoint_every_n_steps", "Checkpoint every (steps)", "0 = only the best and the final checkpoint", "1")}
        {numberInput("keep_last_k", "Keep last checkpoints", undefined, "1")}
        {field(
          "keep_best_metric",
          "Best checkpoint by",
          <select name="keep_best_metric" value={form.keep_best_metric} onChange={(e) => set("keep_best_metric", e.target.value)}>
            {BEST_METRICS.map((m) => (
              <option key={m}>{m}</option>
            ))}
            <option value="">none</option>
          </select>,
        )}
        {numberInput("early_stopping_patience", "Early stopping patience (evaluations)", "0 = never stop early", "1")}
        {numberInput("num_gpus", "GPUs", undefined, "1")}
      </fieldset>

      <SplitReadiness projectId={projectId} attempt={start.error ?? start.data} />
      <div className="row builder-actions">
        <button type="submit" className="primary" disabled={start.isPending}>
          {start.isPending ? "Starting…" : "Run Training"}
        </button>
        <button type="button" onClick={() => { setForm(DEFAULT_FORM); saveForm(projectId, null); setLocalErrors([]); start.reset(); }}>
          Reset to defaults
        </button>
        {models.error && <span className="error">Could not load the model list: {models.error.message}</span>}
      </div>
    </form>
  );
}

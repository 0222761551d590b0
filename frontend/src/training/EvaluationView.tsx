/**
 * Evaluation results of a run: a slider across its evaluations; for the chosen one the
 * predicted masks over the fixed validation images, the confusion matrix as a heat map and
 * the per-class IoU / F1 table.
 *
 * Sample predictions carry COCO RLE per model label (0 = background, class.index + 1 = class).
 * The validation image of a sample is `sample.asset_id` when the server sends it; otherwise
 * it is the sample's index into the project's labelled val-split assets in id order, which is
 * how the worker builds the validation set when the project has a val split.
 */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import { useClasses } from "../api/hooks";
import { api } from "../api/client";
import type { EvalValues, PerClassMetric, SamplePrediction, TrainingRun } from "../api/training";
import type { Asset, LabelClass, MaskEntry, Page } from "../api/types";
import { paintLabels, sampleClassMap, sampleMasks, truthClassMap } from "./evaluation";
import type { Point } from "./series";

interface Props {
  run: TrainingRun;
  evals: readonly Point[];
}

const pct = (v: number | null | undefined) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);

function hexRgb(color: string): [number, number, number] {
  const m = color.replace("#", "").match(/^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

/** Labelled val-split assets of the project in id order (the fallback image of a sample). */
function useValAssets(projectId: number, enabled: boolean) {
  return useQuery({
    queryKey: ["val-assets", projectId],
    enabled,
    queryFn: async () => {
      const page = await api<Page<Asset>>(`/projects/${projectId}/assets/`, { query: { split: "val", page_size: 500 } });
      return page.results.filter((a) => a.status !== "unlabeled").sort((a, b) => a.id - b.id);
    },
    staleTime: 60_000,
  });
}

type Show = "prediction" | "truth" | "both";
const SHOW_LABELS: Record<Show, string> = { prediction: "Prediction", truth: "Ground truth", both: "Both" };

export function EvaluationView({ run, evals }: Props) {
  const [chosen, setChosen] = useState<number | null>(null); // index into evals; null = latest
  const [show, setShow] = useState<Show>("prediction");
  const [enlarged, setEnlarged] = useState<number | null>(null); // a sample's index
  const index = chosen === null ? evals.length - 1 : Math.min(chosen, evals.length - 1);
  const point = evals[index];
  const classes = useClasses(run.project);
  const values = point?.values as EvalValues | undefined;
  const samples = values?.samples ?? [];
  const needFallback = samples.some((s) => s.asset_id === undefined);
  const valAssets = useValAssets(run.project, needFallback);

  if (!point) return <p className="muted">No evaluation yet (every {run.config.eval_interval} steps).</p>;
  const byLabel = new Map<number, LabelClass>((classes.data ?? []).map((c) => [c.index + 1, c]));
  const names = (values?.per_class ?? []).map((c) => c.name);

  return (
    <div className="evaluation" data-testid="evaluation-view">
      <div className="eval-slider">
        <label>
          Evaluation {index + 1} of {evals.length} — step {point.step}
          <input
            type="range"
            min={0}
            max={Math.max(0, evals.length - 1)}
            value={index}
            aria-label="Evaluation"
            onChange={(e) => {
              const v = Number(e.target.value);
              setChosen(v === evals.length - 1 ? null : v);
            }}
          />
        </label>
        <p className="eval-summary">
          mIoU <strong data-testid="eval-miou">{pct(values?.miou)}</strong> · mean F1 <strong>{pct(values?.mean_f1)}</strong> · pixel accuracy{" "}
          <strong>{pct(values?.pixel_accuracy)}</strong>
        </p>
      </div>

      <h3>Predicted masks on validation images</h3>
      <div className="row eval-show" role="radiogroup" aria-label="Show on the images">
        {(Object.keys(SHOW_LABELS) as Show[]).map((k) => (
          <label key={k} className="small">
            <input type="radio" name="eval-show" value={k} checked={show === k} onChange={() => setShow(k)} /> {SHOW_LABELS[k]}
          </label>
        ))}
        {show !== "prediction" && <span className="muted small">ground truth: the asset's current masks{show === "both" ? " (outlined)" : ""}</span>}
      </div>
      {samples.length === 0 ? (
        <p className="muted">This evaluation has no sample predictions.</p>
      ) : (
        <ul className="sample-grid">
          {samples.map((s) => {
            const asset = s.asset_id !== undefined ? { id: s.asset_id } : valAssets.data?.[s.index];
            return (
              <li key={s.index}>
                <button type="button" className="sample-open" aria-label={`Enlarge validation image ${s.index + 1}`} onClick={() => setEnlarged(s.index)}>
                  <SampleOverlay sample={s} assetId={asset?.id ?? null} byLabel={byLabel} show={show} />
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {enlarged !== null && samples.some((s) => s.index === enlarged) && (
        <EnlargedSample onClose={() => setEnlarged(null)}>
          {(() => {
            const s = samples.find((x) => x.index === enlarged)!;
            const asset = s.asset_id !== undefined ? { id: s.asset_id } : valAssets.data?.[s.index];
            return <SampleOverlay sample={s} assetId={asset?.id ?? null} byLabel={byLabel} show={show} />;
          })()}
        </EnlargedSample>
      )}
      <Legend classes={classes.data ?? []} />

      <h3>Confusion matrix</h3>
      {values?.confusion ? (
        <ConfusionHeatmap matrix={values.confusion} names={names} />
      ) : (
        <p className="muted" data-testid="confusion-missing">This run's evaluations do not include a confusion matrix.</p>
      )}

      <h3>Per class</h3>
      <PerClassTable rows={values?.per_class ?? []} />
    </div>
  );
}

function Legend({ classes }: { classes: LabelClass[] }) {
  return (
    <ul className="legend">
      {classes.map((c) => (
        <li key={c.id}>
          <span className="swatch" style={{ background: c.color }} /> {c.name}
        </li>
      ))}
    </ul>
  );
}

/** A sample shown large over the page; Escape, the button or a click outside closes it. */
function EnlargedSample({ children, onClose }: { children: React.ReactNode; onClose: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    close.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="sample-backdrop" onClick={onClose}>
      <div className="sample-enlarged card" role="dialog" aria-modal="true" aria-label="Enlarged validation image" onClick={(e) => e.stopPropagation()}>
        {children}
        <button ref={close} type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}

/** The asset's current masks (the ground truth shown next to a prediction). */
function useTruthMasks(assetId: number | null, enabled: boolean) {
  return useQuery({
    queryKey: ["eval-truth", assetId],
    enabled: enabled && assetId !== null,
    queryFn: async () => {
      const data = await api<{ masks: MaskEntry[] } | MaskEntry[]>(`/assets/${assetId}/masks/`);
      return Array.isArray(data) ? data : data.masks;
    },
    staleTime: 60_000,
  });
}

function colorOfLabel(byLabel: Map<number, LabelClass>) {
  return (label: number): [number, number, number] => {
    const cls = byLabel.get(label);
    return cls ? hexRgb(cls.color) : [255, 0, 255];
  };
}

/**
 * The validation image with the predicted class masks (filled, 50% opacity), the ground
 * truth (filled), or both (prediction filled, ground truth outlined).
 */
function SampleOverlay({ sample, assetId, byLabel, show }: {
  sample: SamplePrediction; assetId: number | null; byLabel: Map<number, LabelClass>; show: Show;
}) {
  const predCanvas = useRef<HTMLCanvasElement>(null);
  const truthCanvas = useRef<HTMLCanvasElement>(null);
  const [h, w] = sample.size;
  const wantTruth = show !== "prediction";
  const truth = useTruthMasks(assetId, wantTruth);
  const labelOf = useMemo(() => new Map([...byLabel].map(([label, cls]) => [cls.id, label])), [byLabel]);
  const prediction = useMemo(
    () => new ImageData(paintLabels(sampleClassMap(sample), h, w, colorOfLabel(byLabel), "fill"), w, h),
    [sample, byLabel, h, w],
  );
  const truthMap = useMemo(() => (truth.data ? truthClassMap(truth.data, h, w, labelOf) : null), [truth.data, h, w, labelOf]);
  const truthImage = useMemo(
    () => (truthMap ? new ImageData(paintLabels(truthMap, h, w, colorOfLabel(byLabel), show === "both" ? "outline" : "fill"), w, h) : null),
    [truthMap, h, w, byLabel, show],
  );
  const predicted = sampleMasks(sample).map(([label]) => label);

  useEffect(() => {
    for (const [ref, image, visible] of [
      [predCanvas, prediction, show !== "truth"],
      [truthCanvas, truthImage, show !== "prediction"],
    ] as const) {
      const c = ref.current;
      if (!c) continue;
      c.width = w;
      c.height = h;
      const ctx = c.getContext("2d")!;
      if (visible && image) ctx.putImageData(image, 0, 0);
      else ctx.clearRect(0, 0, w, h);
    }
  }, [prediction, truthImage, show, w, h]);

  const truthNote = !wantTruth ? "" : truth.isPending ? " · loading ground truth…" : truthMap ? "" : " · no ground truth at this size";
  return (
    <figure className="sample" data-testid="sample-prediction" data-labels={predicted.join(",")} data-show={show}
      data-truth={truthMap ? "yes" : "no"}>
      <div className="sample-stack" style={{ aspectRatio: `${w} / ${h}` }}>
        {assetId !== null ? <img src={`/api/v1/assets/${assetId}/file/`} alt={`validation image ${sample.index + 1}`} /> : <div className="sample-missing" />}
        <canvas ref={predCanvas} aria-label="predicted masks" />
        <canvas ref={truthCanvas} aria-label="ground truth masks" />
      </div>
      <figcaption className="small muted">
        {assetId !== null ? `asset ${assetId}` : "image unknown"} · {predicted.length} classes predicted{truthNote}
      </figcaption>
    </figure>
  );
}

/** Heat map of a confusion matrix: rows = true class, columns = predicted; colour = row share. */
export function ConfusionHeatmap({ matrix, names }: { matrix: number[][]; names: string[] }) {
  const label = (i: number) => names[i] ?? String(i);
  return (
    <div className="confusion-wrap">
      <table className="confusion" data-testid="confusion-matrix">
        <caption className="small muted">rows: true class · columns: predicted class · cell: share of the row's pixels</caption>
        <thead>
          <tr>
            <th scope="col">true \ predicted</th>
            {matrix.map((_, j) => (
              <th key={j} scope="col">
                {label(j)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {matrix.map((row, i) => {
            const total = row.reduce((a, b) => a + b, 0);
            return (
              <tr key={i}>
                <th scope="row">{label(i)}</th>
                {row.map((v, j) => {
                  const share = total ? v / total : 0;
                  const alpha = share > 0 || i === j ? Math.round((0.12 + 0.88 * share) * 1000) / 1000 : 0;
                  const bg = i === j ? `rgba(34,197,94,${alpha})` : `rgba(239,68,68,${alpha})`;
                  return (
                    <td key={j} style={{ background: bg }} title={`${label(i)} → ${label(j)}: ${v} px`}>
                      {total ? `${(share * 100).toFixed(0)}%` : "—"}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function PerClassTable({ rows }: { rows: PerClassMetric[] }) {
  if (!rows.length) return <p className="muted">No per-class figures.</p>;
  return (
    <table className="per-class" data-testid="per-class-table">
      <thead>
        <tr>
          <th scope="col">class</th>
          <th scope="col">IoU</th>
          <th scope="col">F1</th>
          <th scope="col">true pixels</th>
          <th scope="col">predicted pixels</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.index}>
            <th scope="row">{r.name}</th>
            <td>{pct(r.iou)}</td>
            <td>{pct(r.f1)}</td>
            <td>{r.support}</td>
            <td>{r.predicted}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

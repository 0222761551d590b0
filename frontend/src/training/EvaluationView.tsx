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
import type { Asset, LabelClass, Page } from "../api/types";
import { sampleClassMap, sampleMasks } from "./evaluation";
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

export function EvaluationView({ run, evals }: Props) {
  const [chosen, setChosen] = useState<number | null>(null); // index into evals; null = latest
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
      {samples.length === 0 ? (
        <p className="muted">This evaluation has no sample predictions.</p>
      ) : (
        <ul className="sample-grid">
          {samples.map((s) => {
            const asset = s.asset_id !== undefined ? { id: s.asset_id } : valAssets.data?.[s.index];
            return (
              <li key={s.index}>
                <SampleOverlay sample={s} assetId={asset?.id ?? null} byLabel={byLabel} />
              </li>
            );
          })}
        </ul>
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

/** The validation image with the predicted class masks drawn over it at 50% opacity. */
function SampleOverlay({ sample, assetId, byLabel }: { sample: SamplePrediction; assetId: number | null; byLabel: Map<number, LabelClass> }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [h, w] = sample.size;
  const overlay = useMemo(() => {
    const labels = sampleClassMap(sample);
    const colors = new Map<number, [number, number, number]>();
    const rgba = new Uint8ClampedArray(h * w * 4);
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i];
      if (!label) continue;
      let c = colors.get(label);
      if (!c) {
        const cls = byLabel.get(label);
        c = cls ? hexRgb(cls.color) : [255, 0, 255];
        colors.set(label, c);
      }
      rgba[i * 4] = c[0];
      rgba[i * 4 + 1] = c[1];
      rgba[i * 4 + 2] = c[2];
      rgba[i * 4 + 3] = 140;
    }
    return new ImageData(rgba, w, h);
  }, [sample, byLabel, h, w]);
  const predicted = sampleMasks(sample).map(([label]) => label);

  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    c.width = w;
    c.height = h;
    c.getContext("2d")!.putImageData(overlay, 0, 0);
  }, [overlay, w, h]);

  return (
    <figure className="sample" data-testid="sample-prediction" data-labels={predicted.join(",")}>
      <div className="sample-stack" style={{ aspectRatio: `${w} / ${h}` }}>
        {assetId !== null ? <img src={`/api/v1/assets/${assetId}/file/`} alt={`validation image ${sample.index + 1}`} /> : <div className="sample-missing" />}
        <canvas ref={canvas} aria-label="predicted masks" />
      </div>
      <figcaption className="small muted">
        {assetId !== null ? `asset ${assetId}` : "image unknown"} · {predicted.length} classes predicted
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

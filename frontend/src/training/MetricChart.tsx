/**
 * One uPlot line chart over training steps. uPlot gives zoom (drag across the plot; double
 * click resets) and the hover legend with the values at the cursor. New data is pushed with
 * setData; while the user is zoomed in, the zoom is kept.
 *
 * The wrapper carries `data-points` = the number of plotted (non-null) values, so tests and
 * screen readers can tell the chart grew without reading pixels.
 */
import { useEffect, useMemo, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { alignSeries, plottedCount, type Point } from "./series";

export interface ChartSeries {
  label: string;
  color: string;
  points: readonly Point[];
  pick: (p: Point) => number | null | undefined;
  dash?: number[];
}

interface Props {
  title: string;
  series: ChartSeries[];
  height?: number;
  log?: boolean;
  format?: (v: number) => string;
  testId?: string;
}

/** Short numbers for axes and the legend: 1.234, 0.0123, 3.00e-4, 1.2e+4. */
export const defaultFormat = (v: number): string => {
  const a = Math.abs(v);
  if (v === 0) return "0";
  if (a >= 10_000 || a < 0.01) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
};

export function MetricChart({ title, series, height = 220, log = false, format = defaultFormat, testId }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomed = useRef(false);
  const data = useMemo(() => alignSeries(series.map((s) => ({ points: s.points, pick: s.pick }))), [series]);
  const count = plottedCount(data);
  const shape = series.map((s) => `${s.label}:${s.color}`).join("|");

  // (Re)build the plot when the set of series changes.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [
        { stroke: "#9aa3b2", grid: { stroke: "#262b35" }, ticks: { stroke: "#262b35" }, label: "step" },
        { stroke: "#9aa3b2", grid: { stroke: "#262b35" }, ticks: { stroke: "#262b35" }, size: 70, values: (_u, vals) => vals.map((v) => (v == null ? "" : format(v))) },
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      series: [
        { label: "step" },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          dash: s.dash,
          spanGaps: true,
          points: { show: true, size: 4 },
          value: (_u: uPlot, v: number | null) => (v == null ? "—" : format(v)),
        })),
      ],
      hooks: {
        setSelect: [(u) => { if (u.select.width > 0) zoomed.current = true; }],
      },
    };
    const u = new uPlot(opts, data as uPlot.AlignedData, el);
    plot.current = u;
    const reset = () => { zoomed.current = false; };
    u.over.addEventListener("dblclick", reset);
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.over.removeEventListener("dblclick", reset);
      u.destroy();
      plot.current = null;
    };
    // data is pushed by the effect below; rebuilding on every point would lose zoom/hover.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, height, log]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData, !zoomed.current);
  }, [data]);

  return (
    <figure className="chart" data-testid={testId} data-points={count} aria-label={`${title}: ${count} points`}>
      <figcaption>{title}</figcaption>
      <div ref={box} className="chart-plot" />
      {count === 0 && <p className="muted small chart-empty">No points yet.</p>}
    </figure>
  );
}

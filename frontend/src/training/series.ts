/**
 * Metric points of one run, kept sorted by step with at most one point per (kind, step).
 *
 * Points arrive from three places that overlap: the initial GET /metrics/, the websocket
 * replay after a (re)connect, and live events. Merging by step makes the result independent
 * of arrival order and of duplicates. A resumed run (its worker died, it restarted from a
 * checkpoint) trains the steps after the checkpoint again: `truncateAfter(step)` drops the
 * stale points so the new ones can take their place.
 */

export type Kind = "train" | "eval";

export interface Point<V = Record<string, unknown>> {
  id?: number;
  step: number;
  values: V;
}

/** Insert `incoming` into `sorted` (ascending by step, unique steps); returns [merged, added]. */
export function mergeByStep<P extends Point>(sorted: readonly P[], incoming: readonly P[]): [P[], number] {
  if (incoming.length === 0) return [sorted as P[], 0];
  const out = sorted.slice();
  let added = 0;
  for (const p of incoming) {
    const last = out.length ? out[out.length - 1].step : -Infinity;
    if (p.step > last) {
      out.push(p); // the common case: live points arrive in order
      added++;
      continue;
    }
    // binary search for the first index with step >= p.step
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (out[mid].step < p.step) lo = mid + 1;
      else hi = mid;
    }
    if (lo < out.length && out[lo].step === p.step) continue; // already have this step
    out.splice(lo, 0, p);
    added++;
  }
  return [out, added];
}

/** Both series of a run. Immutable: every change returns a new object (cheap for React). */
export interface RunSeries {
  train: Point[];
  eval: Point[];
}

export const emptySeries: RunSeries = { train: [], eval: [] };

export function addPoints(s: RunSeries, kind: Kind, points: readonly Point[]): RunSeries {
  const [merged, added] = mergeByStep(s[kind], points);
  return added ? { ...s, [kind]: merged } : s;
}

/** Drop every point after `step` (both kinds). */
export function truncateAfter(s: RunSeries, step: number): RunSeries {
  const keep = (ps: Point[]) => (ps.length && ps[ps.length - 1].step > step ? ps.filter((p) => p.step <= step) : ps);
  const train = keep(s.train);
  const ev = keep(s.eval);
  return train === s.train && ev === s.eval ? s : { train, eval: ev };
}

/** The highest step held in either series (-1 when empty). */
export function highestStep(s: RunSeries): number {
  const t = s.train.length ? s.train[s.train.length - 1].step : -1;
  const e = s.eval.length ? s.eval[s.eval.length - 1].step : -1;
  return Math.max(t, e);
}

/**
 * The `last_step` to reconnect with. The server replays points with step > last_step, and a
 * train and an eval point can share a step; one below the highest step makes sure the other
 * kind at that step is not lost when the connection dropped between the two. The duplicate
 * that comes back is ignored by mergeByStep.
 */
export function resumeStep(s: RunSeries): number {
  const h = highestStep(s);
  return h < 0 ? -1 : h - 1;
}

/**
 * Columns for a uPlot chart: a shared x (steps, the union over series) and one y array per
 * series with null where that series has no point. `pick` reads the value of a point.
 */
export function alignSeries(
  sources: { points: readonly Point[]; pick: (p: Point) => number | null | undefined }[],
): [number[], ...(number | null)[][]] {
  const steps = new Set<number>();
  for (const s of sources) for (const p of s.points) steps.add(p.step);
  const xs = [...steps].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = sources.map((s) => {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    for (const p of s.points) {
      const v = s.pick(p);
      col[index.get(p.step)!] = typeof v === "number" && Number.isFinite(v) ? v : null;
    }
    return col;
  });
  return [xs, ...ys];
}

/** How many non-null values the y columns of `alignSeries` hold (plotted points). */
export function plottedCount(columns: readonly (readonly (number | null)[])[]): number {
  let n = 0;
  for (let i = 1; i < columns.length; i++) for (const v of columns[i]) if (v !== null) n++;
  return n;
}

/**
 * Estimated seconds left: from images/s when known (steps/s = images_per_second / batch),
 * else from the elapsed wall time per step. null when neither can be told yet.
 */
export function etaSeconds(opts: {
  step: number;
  totalSteps: number;
  imagesPerSecond?: number | null;
  batchSize?: number;
  startedAt?: number | null;
  now?: number;
  firstStep?: number;
}): number | null {
  const left = Math.max(0, opts.totalSteps - opts.step);
  if (left === 0) return 0;
  if (opts.imagesPerSecond && opts.batchSize && opts.imagesPerSecond > 0) {
    return left / (opts.imagesPerSecond / opts.batchSize);
  }
  const done = opts.step - (opts.firstStep ?? 0);
  if (opts.startedAt != null && opts.now != null && done > 0) {
    return ((opts.now - opts.startedAt) / 1000 / done) * left;
  }
  return null;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Tracks a run's resumptions from status events. A lost worker makes the server re-queue the
 * run with `attempts + 1`; when it runs again it restarts at its last checkpoint (`step` of
 * that running status) and trains the later steps again. Returns the step to truncate the
 * series to (and reconnect from) exactly once per resumption, else null.
 */
export interface ResumeTracker {
  attempts: number | null;
  pending: boolean;
}

export function trackResume(t: ResumeTracker, status: { status: string; step: number; attempts: number }): [ResumeTracker, number | null] {
  const grew = t.attempts !== null && status.attempts > t.attempts;
  const pending = t.pending || grew;
  if (pending && status.status === "running") return [{ attempts: status.attempts, pending: false }, status.step];
  return [{ attempts: status.attempts, pending }, null];
}

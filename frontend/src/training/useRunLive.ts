/**
 * Live state of one training run for the run page: the metric series (train + eval, merged
 * by step) and the connection state, with the run in the React Query cache kept current
 * from `training.status` / `training.metric` events.
 *
 * An active run is followed over the websocket (the server replays what we lack first); a
 * finished run is read once with GET /trainings/{id}/metrics/.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { FINISHED_STATUSES, fetchMetrics, trainingKeys, type RunStatus, type TrainingRun } from "../api/training";
import { RunSocket, type RunEvent, type SocketState } from "./runSocket";
import { addPoints, emptySeries, resumeStep, trackResume, truncateAfter, type Kind, type ResumeTracker, type RunSeries } from "./series";

export interface RunLive {
  series: RunSeries;
  socket: SocketState;
  /** Reconnects so far (for the status line). */
  reconnects: number;
}

function isFinished(status: string | undefined): boolean {
  return FINISHED_STATUSES.includes(status as RunStatus);
}

export function useRunLive(runId: number, run: TrainingRun | undefined): RunLive {
  const qc = useQueryClient();
  const [series, setSeries] = useState<RunSeries>(emptySeries);
  const [socketState, setSocketState] = useState<SocketState>("idle");
  const [reconnects, setReconnects] = useState(0);
  const seriesRef = useRef<RunSeries>(emptySeries);
  const resumeRef = useRef<ResumeTracker>({ attempts: null, pending: false });
  const known = run !== undefined;
  const finished = isFinished(run?.status);

  const update = (fn: (s: RunSeries) => RunSeries) => {
    const next = fn(seriesRef.current);
    if (next !== seriesRef.current) {
      seriesRef.current = next;
      setSeries(next);
      // Read by the browser tests (no duplicate or missing steps after reconnects).
      (window as unknown as { __tesseraRunSeries?: RunSeries }).__tesseraRunSeries = next;
    }
  };

  // Reset when the page switches to another run.
  useEffect(() => {
    seriesRef.current = emptySeries;
    resumeRef.current = { attempts: null, pending: false };
    setSeries(emptySeries);
    setReconnects(0);
  }, [runId]);

  // A finished run: read every point once.
  useEffect(() => {
    if (!known || !finished) return;
    const ctrl = new AbortController();
    fetchMetrics(runId, ctrl.signal)
      .then((points) => {
        const train = points.filter((p) => p.kind !== "eval");
        const ev = points.filter((p) => p.kind === "eval");
        update((s) => addPoints(addPoints(s, "train", train), "eval", ev));
      })
      .catch(() => undefined);
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId, known, finished]);

  // An active run: follow it live.
  useEffect(() => {
    if (!known || finished) return;
    const patchRun = (patch: Partial<TrainingRun>) =>
      qc.setQueryData<TrainingRun>(trainingKeys.run(runId), (old) => (old ? { ...old, ...patch } : old));
    let sock: RunSocket | null = null;
    const onEvent = (e: RunEvent) => {
      if (e.type === "training.metric" || e.type === "training.eval") {
        const kind: Kind = e.type === "training.metric" ? "train" : "eval";
        update((s) => addPoints(s, kind, [e.payload]));
        if (kind === "train") {
          const ips = e.payload.values.images_per_second;
          patchRun({ step: e.payload.step, ...(typeof ips === "number" ? { images_per_second: ips } : {}) });
        }
      } else if (e.type === "training.status") {
        const p = e.payload;
        const [tracker, cut] = trackResume(resumeRef.current, p);
        resumeRef.current = tracker;
        patchRun({ status: p.status as RunStatus, step: p.step, total_steps: p.total_steps, message: p.message, error: p.error, attempts: p.attempts });
        if (cut !== null) {
          // Resumed from a checkpoint at `cut`: the later steps are trained again.
          update((s) => truncateAfter(s, cut));
          sock?.reconnectNow();
        }
        if (isFinished(p.status)) {
          void qc.invalidateQueries({ queryKey: trainingKeys.run(runId) });
          void qc.invalidateQueries({ queryKey: trainingKeys.runs(run!.project) });
        }
      } else if (e.type === "training.checkpoint") {
        void qc.invalidateQueries({ queryKey: trainingKeys.run(runId) });
      }
    };
    sock = new RunSocket({
      runId,
      lastStep: () => resumeStep(seriesRef.current),
      onEvent,
      onState: (state) => {
        setSocketState(state);
        if (state === "waiting") setReconnects((n) => n + 1);
      },
    });
    sock.start();
    (window as unknown as { __tesseraRunSocket?: RunSocket }).__tesseraRunSocket = sock;
    return () => sock?.stop();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId, known, finished]);

  return { series, socket: socketState, reconnects };
}

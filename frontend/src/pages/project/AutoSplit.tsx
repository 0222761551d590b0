import { useState, type FormEvent } from "react";
import { useAutoSplit } from "../../api/assets";

/** Owner's "Auto-split": deal the assets into train/val/test by percentages with a seed. */
export function AutoSplit({ projectId, locked }: { projectId: number; locked: number }) {
  const [open, setOpen] = useState(false);
  const [ratios, setRatios] = useState({ train: 80, val: 10, test: 10 });
  const [seed, setSeed] = useState(0);
  const [includeLocked, setIncludeLocked] = useState(false);
  const split = useAutoSplit(projectId);
  const sum = ratios.train + ratios.val + ratios.test;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    split.mutate({ ...ratios, seed, include_locked: includeLocked });
  };
  if (!open) {
    return (
      <p className="row">
        <button type="button" onClick={() => setOpen(true)}>
          Auto-split…
        </button>
      </p>
    );
  }
  const pct = (key: "train" | "val" | "test") => (
    <label className="inline">
      {key} %
      <input
        type="number"
        name={`ratio-${key}`}
        min={0}
        max={100}
        step={1}
        value={ratios[key]}
        onChange={(e) => setRatios({ ...ratios, [key]: Number(e.target.value) })}
        style={{ width: "5rem" }}
      />
    </label>
  );
  return (
    <form className="card auto-split" onSubmit={submit} aria-label="Auto-split">
      <h2>Auto-split</h2>
      <p className="muted small">
        Deals the assets into train / val / test by these shares, the same way for the same seed, keeping each
        combination of classes spread over the splits.
      </p>
      <div className="row">
        {pct("train")}
        {pct("val")}
        {pct("test")}
        <label className="inline">
          Seed
          <input type="number" name="seed" min={0} value={seed} onChange={(e) => setSeed(Number(e.target.value))} style={{ width: "5rem" }} />
        </label>
      </div>
      <label className="check">
        <input type="checkbox" name="include-locked" checked={includeLocked} onChange={(e) => setIncludeLocked(e.target.checked)} />
        Also move the {locked} asset{locked === 1 ? "" : "s"} placed by hand
      </label>
      <div className="row">
        <button type="submit" className="primary" disabled={split.isPending || sum <= 0}>
          Split
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Close
        </button>
        {sum !== 100 && sum > 0 && <span className="muted small">Shares are normalised (they add up to {sum}).</span>}
      </div>
      {split.error && (
        <p className="error" role="alert">
          {split.error.message}
        </p>
      )}
      {split.data && !split.error && (
        <p role="status">
          Moved {split.data.moved}: train {split.data.assigned.train}, val {split.data.assigned.val}, test{" "}
          {split.data.assigned.test}
          {split.data.kept_locked ? `; ${split.data.kept_locked} placed by hand kept their split` : ""}.
        </p>
      )}
    </form>
  );
}

/**
 * The annotator's panels, presentational: the header (navigation, status, saving, conflict,
 * presence, journal offer), the toolbox and the side panel's classes and objects lists. State lives in
 * Annotator.tsx and its hooks; these only render it and report clicks.
 */
import { Link } from "react-router";
import type { AssetStatus, LabelClass } from "../api/types";
import type { SaveState } from "./autosave";
import type { IbMode, Proposal } from "./intellibrush";
import { keyLabel, TOOLS, type Tool } from "./keymap";
import type { MaskObject } from "./maskDocument";
import { describePresence, type PresentUser } from "./presence";

export function saveLabel(state: SaveState, error: string | null): string {
  if (state === "saved") return "All changes saved";
  if (state === "saving") return "Saving…";
  if (state === "dirty") return "Unsaved changes";
  return `Save failed${error ? `: ${error}` : ""}`;
}

export function AnnotatorHeader(p: {
  assetName: string;
  projectUrl: string;
  onLeave: (url: string) => void;
  onStep: (delta: 1 | -1) => void;
  status: AssetStatus;
  onStatus: (s: AssetStatus) => void;
  saveState: SaveState;
  saveError: string | null;
  conflict: boolean;
  onRetry: () => void;
  onKeepMine: () => void;
  onLoadTheirs: () => void;
  others: PresentUser[];
  recovered?: { savedAt: number; restore: () => void; discard: () => void } | null;
  onHelp: () => void;
}) {
  const label = saveLabel(p.saveState, p.saveError);
  return (
    <header className="annotator-bar">
      <Link
        to={p.projectUrl}
        onClick={(e) => {
          e.preventDefault();
          p.onLeave(p.projectUrl);
        }}
      >
        ← Project
      </Link>
      <h1 className="asset-title" title={p.assetName}>
        {p.assetName}
      </h1>
      <button type="button" onClick={() => p.onStep(-1)} aria-label={`Previous asset (${keyLabel("asset.prev")})`}>
        ‹ Prev
      </button>
      <button type="button" onClick={() => p.onStep(1)} aria-label={`Next asset (${keyLabel("asset.next")})`}>
        Next ›
      </button>
      <label>
        Status
        <select value={p.status} onChange={(e) => p.onStatus(e.target.value as AssetStatus)}>
          <option value="unlabeled">Unlabeled</option>
          <option value="labeled">Labeled</option>
          <option value="reviewed">Reviewed</option>
          {(p.status === "in_progress" || p.status === "rejected") && (
            <option value={p.status} disabled>
              {p.status === "rejected" ? "Rejected" : "In progress"}
            </option>
          )}
        </select>
      </label>
      <span className={`save-state ${p.saveState}`} title={label} role="status" aria-live="polite" data-save-state={p.saveState}>
        {label}
      </span>
      {p.saveState === "error" && !p.conflict && (
        <button type="button" onClick={p.onRetry}>
          Retry save
        </button>
      )}
      {p.conflict && (
        <>
          <button type="button" onClick={p.onKeepMine}>
            Keep mine (overwrite)
          </button>
          <button type="button" onClick={p.onLoadTheirs}>
            Load theirs
          </button>
        </>
      )}
      {p.others.length > 0 && (
        <span
          className="presence"
          role="status"
          data-testid="presence"
          title="Saves are conditional: a conflicting save is never applied silently"
        >
          Also open by {describePresence(p.others)}
        </span>
      )}
      {p.recovered && (
        <span className="recovered" role="alert" data-testid="journal-offer">
          Unsaved edits from {new Date(p.recovered.savedAt).toLocaleTimeString()} were kept on this device.
          <button type="button" className="primary" onClick={p.recovered.restore}>
            Restore them
          </button>
          <button type="button" onClick={p.recovered.discard}>
            Discard
          </button>
        </span>
      )}
      <button type="button" onClick={p.onHelp} aria-label={`Keyboard shortcuts (${keyLabel("help")})`}>
        ?
      </button>
    </header>
  );
}

/** A class's swatch: its colour, hatched for the ignore (void) class. */
export function swatchFill(c: LabelClass): string {
  return c.is_ignore
    ? `repeating-linear-gradient(45deg, ${c.color} 0 3px, transparent 3px 6px)`
    : c.color;
}

export function ClassesPanel(p: {
  projectId: number;
  classes: LabelClass[];
  current: number;
  onPick: (index: number) => void;
  hidden: Set<number>;
  onToggle: (classId: number) => void;
}) {
  return (
    <section aria-labelledby="classes-title">
      <h2 id="classes-title">Classes</h2>
      {p.classes.length === 0 && (
        <p className="muted">
          No classes. <Link to={`/projects/${p.projectId}/classes`}>Add one</Link>.
        </p>
      )}
      <ul className="palette">
        {p.classes.map((c, i) => (
          <li key={c.id} className={i === p.current ? "active" : ""}>
            <button type="button" className="class-pick" aria-pressed={i === p.current} onClick={() => p.onPick(i)}>
              <span className={`swatch${c.is_ignore ? " ignore" : ""}`} style={{ background: swatchFill(c) }} />
              {i < 9 && <kbd>{i + 1}</kbd>} {c.name}
              {c.is_ignore && (
                <span className="ignore-tag" title="Ignore (void): left out of training and evaluation">
                  ignore
                </span>
              )}
            </button>
            <button
              type="button"
              className="eye"
              aria-pressed={!p.hidden.has(c.id)}
              aria-label={`${p.hidden.has(c.id) ? "Show" : "Hide"} class ${c.name}`}
              title={`${p.hidden.has(c.id) ? "Show" : "Hide"} the masks of class ${c.name}`}
              onClick={() => p.onToggle(c.id)}
            >
              {p.hidden.has(c.id) ? "◌" : "●"}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ObjectsPanel(p: {
  objects: readonly MaskObject[];
  classes: LabelClass[];
  selected: number | null;
  onSelect: (o: MaskObject) => void;
  onSetClass: (objectId: number, classId: number) => void;
  hidden: Set<number>;
  onToggle: (objectId: number) => void;
  onDelete: (objectId: number) => void;
}) {
  const classById = new Map(p.classes.map((c) => [c.id, c]));
  return (
    <section aria-labelledby="objects-title">
      <h2 id="objects-title">Objects ({p.objects.length})</h2>
      <ul className="object-list">
        {p.objects.map((o) => {
          const c = classById.get(o.classId);
          return (
            <li key={o.id} className={o.id === p.selected ? "active" : ""}>
              <button type="button" className="object-pick" aria-pressed={o.id === p.selected} onClick={() => p.onSelect(o)}>
                <span className="swatch" style={{ background: c ? swatchFill(c) : "#f0f" }} />
                {c?.name ?? `class ${o.classId}`} #{o.id}
              </button>
              <select
                aria-label={`Class of object ${o.id}`}
                value={o.classId}
                onChange={(e) => p.onSetClass(o.id, Number(e.target.value))}
              >
                {p.classes.map((x) => (
                  <option key={x.id} value={x.id}>
                    {x.name}
                  </option>
                ))}
              </select>
              <button
                type="button"
                className="eye"
                aria-pressed={!p.hidden.has(o.id)}
                aria-label={`${p.hidden.has(o.id) ? "Show" : "Hide"} object ${o.id}`}
                title={`${p.hidden.has(o.id) ? "Show" : "Hide"} object ${o.id}`}
                onClick={() => p.onToggle(o.id)}
              >
                {p.hidden.has(o.id) ? "◌" : "●"}
              </button>
              <button
                type="button"
                className="danger"
                aria-label={`Delete object ${o.id}`}
                title={`Delete object ${o.id}`}
                onClick={() => p.onDelete(o.id)}
              >
                ✕
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

export function Toolbox(p: {
  tool: Tool;
  onTool: (t: Tool) => void;
  brushSize: number;
  onBrushSize: (n: number) => void;
  opacity: number;
  onOpacity: (n: number) => void;
  masksHidden: boolean;
  onMasksHidden: (v: boolean) => void;
  canUndo: boolean;
  canRedo: boolean;
  onUndo: () => void;
  onRedo: () => void;
  onFit: () => void;
  zoomPct: number;
  fillTolerance: number;
  onFillTolerance: (n: number) => void;
  fillOverwrite: boolean;
  onFillOverwrite: (v: boolean) => void;
  ibMode: IbMode | null;
  ibBusy: boolean;
  proposal: Proposal | null;
  canDiscard: boolean;
  onAccept: () => void;
  onDiscard: () => void;
  polygonPoints: number;
  onClosePolygon: () => void;
  onCancelPolygon: () => void;
}) {
  return (
    <aside className="toolbox" aria-label="Tools">
      <div role="radiogroup" aria-label="Tool">
        {TOOLS.map((t) => (
          <button
            key={t.id}
            type="button"
            role="radio"
            aria-checked={p.tool === t.id}
            className={p.tool === t.id ? "active" : ""}
            onClick={() => p.onTool(t.id)}
            title={`${t.label} (${t.key})`}
            data-tool={t.id}
          >
            {t.label} <kbd>{t.key}</kbd>
          </button>
        ))}
      </div>
      <label>
        Brush size <output>{p.brushSize}px</output>
        <input
          type="range"
          min={1}
          max={300}
          value={p.brushSize}
          onChange={(e) => p.onBrushSize(Number(e.target.value))}
          aria-label="Brush size"
        />
      </label>
      <label>
        Mask opacity <output>{Math.round(p.opacity * 100)}%</output>
        <input
          type="range"
          min={0}
          max={1}
          step={0.05}
          value={p.opacity}
          onChange={(e) => p.onOpacity(Number(e.target.value))}
          aria-label="Mask opacity"
        />
      </label>
      <label className="check">
        <input type="checkbox" checked={p.masksHidden} onChange={(e) => p.onMasksHidden(e.target.checked)} /> Hide masks ({keyLabel("masks.toggle")})
      </label>
      <div className="row">
        <button type="button" onClick={p.onUndo} disabled={!p.canUndo} aria-label={`Undo (${keyLabel("undo")})`}>
          Undo
        </button>
        <button type="button" onClick={p.onRedo} disabled={!p.canRedo} aria-label={`Redo (${keyLabel("redo")})`}>
          Redo
        </button>
      </div>
      <div className="row">
        <button type="button" onClick={p.onFit} aria-label={`Fit to window (${keyLabel("view.fit")})`}>
          Fit
        </button>
        <span className="muted">{p.zoomPct}%</span>
      </div>
      {p.tool === "fill" && (
        <div className="fill-panel">
          <label>
            Fill tolerance <output>{p.fillTolerance}</output>
            <input
              type="range"
              min={0}
              max={255}
              value={p.fillTolerance}
              onChange={(e) => p.onFillTolerance(Number(e.target.value))}
              aria-label="Fill tolerance"
              title="How far a pixel's colour may be from the clicked colour and still be filled (255: colour is ignored)"
            />
          </label>
          <label className="check">
            <input type="checkbox" checked={p.fillOverwrite} onChange={(e) => p.onFillOverwrite(e.target.checked)} /> Fill
            over other objects
          </label>
        </div>
      )}
      {p.tool === "intellibrush" && (
        <div className="ib-panel" aria-live="polite">
          <p className="muted small">Click to include, Alt/right-click to exclude, drag for a box.</p>
          {p.ibMode && (
            <p className={`ib-method ib-${p.ibMode.method}`} data-testid="ib-method" data-method={p.ibMode.method}>
              Method: <strong>{p.ibMode.label}</strong>
              {p.ibMode.detail && (
                <span className="muted small ib-detail" style={{ display: "block" }}>
                  {p.ibMode.detail}
                </span>
              )}
            </p>
          )}
          {p.ibBusy && <p role="status">Thinking…</p>}
          {p.proposal && (
            <p>
              Proposal ({p.proposal.method}, score {p.proposal.score.toFixed(2)})
            </p>
          )}
          <div className="row">
            <button type="button" className="primary" disabled={!p.proposal?.bitmap} onClick={p.onAccept}>
              Accept ⏎
            </button>
            <button type="button" disabled={!p.canDiscard} onClick={p.onDiscard}>
              Discard Esc
            </button>
          </div>
        </div>
      )}
      {p.tool === "polygon" && p.polygonPoints > 0 && (
        <div className="row">
          <button type="button" className="primary" disabled={p.polygonPoints < 3} onClick={p.onClosePolygon}>
            Close ⏎
          </button>
          <button type="button" onClick={p.onCancelPolygon}>
            Cancel
          </button>
        </div>
      )}
    </aside>
  );
}

import { useEffect, useRef } from "react";

export const SHORTCUTS: [string, string][] = [
  ["B", "Brush"],
  ["E", "Eraser"],
  ["P", "Polygon (click points; Enter or click the first point closes; Backspace removes a point)"],
  ["F", "Fill the clicked region"],
  ["I", "IntelliBrush: click to include, Alt+click or right-click to exclude, drag a box"],
  ["Enter", "Accept the IntelliBrush proposal / close the polygon"],
  ["Esc", "Discard the proposal / polygon in progress"],
  ["1 – 9", "Pick class 1 – 9"],
  ["[ / ]", "Smaller / larger brush"],
  ["N", "Next stroke starts a new object"],
  ["Delete", "Delete the selected object"],
  ["H", "Hide / show all masks"],
  ["Ctrl+Z", "Undo"],
  ["Ctrl+Shift+Z, Ctrl+Y", "Redo"],
  ["Ctrl+S", "Save now"],
  ["Wheel", "Zoom at the cursor"],
  ["Space + drag, middle drag", "Pan"],
  ["0", "Fit the image to the window"],
  ["← / →, A / D", "Previous / next asset"],
  ["?", "Show / hide this help"],
];

/** Modal list of keyboard shortcuts; Esc or ? closes it. */
export function KeyboardHelp({ onClose }: { onClose: () => void }) {
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    return () => prev?.focus?.();
  }, []);
  return (
    <div className="overlay" role="dialog" aria-modal="true" aria-labelledby="help-title" onClick={onClose}>
      <div className="card help" onClick={(e) => e.stopPropagation()}>
        <h2 id="help-title">Keyboard shortcuts</h2>
        <dl>
          {SHORTCUTS.map(([k, v]) => (
            <div key={k} className="shortcut">
              <dt>
                <kbd>{k}</kbd>
              </dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
        <button ref={closeRef} type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}

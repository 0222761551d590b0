import { useEffect, useRef } from "react";
import { KEYMAP } from "./keymap";

/** Modal list of the keymap's shortcuts; Esc or ? closes it. */
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
          {KEYMAP.map((b) => (
            <div key={b.action} className="shortcut">
              <dt>
                <kbd>{b.label}</kbd>
              </dt>
              <dd>{b.help}</dd>
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

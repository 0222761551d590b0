/**
 * The annotator's one keymap: the key handler dispatches from it, the toolbar shows its keys
 * and the help overlay lists it. Add a shortcut here and all three follow.
 */
export type Tool = "brush" | "eraser" | "polygon" | "fill" | "intellibrush";

export type Action =
  | `tool.${Tool}`
  | "accept"
  | "cancel"
  | "class"
  | "brush.smaller"
  | "brush.larger"
  | "object.new"
  | "object.delete"
  | "polygon.back"
  | "masks.toggle"
  | "undo"
  | "redo"
  | "save"
  | "view.fit"
  | "pan.hold"
  | "asset.prev"
  | "asset.next"
  | "help";

export interface Key {
  /** KeyboardEvent.key; letters match either case. */
  key: string;
  /** Ctrl (or Cmd on macOS) held. */
  mod?: boolean;
  /** Shift held (only checked with `mod`; "?" and capitals carry their own shift). */
  shift?: boolean;
}

export interface Binding {
  action: Action;
  keys: Key[];
  /** How the keys read in the help and the toolbar. */
  label: string;
  help: string;
}

const k = (...keys: string[]): Key[] => keys.map((key) => ({ key }));

export const KEYMAP: readonly Binding[] = [
  { action: "tool.brush", keys: k("b"), label: "B", help: "Brush" },
  { action: "tool.eraser", keys: k("e"), label: "E", help: "Eraser" },
  {
    action: "tool.polygon",
    keys: k("p"),
    label: "P",
    help: "Polygon (click points; Enter or click the first point closes; Backspace removes a point)",
  },
  {
    action: "tool.fill",
    keys: k("f"),
    label: "F",
    help: "Fill the clicked region (bounded by mask outlines and, with the tolerance slider, by image colour)",
  },
  {
    action: "tool.intellibrush",
    keys: k("i"),
    label: "I",
    help: "IntelliBrush: click to include, Alt+click or right-click to exclude, drag a box",
  },
  { action: "accept", keys: k("Enter"), label: "Enter", help: "Accept the IntelliBrush proposal / close the polygon" },
  { action: "cancel", keys: k("Escape"), label: "Esc", help: "Discard the proposal / polygon in progress / selection" },
  { action: "polygon.back", keys: k("Backspace"), label: "Backspace", help: "Remove the polygon's last point" },
  { action: "class", keys: k("1", "2", "3", "4", "5", "6", "7", "8", "9"), label: "1 – 9", help: "Pick class 1 – 9" },
  { action: "brush.smaller", keys: k("["), label: "[", help: "Smaller brush" },
  { action: "brush.larger", keys: k("]"), label: "]", help: "Larger brush" },
  { action: "object.new", keys: k("n"), label: "N", help: "Next stroke starts a new object" },
  { action: "object.delete", keys: k("Delete"), label: "Delete", help: "Delete the selected object" },
  { action: "masks.toggle", keys: k("h"), label: "H", help: "Hide / show all masks" },
  { action: "undo", keys: [{ key: "z", mod: true, shift: false }], label: "Ctrl+Z", help: "Undo" },
  {
    action: "redo",
    keys: [
      { key: "z", mod: true, shift: true },
      { key: "y", mod: true },
    ],
    label: "Ctrl+Shift+Z, Ctrl+Y",
    help: "Redo",
  },
  { action: "save", keys: [{ key: "s", mod: true }], label: "Ctrl+S", help: "Save now" },
  { action: "view.fit", keys: k("0"), label: "0", help: "Fit the image to the window (the wheel zooms at the cursor)" },
  { action: "pan.hold", keys: k(" "), label: "Space + drag", help: "Pan (a middle-button drag pans too)" },
  { action: "asset.prev", keys: k("ArrowLeft", "a"), label: "← / A", help: "Previous asset" },
  { action: "asset.next", keys: k("ArrowRight", "d"), label: "→ / D", help: "Next asset" },
  { action: "help", keys: k("?"), label: "?", help: "Show / hide this help" },
];

const norm = (key: string) => (key.length === 1 ? key.toLowerCase() : key);

export interface KeyInput {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

/** The binding a key press triggers (and, for "class", the class index), or null. */
export function actionFor(e: KeyInput): { action: Action; index: number } | null {
  const mod = e.ctrlKey || e.metaKey;
  if (e.altKey && !mod) return null;
  const key = norm(e.key);
  for (const b of KEYMAP) {
    const i = b.keys.findIndex(
      (x) => norm(x.key) === key && !!x.mod === mod && (!x.mod || x.shift === undefined || x.shift === e.shiftKey),
    );
    if (i >= 0) return { action: b.action, index: i };
  }
  return null;
}

/** The label of an action's keys ("B"), for buttons and tooltips. */
export function keyLabel(action: Action): string {
  return KEYMAP.find((b) => b.action === action)?.label ?? "";
}

export const TOOLS: { id: Tool; label: string; key: string }[] = (
  [
    ["brush", "Brush"],
    ["eraser", "Eraser"],
    ["polygon", "Polygon"],
    ["fill", "Fill"],
    ["intellibrush", "IntelliBrush"],
  ] as const
).map(([id, label]) => ({ id, label, key: keyLabel(`tool.${id}`) }));

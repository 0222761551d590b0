import { describe, expect, it } from "vitest";
import { actionFor, KEYMAP, keyLabel, TOOLS } from "./keymap";

const press = (key: string, mods: Partial<{ ctrl: boolean; meta: boolean; shift: boolean; alt: boolean }> = {}) =>
  actionFor({ key, ctrlKey: !!mods.ctrl, metaKey: !!mods.meta, shiftKey: !!mods.shift, altKey: !!mods.alt });

describe("keymap", () => {
  it("binds every key combination to at most one action", () => {
    const seen = new Map<string, string>();
    for (const b of KEYMAP)
      for (const k of b.keys) {
        const shifts = k.mod && k.shift === undefined ? [false, true] : [!!k.shift];
        for (const s of shifts) {
          const id = `${k.mod ? "mod+" : ""}${s ? "shift+" : ""}${k.key.toLowerCase()}`;
          expect(seen.get(id), `${id} is bound twice`).toBeUndefined();
          seen.set(id, b.action);
        }
      }
  });

  it("dispatches the presses the annotator handles", () => {
    expect(press("b")?.action).toBe("tool.brush");
    expect(press("B", { shift: true })?.action).toBe("tool.brush");
    expect(press("z", { ctrl: true })?.action).toBe("undo");
    expect(press("Z", { ctrl: true, shift: true })?.action).toBe("redo");
    expect(press("y", { meta: true })?.action).toBe("redo");
    expect(press("s", { ctrl: true })?.action).toBe("save");
    expect(press("?", { shift: true })?.action).toBe("help");
    expect(press("7")).toEqual({ action: "class", index: 6 });
    expect(press("ArrowRight")?.action).toBe("asset.next");
    expect(press("a")?.action).toBe("asset.prev");
    expect(press(" ")?.action).toBe("pan.hold");
    // Modifiers that no binding asks for leave the key to the browser.
    expect(press("b", { ctrl: true })).toBeNull();
    expect(press("b", { alt: true })).toBeNull();
    expect(press("r", { ctrl: true })).toBeNull();
    expect(press("x")).toBeNull();
  });

  it("gives the toolbar and the help the table's keys", () => {
    expect(TOOLS.map((t) => [t.id, t.key])).toEqual([
      ["brush", "B"],
      ["eraser", "E"],
      ["polygon", "P"],
      ["fill", "F"],
      ["intellibrush", "I"],
    ]);
    for (const b of KEYMAP) {
      expect(b.label).not.toBe("");
      expect(b.help).not.toBe("");
      expect(keyLabel(b.action)).toBe(b.label);
    }
  });
});

/** Picking assets in the grid: click toggles one, shift-click sets a range to the clicked tile's new state. */

export interface Picked {
  ids: Set<number>;
  /** Every asset matching the filter (not only the page): bulk actions send the filter. */
  allMatching: boolean;
  /** Index on the page of the last plain click, where a shift-click range starts. */
  anchor: number | null;
}

export const NONE: Picked = { ids: new Set(), allMatching: false, anchor: null };

/** The selection after a click on the tile at `index` of `pageIds` (shift: a range from the anchor). */
export function pickClick(p: Picked, pageIds: number[], index: number, shift: boolean): Picked {
  const id = pageIds[index];
  const ids = new Set(p.allMatching ? pageIds : p.ids);
  if (shift && p.anchor !== null) {
    const [from, to] = p.anchor < index ? [p.anchor, index] : [index, p.anchor];
    const select = !ids.has(id);
    for (const other of pageIds.slice(from, to + 1)) {
      if (select) ids.add(other);
      else ids.delete(other);
    }
    return { ids, allMatching: false, anchor: p.anchor };
  }
  if (ids.has(id)) ids.delete(id);
  else ids.add(id);
  return { ids, allMatching: false, anchor: index };
}

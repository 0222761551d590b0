/**
 * The annotator's mask model, DOM-free so it can be unit tested.
 *
 * An asset's labels are a list of objects; each object has one class and a binary mask stored as a
 * bitmap cropped to its bounding box (so a 4000x3000 image with 500 small objects costs the sum
 * of their boxes, not 500 full frames). Objects are disjoint: painting claims pixels from every
 * other object, which matches single-label semantic segmentation.
 *
 * Every change goes through an edit (`begin` ... `commit`) that records, per touched object, the
 * before/after pixels inside the edit's dirty rectangle; the resulting command makes undo/redo
 * exact and cheap. Listeners get the dirty rectangle so renderers redraw only that region.
 */
import { History } from "../lib/history";
import type { Box, BoxBitmap, CocoRle } from "../lib/rle";
import { boxBitmapToRle, rleToBoxBitmap } from "../lib/rle";
import { intersectBox, unionBox } from "./stamps";

export interface ApiMask {
  class_id: number;
  rle: CocoRle;
}

export class MaskObject {
  /** Pixels of the object: (box.y1-box.y0) x (box.x1-box.x0) bytes, row-major, 0/1. */
  data: Uint8Array;
  box: Box;

  constructor(
    readonly id: number,
    public classId: number,
    box: Box = { x0: 0, y0: 0, x1: 0, y1: 0 },
    data?: Uint8Array,
  ) {
    this.box = { ...box };
    this.data = data ?? new Uint8Array((box.x1 - box.x0) * (box.y1 - box.y0));
  }

  get boxWidth(): number {
    return this.box.x1 - this.box.x0;
  }

  get isEmptyBox(): boolean {
    return this.box.x1 <= this.box.x0 || this.box.y1 <= this.box.y0;
  }

  /** Value of image pixel (x, y): 1 when it belongs to this object. */
  at(x: number, y: number): number {
    const b = this.box;
    if (x < b.x0 || y < b.y0 || x >= b.x1 || y >= b.y1) return 0;
    return this.data[(y - b.y0) * (b.x1 - b.x0) + (x - b.x0)];
  }

  area(): number {
    let a = 0;
    for (let i = 0; i < this.data.length; i++) a += this.data[i];
    return a;
  }

  /** Re-box to `box` (grow or crop), keeping pixels inside it. */
  rebox(box: Box): void {
    const nb = { ...box };
    const nw = nb.x1 - nb.x0;
    const nh = nb.y1 - nb.y0;
    const data = new Uint8Array(Math.max(0, nw) * Math.max(0, nh));
    const common = this.isEmptyBox || nw <= 0 || nh <= 0 ? null : intersectBox(this.box, nb);
    if (common) {
      const ow = this.boxWidth;
      const len = common.x1 - common.x0;
      for (let y = common.y0; y < common.y1; y++) {
        const src = (y - this.box.y0) * ow + (common.x0 - this.box.x0);
        data.set(this.data.subarray(src, src + len), (y - nb.y0) * nw + (common.x0 - nb.x0));
      }
    }
    this.box = nb;
    this.data = data;
  }

  /**
   * Grow the box (never shrink) so it contains `b`. With `limit` (the image), a growing box
   * takes extra room on the sides it grows towards, so a long stroke reallocates the bitmap a
   * logarithmic number of times instead of on every pointer move; `commit` tightens it again.
   */
  cover(b: Box, limit?: Box): void {
    if (this.isEmptyBox) {
      this.rebox(b);
      return;
    }
    const cur = this.box;
    if (b.x0 >= cur.x0 && b.y0 >= cur.y0 && b.x1 <= cur.x1 && b.y1 <= cur.y1) return;
    const u = unionBox(cur, b)!;
    if (limit) {
      const padX = Math.max(32, (u.x1 - u.x0) >> 1);
      const padY = Math.max(32, (u.y1 - u.y0) >> 1);
      if (u.x0 < cur.x0) u.x0 = Math.max(limit.x0, u.x0 - padX);
      if (u.x1 > cur.x1) u.x1 = Math.min(limit.x1, u.x1 + padX);
      if (u.y0 < cur.y0) u.y0 = Math.max(limit.y0, u.y0 - padY);
      if (u.y1 > cur.y1) u.y1 = Math.min(limit.y1, u.y1 + padY);
    }
    this.rebox(u);
  }

  /** Tight box of set pixels, or null when empty. */
  tightBox(): Box | null {
    const w = this.boxWidth;
    const h = this.box.y1 - this.box.y0;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < h; y++) {
      const row = y * w;
      let first = -1;
      let last = -1;
      for (let x = 0; x < w; x++) {
        if (this.data[row + x]) {
          if (first < 0) first = x;
          last = x;
        }
      }
      if (first >= 0) {
        if (first < x0) x0 = first;
        if (last > x1) x1 = last;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
    if (x1 < 0) return null;
    return { x0: this.box.x0 + x0, y0: this.box.y0 + y0, x1: this.box.x0 + x1 + 1, y1: this.box.y0 + y1 + 1 };
  }

  /** Copy of the pixels inside `r` (image coordinates), r-sized, row-major. */
  crop(r: Box): Uint8Array {
    const rw = r.x1 - r.x0;
    const out = new Uint8Array(rw * (r.y1 - r.y0));
    const c = this.isEmptyBox ? null : intersectBox(this.box, r);
    if (c) {
      const ow = this.boxWidth;
      const len = c.x1 - c.x0;
      for (let y = c.y0; y < c.y1; y++) {
        const src = (y - this.box.y0) * ow + (c.x0 - this.box.x0);
        out.set(this.data.subarray(src, src + len), (y - r.y0) * rw + (c.x0 - r.x0));
      }
    }
    return out;
  }

  /** Write an r-sized crop back; the box must already cover the set pixels of the crop. */
  paste(r: Box, crop: Uint8Array): void {
    const c = this.isEmptyBox ? null : intersectBox(this.box, r);
    if (!c) return;
    const rw = r.x1 - r.x0;
    const ow = this.boxWidth;
    const len = c.x1 - c.x0;
    for (let y = c.y0; y < c.y1; y++) {
      const src = (y - r.y0) * rw + (c.x0 - r.x0);
      this.data.set(crop.subarray(src, src + len), (y - this.box.y0) * ow + (c.x0 - this.box.x0));
    }
  }

  toBoxBitmap(): BoxBitmap {
    return { box: { ...this.box }, data: this.data };
  }
}

/** What changed: `dirty` null means "everything"; `structural` when objects were added/removed/reclassed. */
export interface DocChange {
  dirty: Box | null;
  structural: boolean;
}

interface Snapshot {
  box: Box;
  data: Uint8Array;
  classId: number;
  index: number;
}

interface PatchState {
  box: Box;
  crop: Uint8Array;
}

interface ObjectPatch {
  id: number;
  classId: number;
  index: number;
  rect: Box;
  before: PatchState | null;
  after: PatchState | null;
}

interface PendingEdit {
  label: string;
  dirty: Box | null;
  /** Full copies of touched objects as they were before the edit (null: created in this edit). */
  before: Map<number, Snapshot | null>;
  structural: boolean;
}

export class MaskDocument {
  readonly history = new History(300);
  /** Increments on every change (edits, undo, redo); autosave compares it with the saved version. */
  version = 0;
  private list: MaskObject[] = [];
  private byId = new Map<number, MaskObject>();
  private nextId = 1;
  private edit: PendingEdit | null = null;
  private listeners = new Set<(c: DocChange) => void>();

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  static fromApi(width: number, height: number, masks: ApiMask[]): MaskDocument {
    const doc = new MaskDocument(width, height);
    for (const m of masks) {
      if (m.rle.size[0] !== height || m.rle.size[1] !== width) {
        throw new Error(`mask size ${m.rle.size} does not match image ${height}x${width}`);
      }
      const bm = rleToBoxBitmap(m.rle);
      if (!bm) continue;
      const obj = new MaskObject(doc.nextId++, m.class_id, bm.box, bm.data);
      doc.list.push(obj);
      doc.byId.set(obj.id, obj);
    }
    return doc;
  }

  /** Masks in the API's format, one entry per non-empty object, in object order. */
  toApi(): ApiMask[] {
    const out: ApiMask[] = [];
    for (const o of this.list) {
      if (o.isEmptyBox) continue;
      out.push({ class_id: o.classId, rle: boxBitmapToRle(o.toBoxBitmap(), this.height, this.width) });
    }
    return out;
  }

  get objects(): readonly MaskObject[] {
    return this.list;
  }

  get(id: number): MaskObject | undefined {
    return this.byId.get(id);
  }

  subscribe(fn: (c: DocChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Id of the object owning pixel (x, y), or 0. */
  ownerAt(x: number, y: number): number {
    for (let i = this.list.length - 1; i >= 0; i--) if (this.list[i].at(x, y)) return this.list[i].id;
    return 0;
  }

  /** Row-major width x height map of owning object ids (0 = none). */
  ownerMap(): Uint32Array {
    const map = new Uint32Array(this.width * this.height);
    for (const o of this.list) {
      if (o.isEmptyBox) continue;
      const w = o.boxWidth;
      for (let y = o.box.y0; y < o.box.y1; y++) {
        const src = (y - o.box.y0) * w;
        const dst = y * this.width + o.box.x0;
        for (let x = 0; x < w; x++) if (o.data[src + x]) map[dst + x] = o.id;
      }
    }
    return map;
  }

  // ---- edits -------------------------------------------------------------------------------

  get editing(): boolean {
    return this.edit !== null;
  }

  /** Start an edit; everything until `commit` becomes one undo step. */
  begin(label: string): void {
    if (this.edit) this.commit();
    this.edit = { label, dirty: null, before: new Map(), structural: false };
  }

  /** New empty object of `classId`, part of the current edit. Returns its id. */
  createObject(classId: number): number {
    const e = this.requireEdit();
    const obj = new MaskObject(this.nextId++, classId);
    this.list.push(obj);
    this.byId.set(obj.id, obj);
    e.before.set(obj.id, null);
    e.structural = true;
    return obj.id;
  }

  /** Add the stamp's pixels to object `targetId` and remove them from every other object. */
  paint(targetId: number, stamp: BoxBitmap): void {
    const e = this.requireEdit();
    const target = this.byId.get(targetId);
    if (!target) throw new Error(`no object ${targetId}`);
    const sb = stamp.box;
    const sw = sb.x1 - sb.x0;
    for (const o of this.list) {
      if (o === target || o.isEmptyBox) continue;
      const c = intersectBox(o.box, sb);
      if (c && this.clearPixels(o, stamp, c, e)) e.dirty = unionBox(e.dirty, c);
    }
    this.touch(target, e);
    target.cover(sb, { x0: 0, y0: 0, x1: this.width, y1: this.height });
    const tw = target.boxWidth;
    for (let y = sb.y0; y < sb.y1; y++) {
      const srow = (y - sb.y0) * sw;
      const trow = (y - target.box.y0) * tw - target.box.x0;
      for (let x = sb.x0; x < sb.x1; x++) if (stamp.data[srow + x - sb.x0]) target.data[trow + x] = 1;
    }
    e.dirty = unionBox(e.dirty, sb);
    this.emit({ dirty: sb, structural: false });
  }

  /** Remove the stamp's pixels from every object for which `filter` (default: all) is true. */
  erase(stamp: BoxBitmap, filter?: (o: MaskObject) => boolean): void {
    const e = this.requireEdit();
    let dirty: Box | null = null;
    for (const o of this.list) {
      if (o.isEmptyBox || (filter && !filter(o))) continue;
      const c = intersectBox(o.box, stamp.box);
      if (c && this.clearPixels(o, stamp, c, e)) dirty = unionBox(dirty, c);
    }
    if (dirty) {
      e.dirty = unionBox(e.dirty, dirty);
      this.emit({ dirty, structural: false });
    }
  }

  /** Delete an object (as part of the current edit). */
  removeObject(id: number): void {
    const e = this.requireEdit();
    const o = this.byId.get(id);
    if (!o) return;
    this.touch(o, e);
    const dirty = o.isEmptyBox ? null : { ...o.box };
    o.rebox({ x0: 0, y0: 0, x1: 0, y1: 0 });
    e.dirty = unionBox(e.dirty, dirty);
    e.structural = true;
    this.emit({ dirty, structural: false });
  }

  /** Finish the edit: tighten boxes, drop emptied objects, record one undo step. */
  commit(): void {
    const e = this.edit;
    if (!e) return;
    this.edit = null;
    const patches: ObjectPatch[] = [];
    for (const [id, snap] of e.before) {
      const o = this.byId.get(id)!;
      const tight = o.tightBox();
      if (tight) o.rebox(tight);
      const afterBox = tight;
      const beforeBox = snap ? snap.box : null;
      const rect = e.dirty && intersectBox(e.dirty, unionBox(beforeBox, afterBox) ?? e.dirty);
      const index = snap ? snap.index : this.list.indexOf(o);
      if (!afterBox) this.detach(o);
      if (!rect) continue;
      let before: PatchState | null = null;
      if (snap) {
        const tmp = new MaskObject(-1, snap.classId, snap.box, snap.data);
        before = { box: snap.box, crop: tmp.crop(rect) };
      }
      const after = afterBox ? { box: afterBox, crop: o.crop(rect) } : null;
      if (!before && !after) continue;
      patches.push({ id, classId: o.classId, index, rect, before, after });
    }
    if (patches.length === 0) {
      if (e.structural) this.emit({ dirty: null, structural: true });
      return;
    }
    const structural = patches.some((p) => !p.before || !p.after);
    const dirty = e.dirty;
    this.version++;
    this.history.push({
      label: e.label,
      undo: () => this.applyPatches(patches, "before", dirty, structural),
      redo: () => this.applyPatches(patches, "after", dirty, structural),
    });
    this.emit({ dirty, structural });
  }

  /** Abandon the current edit, restoring every touched object. */
  cancel(): void {
    const e = this.edit;
    if (!e) return;
    this.edit = null;
    for (const [id, snap] of e.before) {
      const o = this.byId.get(id)!;
      if (!snap) this.detach(o);
      else {
        o.box = { ...snap.box };
        o.data = snap.data;
      }
    }
    this.emit({ dirty: e.dirty, structural: e.structural });
  }

  /** Change an object's class (one undo step). */
  setObjectClass(id: number, classId: number): void {
    const o = this.byId.get(id);
    if (!o || o.classId === classId) return;
    if (this.edit) this.commit();
    const old = o.classId;
    const apply = (c: number) => {
      const obj = this.byId.get(id);
      if (!obj) return;
      obj.classId = c;
      this.version++;
      this.emit({ dirty: obj.isEmptyBox ? null : { ...obj.box }, structural: true });
    };
    apply(classId);
    this.history.push({ label: "Change class", undo: () => apply(old), redo: () => apply(classId) });
  }

  /** Delete an object (one undo step). */
  deleteObject(id: number): void {
    this.begin("Delete object");
    this.removeObject(id);
    this.commit();
  }

  undo(): boolean {
    if (this.edit) this.commit();
    return this.history.undo() !== null;
  }

  redo(): boolean {
    if (this.edit) this.commit();
    return this.history.redo() !== null;
  }

  // ---- internals -----------------------------------------------------------------------------

  private requireEdit(): PendingEdit {
    if (!this.edit) throw new Error("begin() an edit first");
    return this.edit;
  }

  private touch(o: MaskObject, e: PendingEdit): void {
    if (e.before.has(o.id)) return;
    e.before.set(o.id, {
      box: { ...o.box },
      data: o.data.slice(),
      classId: o.classId,
      index: this.list.indexOf(o),
    });
  }

  /** Clear stamp pixels from `o` within `c`; returns whether any pixel changed. */
  private clearPixels(o: MaskObject, stamp: BoxBitmap, c: Box, e: PendingEdit): boolean {
    const sb = stamp.box;
    const sw = sb.x1 - sb.x0;
    const ow = o.boxWidth;
    let touched = false;
    for (let y = c.y0; y < c.y1; y++) {
      const srow = (y - sb.y0) * sw - sb.x0;
      const orow = (y - o.box.y0) * ow - o.box.x0;
      for (let x = c.x0; x < c.x1; x++) {
        if (stamp.data[srow + x] && o.data[orow + x]) {
          if (!touched) {
            this.touch(o, e);
            touched = true;
          }
          o.data[orow + x] = 0;
        }
      }
    }
    return touched;
  }

  private detach(o: MaskObject): void {
    const i = this.list.indexOf(o);
    if (i >= 0) this.list.splice(i, 1);
    this.byId.delete(o.id);
  }

  private applyPatches(
    patches: ObjectPatch[],
    side: "before" | "after",
    dirty: Box | null,
    structural: boolean,
  ): void {
    // Insert in ascending index order so restored objects land where they were.
    const order = [...patches].sort((a, b) => a.index - b.index);
    for (const p of order) {
      const state = p[side];
      let o = this.byId.get(p.id);
      if (!state) {
        if (o) this.detach(o);
        continue;
      }
      if (!o) {
        o = new MaskObject(p.id, p.classId);
        this.list.splice(Math.min(p.index, this.list.length), 0, o);
        this.byId.set(p.id, o);
      }
      o.cover(state.box);
      o.paste(p.rect, state.crop);
      o.rebox(state.box);
    }
    this.version++;
    this.emit({ dirty, structural });
  }

  private emit(c: DocChange): void {
    for (const fn of this.listeners) fn(c);
  }
}

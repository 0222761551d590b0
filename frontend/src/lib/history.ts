/**
 * Undo/redo over reversible commands. Every edit in the annotator becomes one Command.
 */
export interface Command {
  /** Short human label, e.g. "Brush", "Delete object". */
  label: string;
  undo(): void;
  redo(): void;
}

export class History {
  private done: Command[] = [];
  private undone: Command[] = [];
  private listeners = new Set<() => void>();

  constructor(private readonly limit = 200) {}

  /** Record a command that has already been applied; clears the redo stack. */
  push(cmd: Command): void {
    this.done.push(cmd);
    if (this.done.length > this.limit) this.done.splice(0, this.done.length - this.limit);
    this.undone = [];
    this.emit();
  }

  undo(): Command | null {
    const cmd = this.done.pop();
    if (!cmd) return null;
    cmd.undo();
    this.undone.push(cmd);
    this.emit();
    return cmd;
  }

  redo(): Command | null {
    const cmd = this.undone.pop();
    if (!cmd) return null;
    cmd.redo();
    this.done.push(cmd);
    this.emit();
    return cmd;
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  get size(): number {
    return this.done.length;
  }

  clear(): void {
    this.done = [];
    this.undone = [];
    this.emit();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }
}

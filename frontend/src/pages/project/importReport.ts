/** Reading an import job's report (Django-free shapes of annotator.services' import report). */
import type { Job } from "../../api/types";

export interface ImportItem {
  where: string;
  text: string;
  code?: string;
}

export interface ImportSummary {
  format: { name: string; title: string; detected: boolean; reason: string } | null;
  counts: { imported_images: number; imported_objects: number; repaired: number; skipped: number; left_out: number } | null;
  errors: ImportItem[];
  warnings: ImportItem[];
  skipped: ImportItem[];
  leftOut: ImportItem[];
  /** True when the import was refused for errors in some items: "import the rest" makes sense. */
  canImportRest: boolean;
}

const NOT_ITEM_ERRORS = new Set(["worker_crashed", "cancelled", "internal_error", "invalid_import", "unknown_format"]);

function items(value: unknown): ImportItem[] {
  if (!Array.isArray(value)) return [];
  return value.map((v) => {
    const o = (v ?? {}) as Record<string, unknown>;
    return {
      where: typeof o.where === "string" ? o.where : "",
      text: String(o.message ?? o.reason ?? ""),
      code: typeof o.code === "string" ? o.code : undefined,
    };
  });
}

export function summarizeImport(job: Job): ImportSummary {
  const result = (job.result ?? {}) as Record<string, unknown>;
  const params = (job.params ?? {}) as Record<string, unknown>;
  const detected = params.detected as { name?: string; title?: string; reason?: string } | null | undefined;
  const format =
    (result.format as ImportSummary["format"]) ??
    (typeof params.format === "string"
      ? {
          name: params.format,
          title: detected?.title ?? params.format,
          detected: params.format_given === false,
          reason: detected?.reason ?? "",
        }
      : null);
  const errors = items(job.errors);
  return {
    format,
    counts: (result.counts as ImportSummary["counts"]) ?? null,
    errors,
    warnings: items(result.warnings),
    skipped: items(result.skipped),
    leftOut: items(result.left_out),
    canImportRest:
      job.status === "failed" && errors.length > 0 && errors.every((e) => !NOT_ITEM_ERRORS.has(e.code ?? "")),
  };
}

/** "Imported 4 objects on 1 image · 3 repaired · 5 skipped" */
export function countsLine(counts: NonNullable<ImportSummary["counts"]>): string {
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const parts = [
    `Imported ${plural(counts.imported_objects, "object", "objects")} on ${plural(counts.imported_images, "image", "images")}`,
  ];
  if (counts.repaired) parts.push(`${counts.repaired} repaired`);
  if (counts.skipped) parts.push(`${counts.skipped} skipped`);
  if (counts.left_out) parts.push(`${counts.left_out} left out`);
  return parts.join(" · ");
}

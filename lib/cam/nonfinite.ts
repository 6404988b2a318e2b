/**
 * Non-finite results in a batch (explainStream and the CLI). explain() rejects with ENONFINITE, naming in `images` the images of
 * the batch whose logits, activations, gradients or maps are NaN or infinite (a NaN weight, or an
 * input so large that the network overflows). One such image must neither sink the other images of
 * its batch nor come out as a uniform heatmap: each named image is a failure of its own (code
 * ENONFINITE, its path in the message), and the rest of the batch is explained again without it.
 * An ENONFINITE error that names no usable images falls back to one image at a time.
 */
import { GradcamError } from '../errors';
import type { ExplainResult, InputBatch } from '../types';

/** What was explained: the result and the units and display pictures of its rows, in order. */
export interface ExplainedPart<U> {
  result: ExplainResult;
  units: U[];
  displays: Float32Array[];
}

export type NonFinite = Error & { code: 'ENONFINITE'; images: number[] };

export function isNonFinite(e: unknown): e is NonFinite {
  const x = e as { code?: unknown; images?: unknown } | null;
  return x instanceof Error && x.code === 'ENONFINITE' && Array.isArray(x.images);
}

/** The rows `rows` of a batch (rows along the first axis, whatever the layout). */
export function batchRows(batch: InputBatch, rows: number[]): InputBatch {
  const n = batch.shape[0];
  const size = batch.data.length / n;
  const data = new Float32Array(rows.length * size);
  rows.forEach((r, i) => data.set(batch.data.subarray(r * size, (r + 1) * size), i * size));
  return { data, shape: [rows.length, batch.shape[1], batch.shape[2], batch.shape[3]], layout: batch.layout };
}

/**
 * The library's message for image `image` of the batch alone, named by `name`:
 * 'Non-finite logits for images 0, 2: ...' -> 'Non-finite logits for cat.png: ...', and
 * '... for images 0, 2 (class 3, 5): ...' -> '... for cat.png (class 3): ...'.
 */
export function nonFiniteFor(e: NonFinite, image: number, name: string): GradcamError {
  const pos = e.images.indexOf(image);
  const message = e.message.replace(/ for images? \d+(?:, \d+)*(?: \(class (\d+(?:, \d+)*)\))?/, (_m, classes?: string) => {
    const cls = classes?.split(', ')[pos];
    return ` for ${name}${cls !== undefined ? ` (class ${cls})` : ''}`;
  });
  return new GradcamError(message, 'ENONFINITE');
}

/**
 * Explains `batch` (rows: `units`, `displays`) with `explain`; images named by an ENONFINITE error
 * are passed to `fail` and the rest explained again without them. Other errors are thrown as they
 * are. Returns the parts explained (none when every image failed).
 */
export async function explainSkippingNonFinite<U extends { name: string }>(
  batch: InputBatch,
  units: U[],
  displays: Float32Array[],
  explain: (batch: InputBatch) => Promise<ExplainResult>,
  fail: (unit: U, e: GradcamError) => void,
): Promise<Array<ExplainedPart<U>>> {
  let keep = units.map((_, i) => i);
  while (keep.length > 0) {
    const sub = keep.length === units.length ? batch : batchRows(batch, keep);
    try {
      const result = await explain(sub);
      return [{ result, units: keep.map((i) => units[i]), displays: keep.map((i) => displays[i]) }];
    } catch (e) {
      if (!isNonFinite(e)) throw e;
      const named = [...new Set(e.images)];
      if (named.length === 0 || named.some((j) => !Number.isInteger(j) || j < 0 || j >= keep.length)) {
        return oneByOne(batch, units, displays, keep, explain, fail);
      }
      for (const j of named) fail(units[keep[j]], nonFiniteFor(e, j, units[keep[j]].name));
      keep = keep.filter((_, j) => !named.includes(j));
    }
  }
  return [];
}

/** The fallback: each image alone, so an image's failure is its own whatever the error names. */
async function oneByOne<U extends { name: string }>(
  batch: InputBatch,
  units: U[],
  displays: Float32Array[],
  keep: number[],
  explain: (batch: InputBatch) => Promise<ExplainResult>,
  fail: (unit: U, e: GradcamError) => void,
): Promise<Array<ExplainedPart<U>>> {
  const parts: Array<ExplainedPart<U>> = [];
  for (const i of keep) {
    try {
      parts.push({ result: await explain(batchRows(batch, [i])), units: [units[i]], displays: [displays[i]] });
    } catch (e) {
      if (!isNonFinite(e)) throw e;
      fail(units[i], nonFiniteFor(e, e.images[0] ?? 0, units[i].name));
    }
  }
  return parts;
}

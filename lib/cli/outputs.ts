/**
 * What one `gradcam explain` run has finished, kept so that every output agrees with it: the JSON
 * records, the report sections, the .npy rows and the failures. An image counts as finished only
 * when all its files are written (each atomically, lib/io/atomic); if writing one fails, the files
 * of that image already written are removed, so pictures, arrays, report and JSON list the same images.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { OutputNames } from '../cam/methods';
import type { Explanation } from '../types';
import { writeNpyChunks } from '../image/npy';
import type { ReportImage } from '../image/report';
import { writeFileAtomic } from '../io/atomic';
import type { ImageRecord } from './explain';

/** An input that did not finish, as the --json document lists it. */
export interface InputFailure {
  input: string;
  /** the first line of the error message */
  error: string;
  /** the error's code (GradcamError, Node system errors, argument errors), else its name */
  code: string;
}

export function failureOf(input: string, e: unknown): InputFailure {
  const err = e as { message?: unknown; code?: unknown; name?: unknown } | null;
  const message = String(err?.message ?? e).split('\n')[0];
  const code = typeof err?.code === 'string' ? err.code : typeof err?.name === 'string' ? err.name : 'Error';
  return { input, error: message, code };
}

/** Rows of one .npy output, streamed to disk at the end without concatenating them first. */
class ArrayRows {
  private readonly chunks: Float32Array[] = [];
  private rowShape: number[] | undefined;
  add(x: Float32Array, rowShape: number[]): void {
    this.rowShape ??= rowShape;
    this.chunks.push(x);
  }
  get count(): number {
    return this.chunks.length;
  }
  async write(file: string): Promise<number[]> {
    const shape = [this.chunks.length, ...(this.rowShape ?? [])];
    await writeNpyChunks(file, this.chunks, shape);
    return shape;
  }
}

/** What an image produced: its JSON record, its report section, its explanations (for the arrays). */
export interface FinishedImage {
  record: ImageRecord;
  report?: ReportImage;
  explanations: readonly Explanation[];
  /** [H, W] of the maps, and the per-row shape of the guided arrays (the input's own layout) */
  mapShape: number[];
  guidedShape: number[];
}

export class RunOutputs {
  readonly records: ImageRecord[] = [];
  readonly reportImages: ReportImage[] = [];
  readonly failures: InputFailure[] = [];
  /** one .npy per kind of array, named by the method registry (`<method>.npy`) */
  private readonly arrays = { map: new ArrayRows(), inputGradient: new ArrayRows(), guidedMap: new ArrayRows() };
  private rowCount = 0;

  constructor(readonly dir: string, private readonly keepArrays: boolean, private readonly names: OutputNames) {}

  /** the report's title: what the run shows */
  get title(): string {
    return (this.names.guidedMap ?? this.names.map ?? this.names.inputGradient)?.title ?? '';
  }

  /** the .npy row of the next explanation */
  get rows(): number {
    return this.rowCount;
  }

  /**
   * Runs `build` for one image, giving it a function that writes one file into the output folder
   * (atomically; returns the path). The image is recorded only when `build` returns; when it throws,
   * the files it wrote are removed and the error is passed on.
   */
  async image(build: (write: (name: string, data: Uint8Array) => Promise<string>) => Promise<FinishedImage>): Promise<void> {
    const written: string[] = [];
    const write = async (name: string, data: Uint8Array): Promise<string> => {
      const file = path.join(this.dir, name);
      await writeFileAtomic(file, data);
      written.push(file);
      return file;
    };
    let done: FinishedImage;
    try {
      done = await build(write);
    } catch (e) {
      for (const f of written) fs.rmSync(f, { force: true });
      throw e;
    }
    this.records.push(done.record);
    if (done.report) this.reportImages.push(done.report);
    for (const e of done.explanations) {
      this.rowCount++;
      if (!this.keepArrays) continue;
      if (e.map) this.arrays.map.add(e.map, done.mapShape);
      if (e.inputGradient) this.arrays.inputGradient.add(e.inputGradient, done.guidedShape);
      if (e.guidedMap) this.arrays.guidedMap.add(e.guidedMap, done.guidedShape);
    }
  }

  fail(input: string, e: unknown): void {
    this.failures.push(failureOf(input, e));
  }

  /** Writes `<dir>/<name>.npy` for every array that has rows: exactly the finished images. */
  async writeArrays(): Promise<Record<string, { file: string; shape: number[] }>> {
    const npy: Record<string, { file: string; shape: number[] }> = {};
    for (const [kind, rows] of Object.entries(this.arrays)) {
      const name = this.names[kind as keyof OutputNames]?.stem;
      if (rows.count === 0 || !name) continue;
      const file = path.join(this.dir, `${name}.npy`);
      npy[name] = { file, shape: await rows.write(file) };
    }
    return npy;
  }
}

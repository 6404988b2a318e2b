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
import { NpyAppender } from '../image/npy';
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

/** Rows of one .npy output, appended to a temporary file as images finish (NpyAppender). */
class ArrayRows {
  private appender: NpyAppender | undefined;
  constructor(private readonly file: () => string | undefined) {}
  add(x: Float32Array, rowShape: number[]): Promise<void> {
    if (!this.appender) {
      const file = this.file();
      if (!file) return Promise.resolve();
      this.appender = new NpyAppender(file, rowShape);
    }
    return this.appender.append(x);
  }
  get count(): number {
    return this.appender?.rows ?? 0;
  }
  get path(): string | undefined {
    return this.appender?.file;
  }
  write(): Promise<number[]> {
    return (this.appender as NpyAppender).finish();
  }
  async discard(): Promise<void> {
    await this.appender?.discard();
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
  private readonly arrays = { map: this.rowsOf('map'), inputGradient: this.rowsOf('inputGradient'), guidedMap: this.rowsOf('guidedMap') };
  private arraysDone = false;
  private rowCount = 0;

  constructor(readonly dir: string, private readonly keepArrays: boolean, private readonly names: OutputNames) {}

  private rowsOf(kind: keyof OutputNames): ArrayRows {
    return new ArrayRows(() => {
      const name = this.names[kind]?.stem;
      return name ? path.join(this.dir, `${name}.npy`) : undefined;
    });
  }

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
    const appends: Array<Promise<void>> = [];
    for (const e of done.explanations) {
      this.rowCount++;
      if (!this.keepArrays) continue;
      // rows go to disk now (in order: appends of one file are chained), not kept for the end
      if (e.map) appends.push(this.arrays.map.add(e.map, done.mapShape));
      if (e.inputGradient) appends.push(this.arrays.inputGradient.add(e.inputGradient, done.guidedShape));
      if (e.guidedMap) appends.push(this.arrays.guidedMap.add(e.guidedMap, done.guidedShape));
    }
    await Promise.all(appends);
  }

  fail(input: string, e: unknown): void {
    this.failures.push(failureOf(input, e));
  }

  /** Writes `<dir>/<name>.npy` for every array that has rows: exactly the finished images. */
  async writeArrays(): Promise<Record<string, { file: string; shape: number[] }>> {
    const npy: Record<string, { file: string; shape: number[] }> = {};
    this.arraysDone = true;
    for (const [kind, rows] of Object.entries(this.arrays)) {
      const name = this.names[kind as keyof OutputNames]?.stem;
      if (rows.count === 0 || !name) {
        await rows.discard();
        continue;
      }
      npy[name] = { file: rows.path as string, shape: await rows.write() };
    }
    return npy;
  }

  /** Removes the arrays' temporaries when the run ends without writeArrays (an error before any result). */
  async discardArrays(): Promise<void> {
    if (this.arraysDone) return;
    this.arraysDone = true;
    for (const rows of Object.values(this.arrays)) await rows.discard();
  }
}

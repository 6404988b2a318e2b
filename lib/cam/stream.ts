/**
 * explainStream(): pictures (paths or encoded bytes) or ready InputBatches in, explained batches
 * out, in input order, with the work pipelined and memory bounded:
 *
 *   pull + decode batch i+1  ─┐
 *   explain batch i           ├─ at the same time
 *   consumer handles batch i-1┘
 *
 * The input iterable is pulled only when a new batch is to be decoded, and a new batch is decoded
 * only when the previous one went to the model, so at most three batches are held (one decoded
 * ahead, one explained, one with the consumer) whatever the length of the iterable; a slow
 * consumer stops the pulling. One explain() runs at a time (an Explainer's calls are not meant to
 * overlap). A picture that does not decode is an item with its own error, and the stream goes on; an
 * iterable that throws ends the stream with its error, after the results of the inputs before it.
 */
import { GradcamError, checkKnownKeys, checkPositiveInteger, invalidType } from '../errors';
import type { Explanation, ExplainOptions, ExplainResult, Explainer, InputBatch } from '../types';
import { checkPreprocessSpec, decodePixels, pixelsToImages, pixelsToInputBatch, type DecodedImage, type DecodedPixels, type PreprocessSpec } from '../image/preprocess';
import { batchRows as batchRowsOf, isNonFinite, nonFiniteFor, type NonFinite } from './nonfinite';
import { COPIES_INPUT } from './explain';

/** What the stream takes: a picture file path, encoded picture bytes (a Buffer), or a ready model-input batch. */
export type StreamInput = string | Uint8Array | InputBatch;

export interface StreamOptions extends Partial<PreprocessSpec> {
  /** pictures per explain() call (default 8); an InputBatch input is always explained as it is */
  batchSize?: number;
  /** how messages name input `index` (default: its path, else `inputs[index]`) */
  label?: (index: number) => string;
  /** what explain() is asked (method, layer, targets...) */
  explain?: ExplainOptions;
}

/** One input of the stream and what became of it. */
export interface StreamItem {
  /** position of the input in the iterable (an InputBatch of n images gives n items, n indices) */
  index: number;
  /** the input: the path, the bytes, or the InputBatch it is a row of */
  input: StreamInput;
  /** its row in the batch's result (-1 when it failed) */
  row: number;
  /** the decoded picture at the model's size (RGB float [H*W*3] in [0,1]), for pictures */
  image?: DecodedImage;
  /** its explanations (Explanation.image is `row`) */
  explanations: Explanation[];
  /** why it was not explained: a picture that did not decode, or its batch's explain() failure */
  error?: Error;
}

/** One explain() call's worth of inputs, in input order. */
export interface StreamBatch {
  items: StreamItem[];
  /** the result for the items with row >= 0; absent when none decoded or explain() failed */
  result?: ExplainResult;
  /** explain() failed for this batch: the items carry the error, and the stream ends after this batch */
  error?: Error;
  /** time spent decoding and preprocessing this batch, and in explain() (ms) */
  timings: { decodeMs: number; explainMs: number };
}

const STREAM_OPTIONS = ['label', 'width', 'height', 'mean', 'std', 'layout', 'channels', 'pixelScale', 'batchSize', 'explain'] as const;

interface Decoded {
  items: StreamItem[];
  batch?: InputBatch;
  /** the batch was made here from pictures (its array may be reused once explained) */
  made?: boolean;
  decodeMs: number;
}

function isInputBatch(x: unknown): x is InputBatch {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && 'data' in x && 'shape' in x;
}

function toAsyncIterator<T>(inputs: Iterable<T> | AsyncIterable<T>): AsyncIterator<T> | Iterator<T> {
  if (inputs && typeof (inputs as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') return (inputs as AsyncIterable<T>)[Symbol.asyncIterator]();
  if (inputs && typeof (inputs as Iterable<T>)[Symbol.iterator] === 'function' && typeof inputs !== 'string') return (inputs as Iterable<T>)[Symbol.iterator]();
  throw invalidType('inputs', 'iterable or async iterable of picture paths, Buffers or InputBatches', inputs);
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Explains every input of `inputs`, yielding one StreamBatch per explain() call in input order
 * (see the module comment for the pipelining and the memory bound). Pictures need `width` and
 * `height` (the model's input size) and take the preprocessing of preprocessImages; an InputBatch
 * is explained as given.
 */
export async function* explainStream(
  explainer: Explainer,
  inputs: Iterable<StreamInput> | AsyncIterable<StreamInput>,
  options: StreamOptions = {},
): AsyncGenerator<StreamBatch, void, undefined> {
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'object', options);
  checkKnownKeys('stream options', options, STREAM_OPTIONS);
  if (options.label !== undefined && typeof options.label !== 'function') throw invalidType('label', 'function (index) => string', options.label);
  const batchSize = options.batchSize === undefined ? 8 : checkPositiveInteger('batchSize', options.batchSize);
  const hasSize = options.width !== undefined || options.height !== undefined;
  const spec = hasSize
    ? checkPreprocessSpec({ ...options, layout: options.layout ?? explainer.layout } as PreprocessSpec)
    : undefined;
  const explainOptions = options.explain;
  const it = toAsyncIterator(inputs);
  // what the model needs for these options (ONNX: the gradient session at this input size) is built
  // while the first pictures decode; a failure here surfaces from the explain() that needs it
  if (spec && typeof explainer.prepare === 'function') explainer.prepare(explainOptions, [spec.height, spec.width]).catch(() => undefined);
  // an explainer that copies the batch at call time (the library's own): the arrays of the batches
  // made from pictures are reused, so that fresh memory is not touched for every batch
  const reuse = (explainer as { [COPIES_INPUT]?: boolean })[COPIES_INPUT] === true;
  const spare: Float32Array[] = [];
  const takeSpare = (length: number): Float32Array | undefined => {
    const i = spare.findIndex((a) => a.length === length);
    return i >= 0 ? spare.splice(i, 1)[0] : undefined;
  };

  let index = 0;
  let ended = false;
  let pullError: { error: unknown } | undefined;
  /** an InputBatch that arrived while pictures were waiting: the next batch */
  let heldBatch: InputBatch | undefined;

  const fail = (input: StreamInput, e: unknown): StreamItem => ({ index: index++, input, row: -1, explanations: [], error: e instanceof Error ? e : new Error(String(e)) });

  const itemsOfBatch = (b: InputBatch): StreamItem[] => Array.from({ length: b.shape[0] }, () => ({ index: index++, input: b, row: -1, explanations: [] }));

  /** Pulls the next batch's inputs and decodes them; undefined at the end (or a pending pull error). */
  async function decodeNext(): Promise<Decoded | undefined> {
    const t0 = nowMs();
    if (heldBatch) {
      const b = heldBatch;
      heldBatch = undefined;
      return { items: itemsOfBatch(b), batch: b, decodeMs: 0 };
    }
    if (pullError || ended) return undefined;
    const pictures: Array<{ input: string | Uint8Array; item: StreamItem }> = [];
    const failed: StreamItem[] = [];
    const order: StreamItem[] = [];
    while (pictures.length < batchSize) {
      let r: IteratorResult<StreamInput>;
      try {
        r = await it.next();
      } catch (e) {
        pullError = { error: e };
        break;
      }
      if (r.done) {
        ended = true;
        break;
      }
      const x = r.value;
      if (typeof x === 'string' || x instanceof Uint8Array) {
        const item: StreamItem = { index: index++, input: x, row: -1, explanations: [] };
        pictures.push({ input: x, item });
        order.push(item);
      } else if (isInputBatch(x)) {
        if (order.length === 0) return { items: itemsOfBatch(x), batch: x, decodeMs: nowMs() - t0 };
        heldBatch = x;
        break;
      } else {
        const item = fail(x, invalidType(`inputs[${index}]`, 'picture file path, Buffer or InputBatch', x));
        failed.push(item);
        order.push(item);
      }
    }
    if (order.length === 0) return undefined;
    if (pictures.length > 0 && !spec) {
      throw new GradcamError('explainStream: pictures need the model input size: pass width and height in the options', 'EARGRANGE');
    }
    const settled = await Promise.allSettled(pictures.map((p) => decodePixels(p.input, (spec as Required<PreprocessSpec>).width, (spec as Required<PreprocessSpec>).height)));
    const decoded: DecodedPixels[] = [];
    const rows: StreamItem[] = [];
    settled.forEach((s, i) => {
      const item = pictures[i].item;
      if (s.status === 'fulfilled') {
        item.row = decoded.length;
        decoded.push(s.value);
        rows.push(item);
      } else {
        item.error = pictureError(pictures[i].input, s.reason);
      }
    });
    // from the 8-bit pixels: the model input, and the pictures (their rgb views of one array, in row order)
    const s = spec as Required<PreprocessSpec>;
    const out = reuse ? takeSpare(decoded.length * s.channels * s.width * s.height) : undefined;
    const batch = decoded.length > 0 ? pixelsToInputBatch(decoded, s, out) : undefined;
    if (batch) pixelsToImages(decoded).forEach((image, r) => (rows[r].image = image));
    return { items: order, batch, made: !!batch, decodeMs: nowMs() - t0 };
  }

  /**
   * explain() for a decoded batch; an image whose logits, activations, gradients or maps are NaN or
   * infinite (ENONFINITE names it) fails alone, with its own error, and the rest of the batch is
   * explained again without it (their rows renumbered). Undefined when every image failed.
   */
  async function explainSkippingNonFinite(d: Decoded, oneItemPerRow: boolean): Promise<ExplainResult | undefined> {
    let batch = d.batch as InputBatch;
    for (;;) {
      try {
        return await explainer.explain(batch, explainOptions);
      } catch (e) {
        const live = d.items.filter((i) => i.row >= 0);
        const bad = new Set(isNonFinite(e) ? e.images : []);
        // pictures, or an InputBatch of one row per item: the named rows fail alone
        if (bad.size === 0 || !(oneItemPerRow || live.every((i) => i.image)) || ![...bad].every((r) => r < live.length)) throw e;
        for (const item of live) {
          if (!bad.has(item.row)) continue;
          item.error = nonFiniteFor(e as NonFinite, item.row, options.label ? options.label(item.index) : typeof item.input === 'string' ? item.input : `inputs[${item.index}]`);
        }
        const keep = live.filter((i) => !bad.has(i.row));
        for (const item of live) if (bad.has(item.row)) item.row = -1;
        if (keep.length === 0) return undefined;
        batch = batchRowsOf(batch, keep.map((i) => i.row));
        keep.forEach((item, r) => (item.row = r));
      }
    }
  }

  async function explainDecoded(d: Decoded): Promise<StreamBatch> {
    try {
      return await explainBatch(d);
    } finally {
      // explain() copied it: free for a later batch (one decoded ahead needs a second array)
      if (reuse && d.made && d.batch) {
        spare.push(d.batch.data);
        if (spare.length > 2) spare.shift();
      }
    }
  }

  async function explainBatch(d: Decoded): Promise<StreamBatch> {
    const timings = { decodeMs: d.decodeMs, explainMs: 0 };
    if (!d.batch) return { items: d.items, timings };
    const t0 = nowMs();
    const batchRows = d.items.every((i) => !i.image) && d.items.length === d.batch.shape[0];
    if (batchRows) d.items.forEach((item, r) => (item.row = r));
    try {
      const result = await explainSkippingNonFinite(d, batchRows);
      timings.explainMs = nowMs() - t0;
      if (!result) return { items: d.items, timings };
      const byRow = d.items.filter((i) => i.row >= 0);
      for (const e of result.explanations) byRow[e.image]?.explanations.push(e);
      return { items: d.items, result, timings };
    } catch (e) {
      timings.explainMs = nowMs() - t0;
      const error = e instanceof Error ? e : new Error(String(e));
      for (const item of d.items) if (item.row >= 0) item.error ??= error;
      return { items: d.items, error, timings };
    }
  }

  // a promise nobody awaits yet must not count as an unhandled rejection
  const quiet = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => undefined);
    return p;
  };

  let decoding = quiet(decodeNext());
  let explaining: Promise<StreamBatch> | undefined;
  try {
    for (;;) {
      const d = await decoding;
      const previous = explaining ? await explaining : undefined;
      explaining = undefined;
      if (d && !previous?.error) {
        explaining = quiet(explainDecoded(d));
        decoding = quiet(decodeNext());
      }
      if (previous) {
        yield previous;
        if (previous.error) return;
      }
      if (!d) break;
    }
    if (pullError) throw pullError.error;
  } finally {
    // the consumer stopped early (break, throw): let the explain() and the pull in flight settle
    // (the caller may dispose the explainer next), close the input iterator
    if (explaining) await explaining;
    await decoding.catch(() => undefined);
    if (!ended && !pullError && typeof it.return === 'function') {
      try {
        await it.return();
      } catch {
        /* closing is best effort */
      }
    }
  }
}

/** A picture that cannot be read, named (sharp's own messages do not say which one). */
export function pictureError(input: string | Uint8Array, e: unknown): GradcamError {
  const what = typeof input === 'string' ? input : `<${input.byteLength} bytes>`;
  return new GradcamError(`cannot read image ${what}: ${String((e as Error)?.message ?? e).split('\n')[0]}`, 'EIMAGE');
}

/**
 * `gradcam explain`: a thin loop over the public API. Per batch: preprocess (lib/image) ->
 * Explainer.explain (lib/index) -> pictures, arrays, report rows. Everything here is reachable from
 * the API; the CLI only decides file names and output formats.
 */
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { createExplainer } from '../index';
import { GradcamError } from '../errors';
import type { Explanation, ExplainResult, Explainer, InputBatch, Layout, TargetSpec } from '../types';
import { batchImageToRgb, pixelsToUnitViews } from '../image/preprocess';
import { explainStream, type StreamInput } from '../cam/stream';
import { readNpy } from '../image/npy';
import { encodePng, encodePngs, renderGrey, renderGuided, renderOverlays, rgbFloatToBytes } from '../image/png';
import { getKernels } from '../kernels';
import { findMethod, outputNamesOf, type MethodDef } from '../cam/methods';
import { renderReport, ReportImage } from '../image/report';
import { ExplainArgs, UsageError, cacheOption } from './args';
import { checkSidecarFits, declaredInput, expandInputs, InputItem, loadSidecar, readLabels, Sidecar, sidecarLine, uniqueStems } from './inputs';
import { Progress } from './progress';
import { removeStaleTemps, writeFileAtomic } from '../io/atomic';
import { InputFailure, RunOutputs } from './outputs';

export interface FilesWritten {
  overlay?: string;
  heatmap?: string;
  /** the input gradient as deprocess_image makes it (`<image>.c<k>.<saliency|deconvnet|guided-backprop>.png`) */
  inputGradient?: string;
  /** saliency only: the channel maximum of |gradient|, Simonyan's map */
  saliencyMax?: string;
  /** the map times guided backprop (`<image>.c<k>.guided-<cam method>.png`) */
  guidedMap?: string;
}

export interface ExplainedClass {
  classIndex: number;
  label: string;
  /** the score as differentiated: the raw logit, negated when counterfactual */
  score: number;
  logit: number;
  probability: number;
  /** row of this explanation in the .npy arrays */
  npyIndex: number;
  files: FilesWritten;
}

export interface ImageRecord {
  index: number;
  input: string;
  top: Array<{ classIndex: number; label: string; logit: number; probability: number }>;
  explained: ExplainedClass[];
}

export interface ExplainReport {
  model: string;
  method: string;
  /** the target layers, comma-separated ('' for the input-gradient methods) */
  layer: string;
  layers: string[];
  guided: boolean;
  counterfactual: boolean;
  engine: string;
  device: string;
  inputShape: number[];
  layout: Layout;
  out: string;
  images: ImageRecord[];
  npy: Record<string, { file: string; shape: number[] }>;
  report?: string;
  interrupted: boolean;
  /** true when every input finished; false after Ctrl-C or failures (the outputs hold what finished) */
  complete: boolean;
  /** inputs that did not finish, with the error */
  failures: InputFailure[];
  /** inputs never attempted (the run stopped early) */
  notRun: number;
  timings: { loadModelMs: number; preprocessMs: number; explainMs: number; gradientsMs: number; kernelsMs: number; writeMs: number; totalMs: number };
}

/** The model's input shape as [H, W, C] where the explainer exposes it (null where unknown). */
export function modelInputSize(explainer: Explainer): { height: number | null; width: number | null; channels: number | null } | undefined {
  const shape = explainer.inputShape;
  if (shape.length !== 4) return undefined;
  const dim = (d: number | null) => (typeof d === 'number' && d > 0 ? d : null);
  const [, a, b, c] = shape;
  return explainer.layout === 'nhwc'
    ? { height: dim(a), width: dim(b), channels: dim(c) }
    : { height: dim(b), width: dim(c), channels: dim(a) };
}

/** One unit of work: an image file, or one row of a .npy tensor. */
interface Unit {
  name: string;
  stem: string;
  item: InputItem;
  /** row within the npy tensor */
  row: number;
}

interface NpyTensor {
  data: Float32Array;
  shape: [number, number, number, number];
  layout: Layout;
}

function guessLayout(shape: number[]): Layout | undefined {
  const [, d1, , d3] = shape;
  const small = (d: number) => d === 1 || d === 3 || d === 4;
  if (small(d1) && !small(d3)) return 'nchw';
  if (small(d3) && !small(d1)) return 'nhwc';
  return undefined;
}

function classLabel(labels: string[] | undefined, i: number): string {
  return labels && i < labels.length ? labels[i] : `class ${i}`;
}

function fmt(x: number, d = 4): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

/** Write the output of one ExplainResult: pictures, JSON records, report panels; returns the arrays to keep. */
async function writeBatch(
  a: ExplainArgs,
  result: ExplainResult,
  units: Unit[],
  indices: number[],
  displays: Float32Array[],
  labels: string[] | undefined,
  outputs: RunOutputs,
): Promise<void> {
  const [n, d1, d2, d3] = result.inputShape;
  const [c, H, W] = result.layout === 'nchw' ? [d1, d2, d3] : [d3, d1, d2];
  const k = result.numClasses;
  const names = outputNamesOf(findMethod(result.method) as MethodDef, result.guided, result.reluRule);
  const byImage = new Map<number, typeof result.explanations>();
  result.explanations.forEach((e) => {
    if (!byImage.has(e.image)) byImage.set(e.image, []);
    byImage.get(e.image)?.push(e);
  });
  const pictures = await renderBatch(a, result, displays, names, c, H, W);
  for (let i = 0; i < n; i++) await outputs.image(async (writeOne) => {
    let row = outputs.rows;
    // the files of an image are written at once (each atomically); the image counts when all are
    const writes: Array<Promise<string>> = [];
    const writePng = (name: string, data: Uint8Array): string => {
      const file = path.join(outputs.dir, name);
      writes.push(writeOne(name, data));
      return file;
    };
    const unit = units[i];
    const display = displays[i];
    const probs = result.probabilities.subarray(i * k, (i + 1) * k);
    const logits = result.logits.subarray(i * k, (i + 1) * k);
    const order = Array.from(probs.keys()).sort((x, y) => probs[y] - probs[x]);
    const topN = Math.min(k, Math.max(5, a.topK ?? 0));
    const record: ImageRecord = {
      index: indices[i],
      input: unit.name,
      top: order.slice(0, topN).map((ci) => ({ classIndex: ci, label: classLabel(labels, ci), logit: logits[ci], probability: probs[ci] })),
      explained: [],
    };
    const panels: ReportImage['panels'] = [];
    if (a.report) {
      panels.push({ title: 'input', subtitle: unit.name, png: await encodePng(rgbFloatToBytes(display), W, H, 3) });
    }
    const guidedPanels: ReportImage['panels'] = [];
    for (const e of byImage.get(i) ?? []) {
      const tag = `${unit.stem}.c${e.classIndex}${result.counterfactual ? '.cf' : ''}`;
      const label = classLabel(labels, e.classIndex);
      const files: FilesWritten = {};
      const caption = `${label} (${e.classIndex})${result.counterfactual ? ' counterfactual' : ''}`;
      const sub = `logit ${fmt(logits[e.classIndex], 3)} · p ${fmt(e.probability, 3)}`;
      // nothing is rendered that is neither written nor shown in the report
      const drawn = pictures.get(e) ?? {};
      if (e.map && (a.images || a.report)) {
        const overlay = drawn.overlay as Buffer;
        if (a.images) {
          files.overlay = writePng(`${tag}.overlay.png`, overlay);
          files.heatmap = writePng(`${tag}.heatmap.png`, drawn.heatmap as Buffer);
        }
        if (a.report) panels.push({ title: `${names.map?.title}: ${caption}`, subtitle: sub, png: overlay });
      }
      const gradName = names.inputGradient;
      if (e.inputGradient && gradName && (a.images || (a.report && !e.guidedMap))) {
        const png = drawn.inputGradient as Buffer;
        if (a.images) files.inputGradient = writePng(`${tag}.${gradName.stem}.png`, png);
        if (a.report && !e.guidedMap) guidedPanels.push({ title: `${gradName.title}: ${caption}`, subtitle: sub, png });
        if (result.reluRule === 'plain' && !e.guidedMap) {
          const max = (await renderGrey(channelMaxAbs(e.inputGradient, c, H, W, result.layout), W, H)).data as Buffer;
          if (a.images) files.saliencyMax = writePng(`${tag}.${gradName.stem}-max.png`, max);
          if (a.report) guidedPanels.push({ title: `${gradName.title}, max |gradient| over channels: ${caption}`, subtitle: sub, png: max });
        }
      }
      if (e.guidedMap && names.guidedMap) {
        const png = drawn.guidedMap as Buffer;
        if (a.images) files.guidedMap = writePng(`${tag}.${names.guidedMap.stem}.png`, png);
        if (a.report) guidedPanels.push({ title: `${names.guidedMap.title}: ${caption}`, subtitle: sub, png });
      }
      record.explained.push({
        classIndex: e.classIndex,
        label,
        score: e.score,
        logit: logits[e.classIndex],
        probability: e.probability,
        npyIndex: row++,
        files,
      });
    }
    // all settled before a failure is passed on, so that outputs.image removes every file written
    const failed = (await Promise.allSettled(writes)).find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const explainedSet = new Set(record.explained.map((x) => x.classIndex));
    const report: ReportImage | undefined = a.report ? {
      name: unit.name,
      panels: [...panels, ...guidedPanels],
      classes: record.top.map((t, r) => ({ rank: r + 1, classIndex: t.classIndex, label: t.label, score: t.logit, probability: t.probability, explained: explainedSet.has(t.classIndex) })),
    } : undefined;
    return { record, report, explanations: byImage.get(i) ?? [], mapShape: [H, W], guidedShape: [d1, d2, d3] };
  });
}

/** The PNGs of one explanation, made for the whole batch at once. */
interface Drawn {
  overlay?: Buffer;
  heatmap?: Buffer;
  inputGradient?: Buffer;
  guidedMap?: Buffer;
}

/**
 * The display pictures (float RGB in [0,1], pixels / 255 as DecodedImage.rgb) of a batch of decoded
 * pictures, made from their 8-bit pixels into `buffer` (a larger one when it is too small), one after
 * the other: the pictures' own rgb arrays are never made. undefined when a picture has no pixels.
 */
function displaysOf(pixels: Array<Uint8Array | undefined>, buffer: Float32Array): { views: Float32Array[]; buffer: Float32Array } | undefined {
  if (pixels.length === 0 || !pixels.every((p) => p !== undefined)) return undefined;
  return pixelsToUnitViews(pixels as Uint8Array[], buffer);
}

/**
 * The arrays (each `per` values) one after the other in one array: a view where they already lie so
 * in one buffer (an ExplainResult's maps, the stream's pictures, one per image), else a copy.
 */
export function batchOf(arrays: Float32Array[], per: number): Float32Array {
  const first = arrays[0];
  const contiguous = arrays.every((a, j) => a.length === per && a.buffer === first.buffer && a.byteOffset === first.byteOffset + j * per * 4);
  if (contiguous) return new Float32Array(first.buffer, first.byteOffset, arrays.length * per);
  const out = new Float32Array(arrays.length * per);
  arrays.forEach((a, j) => out.set(a, j * per));
  return out;
}

/**
 * Every picture of a batch that will be written or shown, made with the batched kernels (one
 * showCamOnImage, one applyColormap, one deprocessImage call for all explanations) and encoded in
 * parallel (encodePngs). Nothing is rendered that is neither written nor in the report.
 */
async function renderBatch(
  a: ExplainArgs, result: ExplainResult, displays: Float32Array[], names: ReturnType<typeof outputNamesOf>, c: number, H: number, W: number,
): Promise<Map<Explanation, Drawn>> {
  const out = new Map<Explanation, Drawn>();
  const drawn = (e: Explanation): Drawn => {
    let d = out.get(e);
    if (!d) out.set(e, (d = {}));
    return d;
  };
  const hw = H * W;
  const kernels = getKernels(a.device);
  const jobs: Array<Promise<void>> = [];
  const withMap = a.images || a.report ? result.explanations.filter((e) => e.map) : [];
  if (withMap.length > 0) {
    const m = withMap.length;
    const images = batchOf(withMap.map((e) => displays[e.image]), hw * 3);
    const maps = batchOf(withMap.map((e) => e.map as Float32Array), hw);
    jobs.push(renderOverlays(images, maps, m, W, H, { colormap: a.colormap, alpha: a.alpha, device: a.device }).then((pngs) => {
      pngs.forEach((p, j) => (drawn(withMap[j]).overlay = p.data as Buffer));
    }));
    if (a.images) {
      jobs.push(kernels.async.applyColormap(maps, m, H, W, a.colormap ?? 'jet').then((rgb) => encodePngs(rgb, m, W, H, 3)).then((pngs) => {
        pngs.forEach((p, j) => (drawn(withMap[j]).heatmap = p));
      }));
    }
  }
  const guidedPictures = async (kind: 'inputGradient' | 'guidedMap', list: Explanation[]): Promise<void> => {
    if (list.length === 0) return;
    const m = list.length;
    if (c !== 1 && c !== 3) {
      // renderGuided says why this is no picture
      await renderGuided(list[0][kind] as Float32Array, c, H, W, result.layout);
      return;
    }
    const data = batchOf(list.map((e) => e[kind] as Float32Array), c * hw);
    let rgb = await kernels.async.deprocessImage(data, m, c, H, W, result.layout);
    if (c === 1) rgb = await kernels.async.greyToRgb(rgb, m, H, W);
    (await encodePngs(rgb, m, W, H, 3)).forEach((p, j) => (drawn(list[j])[kind] = p));
  };
  if (names.inputGradient) {
    jobs.push(guidedPictures('inputGradient', result.explanations.filter((e) => e.inputGradient && (a.images || (a.report && !e.guidedMap)))));
  }
  if (names.guidedMap) jobs.push(guidedPictures('guidedMap', result.explanations.filter((e) => e.guidedMap && (a.images || a.report))));
  await Promise.all(jobs);
  return out;
}

export interface ExplainOutcome {
  report: ExplainReport;
  exitCode: number;
  /** the report sections (filled when --report) */
  reportImages: ReportImage[];
}

export async function runExplain(a: ExplainArgs, log: (line: string) => void): Promise<ExplainOutcome> {
  const tStart = performance.now();
  const items = expandInputs(a.inputs);
  const sidecar: Sidecar = loadSidecar(a.model);
  if (!a.quiet && sidecar.file) log(sidecarLine(sidecar));
  const labels = a.labels !== undefined ? readLabels(a.labels) : sidecar.labels;
  if (!fs.existsSync(a.model)) throw new UsageError(`model not found: ${a.model}`);

  const isOnnx = a.model.toLowerCase().endsWith('.onnx');
  const options = isOnnx
    ? { executionProvider: a.device === 'cuda' ? 'cuda' : a.device === 'auto' ? 'auto' : 'cpu', cache: cacheOption(a) }
    : { engine: a.engine };
  const tLoad = performance.now();
  const explainer = await createExplainer(a.model, options as Parameters<typeof createExplainer>[1]);
  const loadModelMs = performance.now() - tLoad;
  try {
    return await explainWith(explainer, a, items, sidecar, labels, log, tStart, loadModelMs);
  } finally {
    explainer.dispose();
  }
}

async function explainWith(
  explainer: Explainer,
  a: ExplainArgs,
  items: InputItem[],
  sidecar: Sidecar,
  labels: string[] | undefined,
  log: (line: string) => void,
  tStart: number,
  loadModelMs: number,
): Promise<ExplainOutcome> {
  const layers = a.layers ?? (sidecar.layer ? [sidecar.layer] : undefined);
  let layerNames: string[] = [];
  const mean = a.mean ?? sidecar.mean;
  const std = a.std ?? sidecar.std;
  const pixelScale = sidecar.pixelScale ?? 255;
  const modelSize = modelInputSize(explainer);
  checkSidecarFits(sidecar, a.model, declaredInput(explainer, a.model), { size: a.size, layout: a.layout });

  // --- the work list and how to build each batch
  const units: Unit[] = [];
  const tensors = new Map<string, NpyTensor>();
  let layout: Layout;
  let width = 0;
  let height = 0;
  let channels: 1 | 3 = 3;
  if (items[0].kind === 'npy') {
    for (const it of items) {
      const arr = readNpy(it.file);
      let shape = arr.shape;
      if (shape.length === 3) shape = [1, ...shape];
      if (shape.length !== 4) throw new UsageError(`${it.file}: expected a 4-D model input tensor [N,C,H,W] or [N,H,W,C], got shape [${arr.shape.join(',')}]`);
      const l = a.layout ?? sidecar.layout ?? guessLayout(shape) ?? explainer.layout;
      tensors.set(it.file, { data: arr.data, shape: shape as NpyTensor['shape'], layout: l });
      const stems = uniqueStems(Array.from({ length: shape[0] }, (_, r) => `${path.basename(it.file, '.npy')}_${r}`));
      for (let r = 0; r < shape[0]; r++) units.push({ name: `${it.file}[${r}]`, stem: stems[r], item: it, row: r });
    }
    const first = [...tensors.values()][0];
    layout = first.layout;
    for (const [f, t] of tensors) {
      if (t.layout !== layout || t.shape.slice(1).join() !== first.shape.slice(1).join()) {
        throw new UsageError(`${f}: every .npy input must have the same shape and layout (got [${t.shape}] ${t.layout}, expected [N,${first.shape.slice(1)}] ${layout})`);
      }
    }
    // de-duplicate stems across files
    const stems = uniqueStems(units.map((u) => u.stem));
    units.forEach((u, i) => (u.stem = stems[i]));
  } else {
    layout = a.layout ?? sidecar.layout ?? explainer.layout;
    const size = a.size ?? (sidecar.width ? { width: sidecar.width, height: sidecar.height as number } : undefined);
    if (size) ({ width, height } = size);
    else if (modelSize?.width && modelSize.height) ({ width, height } = modelSize as { width: number; height: number });
    else throw new UsageError(`cannot tell the input size of ${a.model}: pass --size WxH (or put "size" in ${path.basename(a.model)}.gradcam.json)`);
    channels = sidecar.channels ?? (modelSize?.channels === 1 ? 1 : 3);
    const stems = uniqueStems(items.map((i) => i.file));
    items.forEach((it, i) => units.push({ name: it.file, stem: stems[i], item: it, row: 0 }));
  }

  /** the npy rows of a batch of units, as one model-input batch (pictures are decoded by the stream) */
  const npyBatch = (batchUnits: Unit[]): InputBatch => {
    const t0 = tensors.get(batchUnits[0].item.file) as NpyTensor;
    const rowSize = t0.shape[1] * t0.shape[2] * t0.shape[3];
    const data = new Float32Array(batchUnits.length * rowSize);
    batchUnits.forEach((u, i) => {
      const t = tensors.get(u.item.file) as NpyTensor;
      data.set(t.data.subarray(u.row * rowSize, (u.row + 1) * rowSize), i * rowSize);
    });
    return { data, shape: [batchUnits.length, t0.shape[1], t0.shape[2], t0.shape[3]], layout: t0.layout };
  };
  const knownNorm = a.mean !== undefined || a.std !== undefined || sidecar.mean !== undefined || sidecar.std !== undefined;
  /** the stream's inputs: picture paths, or batches of npy rows; item i of the stream is units[i] */
  function* feed(): Generator<StreamInput> {
    if (units[0].item.kind === 'image') for (const u of units) yield u.item.file;
    else for (let s = 0; s < units.length; s += a.batchSize) yield npyBatch(units.slice(s, s + a.batchSize));
  }

  let targets: TargetSpec = 'argmax';
  if (a.topK !== undefined) targets = { topK: a.topK };
  else if (a.classIndex !== undefined) targets = a.classIndex;

  fs.mkdirSync(a.out, { recursive: true });
  removeStaleTemps(a.out);

  // --- Ctrl-C: finish the current batch, keep what was written
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\ngradcam: interrupted, stopping after the current batch (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);

  const outputs = new RunOutputs(a.out, a.npy, outputNamesOf(findMethod(a.method) as MethodDef, a.guided));
  const { records, reportImages } = outputs;
  let notRun = 0;
  const t = { preprocessMs: 0, explainMs: 0, gradientsMs: 0, kernelsMs: 0, writeMs: 0 };
  let last: ExplainResult | undefined;
  let inputShape: number[] = [];
  let stopped = false;
  /** the display pictures of the batch being written, reused from batch to batch (displaysOf) */
  let displayBuffer: Float32Array = new Float32Array(0);
  const progress = new Progress(units.length, 'images', process.stderr, a.quiet ? false : undefined);
  // the pictures of batch i are rendered and written while the model explains batch i+1 and
  // batch i+2 is decoded (lib/cam/stream.ts); the .npy rows are appended as images finish
  const stream = explainStream(explainer, feed(), {
    ...(units[0].item.kind === 'image' ? { width, height, mean, std, layout, channels, pixelScale } : {}),
    batchSize: a.batchSize,
    label: (index) => units[index].name,
    explain: {
      layer: layers,
      method: a.method,
      targets,
      counterfactual: a.counterfactual,
      device: a.device,
      guidedRelu6: a.guidedRelu6,
      guided: a.guided || undefined,
      augSmooth: a.augSmooth || undefined,
      eigenSmooth: a.eigenSmooth || undefined,
    },
  });
  try {
    for await (const b of stream) {
      t.preprocessMs += b.timings.decodeMs;
      t.explainMs += b.timings.explainMs;
      const finished = records.length;
      // a picture that does not decode is a failure of its own
      for (const item of b.items) if (item.error && item.error !== b.error) outputs.fail(units[item.index].name, item.error);
      if (a.failFast && outputs.failures.length > 0) {
        // --fail-fast: nothing more is explained or written after the first failure
        stopped = true;
        break;
      }
      const ok = b.items.filter((item) => item.row >= 0);
      try {
        if (b.error) throw b.error;
        if (b.result) {
          const result = b.result;
          t.gradientsMs += result.timings.gradientsMs;
          t.kernelsMs += result.timings.kernelsMs;
          last = result;
          layerNames = result.layers;
          inputShape = [units.length, ...result.inputShape.slice(1)];
          const fromPixels = displaysOf(ok.map((item) => item.image?.pixels), displayBuffer);
          if (fromPixels) displayBuffer = fromPixels.buffer;
          const displays = fromPixels?.views ?? ok.map((item) => item.image ? item.image.rgb
            : batchImageToRgb(item.input as InputBatch, item.row, knownNorm ? { mean, std, pixelScale } : undefined));
          const t0 = performance.now();
          await writeBatch(a, result, ok.map((item) => units[item.index]), ok.map((item) => item.index), displays, labels, outputs);
          t.writeMs += performance.now() - t0;
        }
      } catch (e) {
        // nothing done yet: a mistake (a class out of range, a layer, a size), reported as one error
        if (records.length === 0 && outputs.failures.length === 0) throw e;
        // else stop here: what finished is written out below, the rest of this batch failed
        const done = new Set(records.slice(finished).map((r) => r.index));
        const failed = new Set(outputs.failures.map((f) => f.input));
        for (const item of b.items) {
          const u = units[item.index];
          if (!done.has(item.index) && !failed.has(u.name)) outputs.fail(u.name, e);
        }
        stopped = true;
        break;
      }
      progress.tick(b.items.length);
      if (interrupted) break;
    }
  } catch (e) {
    await outputs.discardArrays();
    throw e;
  } finally {
    progress.finish();
    process.removeListener('SIGINT', onSigint);
  }
  if (stopped || interrupted) notRun = units.length - records.length - outputs.failures.length;

  const t0 = performance.now();
  const npy: ExplainReport['npy'] = a.npy ? await outputs.writeArrays() : {};
  const complete = !interrupted && outputs.failures.length === 0 && notRun === 0;
  const engine = last?.engine ?? explainer.engine;
  const device = last?.device ?? 'none';
  let reportFile: string | undefined;
  if (a.report) {
    reportFile = path.join(a.out, 'report.html');
    const html = renderReport(reportImages, {
      title: `${outputs.title}${a.counterfactual ? ' (counterfactual)' : ''}: ${modelTitle(a.model)}`,
      facts: [
        ['model', a.model],
        ['method', a.method + (a.guided ? ' (guided)' : '') + (a.augSmooth ? ' (aug smooth)' : '') + (a.eigenSmooth ? ' (eigen smooth)' : '') + (a.counterfactual ? ' (counterfactual: negated score)' : '')],
        ['layer', layerNames.join(', ') || '(input gradient)'],
        ['engine / kernels', `${engine} / ${device}`],
        ['images', `${records.length}${complete ? '' : ` of ${units.length}${interrupted ? ' (interrupted)' : ''}${outputs.failures.length ? `, ${outputs.failures.length} failed` : ''}`}`],
        ['time', `${((performance.now() - tStart) / 1000).toFixed(2)} s`],
      ],
    });
    await writeFileAtomic(reportFile, html);
  }
  t.writeMs += performance.now() - t0;

  const report: ExplainReport = {
    model: a.model,
    method: a.method,
    layer: layerNames.join(','),
    layers: layerNames,
    guided: a.guided || !!findMethod(a.method)?.guidedOf,
    counterfactual: a.counterfactual,
    engine,
    device,
    inputShape,
    layout: last?.layout ?? layout,
    out: a.out,
    images: records,
    npy,
    report: reportFile,
    interrupted,
    complete,
    failures: outputs.failures,
    notRun,
    timings: {
      loadModelMs: round(loadModelMs),
      preprocessMs: round(t.preprocessMs),
      explainMs: round(t.explainMs),
      gradientsMs: round(t.gradientsMs),
      kernelsMs: round(t.kernelsMs),
      writeMs: round(t.writeMs),
      totalMs: round(performance.now() - tStart),
    },
  };
  if (outputs.failures.length > 0) {
    const f = outputs.failures[0];
    log(`gradcam: error: ${outputs.failures.length} of ${units.length} input(s) failed${notRun ? ` (${notRun} not run)` : ''}; first: ${f.input}: ${f.error}`);
  }
  return { report, exitCode: interrupted ? 130 : outputs.failures.length > 0 ? 1 : 0, reportImages };
}

/** [H*W] max over channels of |g| (Simonyan's saliency map), scaled to [0,1] by its maximum. */
function channelMaxAbs(g: Float32Array, c: number, H: number, W: number, layout: Layout): Float32Array {
  const out = new Float32Array(H * W);
  for (let p = 0; p < H * W; p++) {
    let m = 0;
    for (let ch = 0; ch < c; ch++) m = Math.max(m, Math.abs(layout === 'nchw' ? g[ch * H * W + p] : g[p * c + ch]));
    out[p] = m;
  }
  let max = 0;
  for (const v of out) max = Math.max(max, v);
  if (max > 0) for (let p = 0; p < out.length; p++) out[p] /= max;
  return out;
}

/** 'resnet.onnx', or 'emotion/model.json' for a tfjs model (its folder says what it is). */
function modelTitle(model: string): string {
  const base = path.basename(model);
  return base.toLowerCase() === 'model.json' ? `${path.basename(path.dirname(path.resolve(model)))}/${base}` : base;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The human-readable summary printed when --json is not given. */
export function summarize(r: ExplainReport): string[] {
  const lines: string[] = [];
  const name = (label: string, i: number) => (label === `class ${i}` ? label : `${label} (${i})`);
  for (const img of r.images) {
    const top = img.top[0];
    const head = top ? `${name(top.label, top.classIndex)} p=${fmt(top.probability, 3)}` : '';
    lines.push(`${img.input}: ${head}`);
    for (const e of img.explained) {
      const files = Object.values(e.files).filter(Boolean).join(', ');
      lines.push(`  ${r.counterfactual ? 'counterfactual ' : ''}${name(e.label, e.classIndex)} logit=${fmt(e.logit, 3)} p=${fmt(e.probability, 3)}${files ? ` -> ${files}` : ''}`);
    }
  }
  for (const [m, v] of Object.entries(r.npy)) lines.push(`${m}: ${v.file} [${v.shape.join(',')}] float32`);
  if (r.report) lines.push(`report: ${r.report}`);
  lines.push(
    `${r.images.length} image(s) in ${(r.timings.totalMs / 1000).toFixed(2)} s (model load ${(r.timings.loadModelMs / 1000).toFixed(2)} s, explain ${(r.timings.explainMs / 1000).toFixed(2)} s) ` +
      `on ${r.engine} with ${r.device} kernels; pictures in ${r.out}${r.interrupted ? ' (interrupted)' : ''}` +
      `${r.failures.length ? `; ${r.failures.length} failed` : ''}${r.notRun ? `; ${r.notRun} not run` : ''}`,
  );
  return lines;
}

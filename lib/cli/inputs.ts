/** What the CLI reads besides flags: the model's sidecar JSON, class labels, and the list of inputs. */
import * as fs from 'fs';
import * as path from 'path';
import type { Layout } from '../types';
import { parseSize, UsageError } from './args';

/** Preprocessing facts about a model, kept next to it as <model>.gradcam.json or <dir>/gradcam.json. */
export interface Sidecar {
  width?: number;
  height?: number;
  mean?: number[];
  std?: number[];
  layout?: Layout;
  /** 1 = grey input */
  channels?: 1 | 3;
  /** pixel values are divided by this before mean/std: 255 (default) or 1 */
  pixelScale?: number;
  labels?: string[];
  layer?: string;
  /** the file it came from */
  file?: string;
}

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif', '.bmp'];

/** Candidate sidecar paths for a model path, in the order they are tried. */
export function sidecarCandidates(model: string): string[] {
  const dir = path.dirname(model);
  const base = path.basename(model);
  const stem = base.replace(/\.(onnx|json)$/i, '');
  return [`${model}.gradcam.json`, path.join(dir, `${stem}.gradcam.json`), path.join(dir, 'gradcam.json')];
}

function vec(v: unknown, name: string, file: string): number[] | undefined {
  if (v === undefined) return undefined;
  const a = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(a) || a.some((x) => typeof x !== 'number' || !Number.isFinite(x)) || (a.length !== 1 && a.length !== 3)) {
    throw new UsageError(`${file}: '${name}' must be a number or an array of 3 numbers`, 'ESIDECAR');
  }
  return a as number[];
}

function sizeOf(raw: Record<string, unknown>, out: Sidecar, file: string): void {
  if (raw.size !== undefined) {
    const s = Array.isArray(raw.size) ? parseSize(raw.size.join('x'), `size in ${file}`) : parseSize(String(raw.size), `size in ${file}`);
    out.width = s.width;
    out.height = s.height;
  }
  if (raw.width !== undefined || raw.height !== undefined) {
    const s = parseSize(`${raw.width}x${raw.height}`, `width/height in ${file}`);
    out.width = s.width;
    out.height = s.height;
  }
}

/** Reads the sidecar of a model if there is one; throws a UsageError naming the file when it is malformed. */
export function loadSidecar(model: string): Sidecar {
  const file = sidecarCandidates(model).find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
  if (!file) return {};
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read sidecar ${file}: ${(e as Error).message.split('\n')[0]}`, 'ESIDECAR');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`${file}: expected a JSON object`, 'ESIDECAR');
  const out: Sidecar = { file };
  try {
    sizeOf(raw, out, file);
  } catch (e) {
    throw e instanceof UsageError ? new UsageError(e.message, 'ESIDECAR') : e;
  }
  out.mean = vec(raw.mean, 'mean', file);
  out.std = vec(raw.std, 'std', file);
  if (raw.layout !== undefined) {
    if (raw.layout !== 'nchw' && raw.layout !== 'nhwc') throw new UsageError(`${file}: 'layout' must be 'nchw' or 'nhwc'`, 'ESIDECAR');
    out.layout = raw.layout;
  }
  if (raw.channels !== undefined) {
    if (raw.channels !== 1 && raw.channels !== 3) throw new UsageError(`${file}: 'channels' must be 1 or 3`, 'ESIDECAR');
    out.channels = raw.channels;
  }
  if (raw.pixelScale !== undefined) {
    if (typeof raw.pixelScale !== 'number' || !(raw.pixelScale > 0)) throw new UsageError(`${file}: 'pixelScale' must be a positive number`, 'ESIDECAR');
    out.pixelScale = raw.pixelScale;
  }
  if (raw.layer !== undefined) {
    if (typeof raw.layer !== 'string') throw new UsageError(`${file}: 'layer' must be a string`, 'ESIDECAR');
    out.layer = raw.layer;
  }
  if (raw.labels !== undefined) {
    if (typeof raw.labels === 'string') out.labels = readLabels(path.resolve(path.dirname(file), raw.labels));
    else if (Array.isArray(raw.labels) && raw.labels.every((l) => typeof l === 'string')) out.labels = raw.labels as string[];
    else throw new UsageError(`${file}: 'labels' must be an array of strings or a file name`, 'ESIDECAR');
  }
  return out;
}

/** Class names from a JSON array (or {"0": "cat", ...} object) or a text file with one name per line. */
export function readLabels(file: string): string[] {
  if (!fs.existsSync(file)) throw new UsageError(`labels file not found: ${file}`);
  const text = fs.readFileSync(file, 'utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (e) {
      throw new UsageError(`cannot parse labels file ${file}: ${(e as Error).message.split('\n')[0]}`);
    }
    if (Array.isArray(v)) return v.map((x) => String(x));
    if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      const n = Math.max(...Object.keys(o).map(Number).filter(Number.isInteger)) + 1;
      return Array.from({ length: Math.max(n, 0) }, (_, i) => (o[String(i)] === undefined ? String(i) : String(o[String(i)])));
    }
    throw new UsageError(`labels file ${file}: expected a JSON array or object`);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l, i, a) => l.length > 0 || i < a.length - 1);
}

export type InputItem = { kind: 'image'; file: string } | { kind: 'npy'; file: string };

/** Expands --input values: files as given, directories to their image files (sorted), .npy tensors. */
export function expandInputs(inputs: readonly string[]): InputItem[] {
  const items: InputItem[] = [];
  for (const p of inputs) {
    if (!fs.existsSync(p)) throw new UsageError(`input not found: ${p}`);
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      const files = fs
        .readdirSync(p)
        .filter((f) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase()))
        .sort();
      if (files.length === 0) throw new UsageError(`no images (${IMAGE_EXTENSIONS.join(' ')}) in directory ${p}`);
      for (const f of files) items.push({ kind: 'image', file: path.join(p, f) });
    } else if (p.toLowerCase().endsWith('.npy')) {
      items.push({ kind: 'npy', file: p });
    } else {
      items.push({ kind: 'image', file: p });
    }
  }
  if (items.some((i) => i.kind === 'npy') && items.some((i) => i.kind === 'image')) {
    throw new UsageError('--input: give either pictures or .npy tensors, not both');
  }
  return items;
}

/** A file-name stem per input, unique within the run (clashes get -2, -3, ...), safe for file names. */
export function uniqueStems(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const stem = path.basename(n).replace(/\.[^.]+$/, '').replace(/[^A-Za-z0-9._-]+/g, '_') || 'input';
    const count = (seen.get(stem) ?? 0) + 1;
    seen.set(stem, count);
    return count === 1 ? stem : `${stem}-${count}`;
  });
}

/** A file of an input folder that is not explained, and why (listed on stderr and in --json `skipped`). */
export interface SkippedInput {
  input: string;
  reason: string;
}

/**
 * The entries of the input folders that expandInputs leaves out: files that are not pictures (by
 * extension) and sub-folders (folders are not searched recursively). Files given by name are never
 * skipped here: a file that does not decode is a failure of its own, reported with its path.
 */
export function skippedInputs(inputs: readonly string[]): SkippedInput[] {
  const skipped: SkippedInput[] = [];
  for (const p of inputs) {
    let entries: fs.Dirent[];
    try {
      if (!fs.statSync(p).isDirectory()) continue;
      entries = fs.readdirSync(p, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const file = path.join(p, e.name);
      if (e.isDirectory()) skipped.push({ input: file, reason: 'a folder (folders are not searched recursively)' });
      else if (!IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) {
        skipped.push({ input: file, reason: `not a picture (${IMAGE_EXTENSIONS.join(' ')})` });
      }
    }
  }
  return skipped;
}

/** One stderr line naming the sidecar in use and what it sets. */
export function sidecarLine(s: Sidecar): string {
  const facts: string[] = [];
  if (s.width) facts.push(`size ${s.width}x${s.height}`);
  if (s.layout) facts.push(s.layout);
  if (s.channels) facts.push(`${s.channels} channel${s.channels > 1 ? 's' : ''}`);
  if (s.mean) facts.push(`mean ${s.mean.join(',')}`);
  if (s.std) facts.push(`std ${s.std.join(',')}`);
  if (s.pixelScale !== undefined) facts.push(`pixelScale ${s.pixelScale}`);
  if (s.layer) facts.push(`layer ${s.layer}`);
  if (s.labels) facts.push(`${s.labels.length} labels`);
  return `sidecar: ${s.file}${facts.length ? ` (${facts.join(', ')})` : ''}`;
}

/** What the model declares about its input (null where unknown), for checking a sidecar against it. */
export interface DeclaredInput {
  layout: Layout;
  /** false where the adapter transposes an input in the other layout itself (tfjs) */
  layoutFixed: boolean;
  height: number | null;
  width: number | null;
  channels: number | null;
  /** the declared shape, for the message */
  shape: Array<number | null>;
}

/**
 * A sidecar written for another model is an error naming the file (ESIDECAR): its size, layout or
 * channels do not fit the model's declared input. Values the command line overrides (--size,
 * --layout) are not checked: they are not used.
 */
export function checkSidecarFits(s: Sidecar, model: string, declared: DeclaredInput, overrides: { size?: unknown; layout?: unknown }): void {
  if (!s.file) return;
  const problems: string[] = [];
  if (overrides.size === undefined && s.width !== undefined) {
    if ((declared.width !== null && declared.width !== s.width) || (declared.height !== null && declared.height !== s.height)) {
      problems.push(`size ${s.width}x${s.height}, the model's is ${declared.width ?? '?'}x${declared.height ?? '?'}`);
    }
  }
  if (overrides.layout === undefined && s.layout !== undefined && declared.layoutFixed && s.layout !== declared.layout) {
    problems.push(`layout ${s.layout}, the model's is ${declared.layout}`);
  }
  if (s.channels !== undefined && declared.channels !== null && s.channels !== declared.channels) {
    problems.push(`${s.channels} channel(s), the model has ${declared.channels}`);
  }
  if (problems.length === 0) return;
  const shape = `[${declared.shape.map((d, i) => (i === 0 ? 'N' : d ?? '?')).join(',')}] ${declared.layout}`;
  throw new UsageError(
    `sidecar ${s.file} was written for another model: ${problems.join('; ')} (${path.basename(model)} takes ${shape}); fix or remove the sidecar`,
    'ESIDECAR',
  );
}

/** The model's declared input as checkSidecarFits needs it. */
export function declaredInput(explainer: { inputShape: Array<number | null>; layout: Layout }, model: string): DeclaredInput {
  const shape = explainer.inputShape;
  const dim = (d: number | null | undefined) => (typeof d === 'number' && d > 0 ? d : null);
  const [, a, b, c] = shape;
  const hwc = explainer.layout === 'nhwc' ? [a, b, c] : [b, c, a];
  return {
    layout: explainer.layout,
    layoutFixed: model.toLowerCase().endsWith('.onnx'),
    height: shape.length === 4 ? dim(hwc[0]) : null,
    width: shape.length === 4 ? dim(hwc[1]) : null,
    channels: shape.length === 4 ? dim(hwc[2]) : null,
    shape,
  };
}

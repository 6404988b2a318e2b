/**
 * Loader for the reference numbers in ../shared/reference (pytorch-grad-cam + Captum outputs):
 * raw little-endian float32 .bin files described by manifest.json.
 *
 * The shared folder is `../shared` next to the repository root, or $GRADCAM_SHARED.
 * Paths are manifest paths, relative to shared/reference (e.g.
 * 'outputs/smallvgg/b1/argmax/grads.bin'); a leading 'reference/' is accepted too.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ManifestEntry {
  file: string;
  dtype: string;
  shape: number[];
  sha256?: string;
  kind?: string;
  layout?: string;
  desc?: string;
  stats?: { min: number; max: number; mean: number };
  [key: string]: unknown;
}

export interface Manifest {
  files: ManifestEntry[];
  models: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

let root: string | undefined;

/** The repository root: the nearest folder above this file with package.json named gradcam-node. */
export function repoRoot(): string {
  if (root === undefined) {
    let dir = __dirname;
    for (;;) {
      const pkg = path.join(dir, 'package.json');
      if (fs.existsSync(pkg)) {
        try {
          if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'gradcam-node') break;
        } catch {
          // not ours; keep walking up
        }
      }
      const up = path.dirname(dir);
      if (up === dir) throw new Error(`reference-data: no gradcam-node package.json above ${__dirname}`);
      dir = up;
    }
    root = dir;
  }
  return root;
}

/** $GRADCAM_SHARED, else ../shared relative to the repository root. */
export function sharedDir(): string {
  return process.env.GRADCAM_SHARED ? path.resolve(process.env.GRADCAM_SHARED) : path.resolve(repoRoot(), '..', 'shared');
}

export function referenceDir(): string {
  return path.join(sharedDir(), 'reference');
}

/** True when the reference data is there (tests skip otherwise). */
export function hasReference(): boolean {
  return fs.existsSync(path.join(referenceDir(), 'manifest.json'));
}

let manifestCache: Manifest | undefined;
let entries: Map<string, ManifestEntry> | undefined;

export function manifest(): Manifest {
  manifestCache ??= JSON.parse(fs.readFileSync(path.join(referenceDir(), 'manifest.json'), 'utf8')) as Manifest;
  return manifestCache;
}

function normalize(relPath: string): string {
  const p = relPath.replace(/\\/g, '/').replace(/^\.\//, '');
  return p.startsWith('reference/') ? p.slice('reference/'.length) : p;
}

/** The manifest's entry for a file (shape, dtype, stats ...), or undefined when it has none. */
export function manifestEntry(relPath: string): ManifestEntry | undefined {
  if (!entries) {
    entries = new Map();
    for (const e of manifest().files) entries.set(e.file, e);
  }
  return entries.get(normalize(relPath));
}

/** True when the file exists. */
export function hasFile(relPath: string): boolean {
  return fs.existsSync(path.join(referenceDir(), normalize(relPath)));
}

/** A float32 .bin file as a Float32Array (its own aligned copy), checked against the manifest's shape. */
export function readF32(relPath: string): Float32Array {
  const file = path.join(referenceDir(), normalize(relPath));
  const bytes = fs.readFileSync(file);
  if (bytes.byteLength % 4 !== 0) throw new Error(`reference-data: ${relPath} has ${bytes.byteLength} bytes, not float32`);
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  const entry = manifestEntry(relPath);
  if (entry) {
    if (entry.dtype !== 'float32') throw new Error(`reference-data: ${relPath} is ${entry.dtype}, not float32`);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (count !== out.length) throw new Error(`reference-data: ${relPath} has ${out.length} values, manifest says ${count}`);
  }
  return out;
}

/** The manifest shape of a file (throws when the manifest does not list it). */
export function shapeOf(relPath: string): number[] {
  const e = manifestEntry(relPath);
  if (!e) throw new Error(`reference-data: ${relPath} is not in manifest.json`);
  return e.shape;
}

/**
 * On-disk cache of generated gradient models, so that a second run of the same model is ready at
 * once. Per (model, backward options) two entries, each one self-checking file:
 *
 *   <key>.gradient   the generated forward+backward model (saveModel's bytes) and the names the
 *                    session reads (GradientModelInfo): a hit skips buildGradientModel and saveModel
 *   <key>.optimized  the model as ONNX Runtime optimized it (graph level 'all') for this CPU: loaded
 *                    with optimization disabled, a hit also skips ORT's optimizer. CPU sessions only:
 *                    ORT marks such a model as specific to the machine (NCHWc blocking), so the CPU
 *                    model and architecture are part of its key; CUDA sessions load the .gradient entry.
 *
 * <key> is the sha256 of the canonical JSON of: the cache format, this package's version,
 * onnxruntime-node's version, the sha256 of the model file's bytes and every backward option
 * (BackwardOptions serialized with sorted keys, so that an option added later enters the key by
 * itself); plus, for .optimized, the execution provider, CPU model and architecture.
 *
 * File layout: 'gcamcach' (8 bytes) | header length (u32 LE) | crc32 of header+payload (u32 LE) |
 * header (JSON: format, kind, key, payload length, GradientModelInfo) | payload (ONNX bytes).
 * A reader checks the magic, the lengths, the crc32 and the key before using an entry; anything
 * else (truncated, flipped bytes, unparsable, another key) counts as corrupt and is rebuilt over.
 * Writers write a temp file in the same folder and rename it into place, so readers see a whole
 * old file or a whole new one, and two processes building the same entry both succeed.
 *
 * Size bound: after each write, while the folder's entries exceed maxBytes (default 2 GiB), the
 * least recently used (oldest mtime; a hit touches its file) are deleted; temp files left by a
 * crashed writer are deleted after an hour. Write failures (read-only folder, full disk) never fail a
 * session: it runs uncached, with one process warning.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { GradcamError, checkOneOf, checkPositiveInteger, invalidType } from '../errors';
import { BackwardOptions, GradientModel, buildGradientModel } from './backward';
import { ModelProto, saveModel } from './proto';
import { EXECUTION_PROVIDERS, ExecutionProviderRequest, InProcessRunner, ModelBytes, OrtLoadOptions, Runner, WorkerRunner, cudaProvider } from './runtime';

/** Bump when the file layout or what a cached model means changes. */
export const CACHE_FORMAT = 1;
export const DEFAULT_CACHE_MAX_BYTES = 2 * 1024 ** 3;
const MAGIC = Buffer.from('gcamcach', 'latin1');
const PREFIX = MAGIC.length + 8;
const ENTRY = /^[0-9a-f]{40}\.(gradient|optimized)$/;
const TEMP = /^[0-9a-f]{40}\.(gradient|optimized)\.\d+\.[0-9a-f]+\.tmp$/;
const STALE_TEMP_MS = 3600e3;

export interface CacheOptions {
  /** the folder (default: $GRADCAM_CACHE_DIR, else the user's cache folder + gradcam-node) */
  dir?: string;
  /** bound on the folder's entries in bytes; least recently used ones go first (default 2 GiB) */
  maxBytes?: number;
}

/** What a session needs of a GradientModel: every field but the model itself. */
export type GradientModelInfo = Omit<GradientModel, 'model'>;

/** Counters of this process, for tests and logs. */
export interface CacheStats {
  /** buildGradientModel calls made by gradient sessions (cached or not) */
  builds: number;
  gradientHits: number;
  optimizedHits: number;
  /** entries written */
  writes: number;
  /** entries found damaged or unusable (rebuilt over) */
  corrupt: number;
}
const stats: CacheStats = { builds: 0, gradientHits: 0, optimizedHits: 0, writes: 0, corrupt: 0 };

export function cacheStats(): CacheStats {
  return { ...stats };
}

/** The cache folder: GRADCAM_CACHE_DIR, else the platform's user cache folder + 'gradcam-node'. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = os.homedir()): string {
  if (env.GRADCAM_CACHE_DIR) return path.resolve(env.GRADCAM_CACHE_DIR);
  if (platform === 'win32') return path.join(env.LOCALAPPDATA || path.join(home, 'AppData', 'Local'), 'gradcam-node', 'Cache');
  if (platform === 'darwin') return path.join(home, 'Library', 'Caches', 'gradcam-node');
  const xdg = env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.cache'), 'gradcam-node');
}

/** undefined/true: the default folder; false: off; an object: its folder and bound. */
export function checkCacheOption(name: string, v: unknown): false | CacheOptions {
  if (v === undefined || v === true) return {};
  if (v === false) return false;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidType(name, 'false, true or { dir?, maxBytes? }', v);
  const o = v as CacheOptions;
  if (o.dir !== undefined && (typeof o.dir !== 'string' || o.dir === '')) throw invalidType(`${name}.dir`, 'folder path (string)', o.dir);
  if (o.maxBytes !== undefined) checkPositiveInteger(`${name}.maxBytes`, o.maxBytes);
  return { dir: o.dir, maxBytes: o.maxBytes };
}

/** JSON with object keys sorted at every level: equal options give equal text. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x) && !ArrayBuffer.isView(x)) {
      const o = x as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    }
    return x;
  });
}

let versions: { package: string; onnxruntime: string } | undefined;
function softwareVersions(): { package: string; onnxruntime: string } {
  if (versions) return versions;
  let pkg = 'unknown';
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const j = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (j.name === 'gradcam-node') { pkg = j.version ?? pkg; break; }
    } catch {
      // no package.json here
    }
    if (path.dirname(dir) === dir) break;
  }
  const ortPkg = JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string };
  versions = { package: pkg, onnxruntime: ortPkg.version };
  return versions;
}

/** Where and how a gradient session runs. */
export interface RunnerSpec {
  executionProvider: ExecutionProviderRequest;
  /** 0: in this thread; n: n worker threads */
  workers: number;
  intraOpThreads?: number;
}

/** A runner for bytes nobody reads afterwards (a worker thread takes them over). */
function createRunner(bytes: Uint8Array, spec: RunnerSpec, options?: OrtLoadOptions): Promise<Runner> {
  const load = { ...options, transferBytes: true };
  return spec.workers > 0
    ? WorkerRunner.create(bytes, spec.executionProvider, spec.workers, spec.intraOpThreads, load)
    : InProcessRunner.create(bytes, spec.executionProvider, spec.intraOpThreads, load);
}

/** A worker runner started before its model is known; give() hands the bytes over, once. */
function earlyRunner(spec: RunnerSpec): { used: boolean; give: (bytes: Uint8Array, load?: OrtLoadOptions) => Promise<Runner>; cancel: () => void } {
  let resolve!: (m: ModelBytes) => void;
  let reject!: (e: Error) => void;
  const model = new Promise<ModelBytes>((res, rej) => { resolve = res; reject = rej; });
  const runner = WorkerRunner.create(model, spec.executionProvider, spec.workers, spec.intraOpThreads);
  runner.catch(() => undefined); // awaited by give(); unused (cancelled) otherwise
  const r = {
    used: false,
    give(bytes: Uint8Array, load?: OrtLoadOptions): Promise<Runner> {
      r.used = true;
      resolve({ bytes, load: { ...load, transferBytes: true } });
      return runner;
    },
    cancel(): void {
      r.used = true;
      reject(new GradcamError('unused', 'ECANCELLED'));
    },
  };
  return r;
}

function infoOf(gm: GradientModel): GradientModelInfo {
  const { model: _model, ...info } = gm;
  return info;
}

function build(proto: ModelProto, bopts: BackwardOptions): { info: GradientModelInfo; bytes: Uint8Array } {
  stats.builds++;
  const gm = buildGradientModel(proto, bopts);
  return { info: infoOf(gm), bytes: saveModel(gm.model) };
}

/**
 * The generated model for (proto, bopts) in an ORT runner: from the cache where it has the entry,
 * built (and stored) where not. Without a cache: built, as before.
 */
export async function openGradientModel(
  proto: ModelProto, bopts: BackwardOptions, spec: RunnerSpec, cache?: ModelCache,
): Promise<{ info: GradientModelInfo; runner: Runner }> {
  checkOneOf('executionProvider', spec.executionProvider, EXECUTION_PROVIDERS);
  if (!cache) {
    const { info, bytes } = build(proto, bopts);
    return { info, runner: await createRunner(bytes, spec) };
  }
  return cache.open(proto, bopts, spec);
}

interface Entry { info: GradientModelInfo; payload: Uint8Array }

let warned = false;

/** The cache as seen by one model: its folder and the digest of the model file's bytes. */
export class ModelCache {
  readonly dir: string;
  readonly maxBytes: number;
  private digest?: string;
  private bytes?: Uint8Array;

  /** model: the model file's bytes (hashed on first use: listing layers hashes nothing), or their sha256 in hex */
  constructor(model: Uint8Array | string, options: CacheOptions = {}) {
    if (typeof model === 'string') {
      if (!/^[0-9a-f]{64}$/.test(model)) throw invalidType('model', 'sha256 as 64 hex digits', model);
      this.digest = model;
    } else if (model instanceof Uint8Array) {
      this.bytes = model;
    } else {
      throw invalidType('model', 'Uint8Array or sha256 as 64 hex digits', model);
    }
    this.dir = path.resolve(options.dir ?? defaultCacheDir());
    this.maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
  }

  /** sha256 (hex) of the model file's bytes */
  get modelDigest(): string {
    if (this.digest === undefined) {
      this.digest = digestOf(this.bytes as Uint8Array);
      this.bytes = undefined;
    }
    return this.digest;
  }

  /** The key of a model's gradient entry: canonical JSON (what the header stores) and file name. */
  gradientKey(bopts: BackwardOptions): { json: string; name: string } {
    const v = softwareVersions();
    return keyed({ format: CACHE_FORMAT, kind: 'gradient', package: v.package, onnxruntime: v.onnxruntime, model: this.modelDigest, backward: bopts }, 'gradient');
  }

  optimizedKey(bopts: BackwardOptions): { json: string; name: string } {
    const v = softwareVersions();
    const cpu = os.cpus()[0]?.model ?? 'unknown';
    return keyed({
      format: CACHE_FORMAT, kind: 'optimized', package: v.package, onnxruntime: v.onnxruntime, model: this.modelDigest, backward: bopts,
      executionProvider: 'cpu', graphOptimizationLevel: 'all', cpu, arch: process.arch, platform: process.platform,
    }, 'optimized');
  }

  async open(proto: ModelProto, bopts: BackwardOptions, spec: RunnerSpec): Promise<{ info: GradientModelInfo; runner: Runner }> {
    // the worker thread starts now: its start-up overlaps hashing and reading (or building) the model
    const early = spec.workers > 0 ? earlyRunner(spec) : undefined;
    const runnerFor = (bytes: Uint8Array, load?: OrtLoadOptions): Promise<Runner> => (early && !early.used ? early.give(bytes, load) : createRunner(bytes, spec, load));
    try {
      return await this.openWith(proto, bopts, spec, runnerFor);
    } finally {
      if (early && !early.used) early.cancel();
    }
  }

  private async openWith(proto: ModelProto, bopts: BackwardOptions, spec: RunnerSpec, runnerFor: (bytes: Uint8Array, load?: OrtLoadOptions) => Promise<Runner>): Promise<{ info: GradientModelInfo; runner: Runner }> {
    // ORT's optimized model is cached for CPU sessions only (see the top of this file)
    const cpuOnly = spec.executionProvider === 'cpu' || !cudaProvider().available;
    const gKey = this.gradientKey(bopts);
    const oKey = cpuOnly ? this.optimizedKey(bopts) : undefined;
    if (oKey) {
      const hit = await this.read(oKey);
      if (hit) {
        try {
          const runner = await runnerFor(hit.payload, { graphOptimizationLevel: 'disabled' });
          stats.optimizedHits++;
          return { info: hit.info, runner };
        } catch {
          stats.corrupt++; // a checked entry ORT cannot load (e.g. a CPU without its instructions): rebuilt over
        }
      }
    }
    let entry = await this.read(gKey);
    if (entry) stats.gradientHits++;
    else {
      const { info, bytes } = build(proto, bopts);
      entry = { info, payload: bytes };
      await this.write(gKey, entry);
    }
    const ortTemp = oKey ? this.tempPath(oKey.name) : undefined;
    try {
      const runner = await runnerFor(entry.payload, ortTemp ? { optimizedModelFilePath: ortTemp } : undefined);
      if (oKey && ortTemp) await this.adopt(oKey, entry.info, ortTemp);
      return { info: entry.info, runner };
    } finally {
      if (ortTemp) await fs.promises.rm(ortTemp, { force: true }).catch(() => undefined);
      await this.prune([gKey.name, oKey?.name ?? '']);
    }
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private tempPath(name: string): string {
    return this.file(`${name}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  }

  /** A checked entry, or undefined (missing, or corrupt: counted). */
  async read(key: { json: string; name: string }): Promise<Entry | undefined> {
    let buf: Buffer;
    try {
      buf = await readWhole(this.file(key.name));
    } catch {
      return undefined;
    }
    const entry = decodeEntry(buf, key.json);
    if (!entry) {
      stats.corrupt++;
      return undefined;
    }
    const now = new Date();
    fs.promises.utimes(this.file(key.name), now, now).catch(() => undefined); // least recently used goes first
    return entry;
  }

  /** Store an entry: a temp file in the folder, renamed into place. Failures only warn. */
  async write(key: { json: string; name: string }, entry: Entry): Promise<boolean> {
    const tmp = this.tempPath(key.name);
    try {
      await fs.promises.mkdir(this.dir, { recursive: true });
      const fh = await fs.promises.open(tmp, 'wx');
      try {
        for (const part of encodeEntry(key.json, entry)) await fh.write(part);
      } finally {
        await fh.close();
      }
      try {
        await fs.promises.rename(tmp, this.file(key.name));
      } catch (e) {
        // Windows refuses to replace a file another process has open: that process wrote the same entry
        if (!fs.existsSync(this.file(key.name))) throw e;
        await fs.promises.rm(tmp, { force: true });
        return false;
      }
      stats.writes++;
      return true;
    } catch (e) {
      await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
      warnOnce(this.dir, e as Error);
      return false;
    }
  }

  /** Wrap the model ORT wrote at `ortFile` as an entry. */
  private async adopt(key: { json: string; name: string }, info: GradientModelInfo, ortFile: string): Promise<void> {
    let payload: Buffer;
    try {
      payload = await readWhole(ortFile);
    } catch {
      return; // ORT wrote nothing (e.g. it could not): the next run optimizes again
    }
    if (payload.length) await this.write(key, { info, payload });
  }

  /** Delete temp files older than an hour, then the least recently used entries beyond maxBytes. */
  async prune(keep: string[] = []): Promise<void> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch {
      return;
    }
    const now = Date.now();
    const entries: Array<{ name: string; size: number; mtime: number }> = [];
    for (const name of names) {
      const isEntry = ENTRY.test(name);
      if (!isEntry && !TEMP.test(name)) continue;
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(this.file(name));
      } catch {
        continue;
      }
      if (!isEntry) {
        if (now - st.mtimeMs > STALE_TEMP_MS) await fs.promises.rm(this.file(name), { force: true }).catch(() => undefined);
        continue;
      }
      entries.push({ name, size: st.size, mtime: st.mtimeMs });
    }
    let total = entries.reduce((s, e) => s + e.size, 0);
    entries.sort((a, b) => a.mtime - b.mtime);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (keep.includes(e.name)) continue;
      try {
        await fs.promises.rm(this.file(e.name), { force: true });
        total -= e.size;
      } catch {
        // in use (Windows) or gone: leave it
      }
    }
  }
}

/** A file in one read call (fs.promises.readFile reads in 512 KiB steps: slow for large models on a busy machine). */
async function readWhole(file: string): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** sha256 (hex) of a model file's bytes. */
export function digestOf(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

function keyed(key: object, suffix: string): { json: string; name: string } {
  const json = canonicalJson(key);
  return { json, name: `${crypto.createHash('sha256').update(json).digest('hex').slice(0, 40)}.${suffix}` };
}

let crcTable: Int32Array | undefined;
/** CRC-32 (IEEE, as zlib's), continuing from `prev`: zlib.crc32 where node has it (20.15+), a table otherwise. */
export function crc32(data: Uint8Array, prev = 0): number {
  const native = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  if (native) return native(data, prev);
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~prev;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function encodeEntry(keyJson: string, entry: Entry): Uint8Array[] {
  const header = Buffer.from(JSON.stringify({ format: CACHE_FORMAT, key: JSON.parse(keyJson), payloadBytes: entry.payload.length, info: entry.info }), 'utf8');
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(header.length, MAGIC.length);
  prefix.writeUInt32LE(crc32(entry.payload, crc32(header)), MAGIC.length + 4);
  return [prefix, header, entry.payload];
}

/** The entry in `buf` when it is whole and is the one for `keyJson`; undefined otherwise. */
export function decodeEntry(buf: Buffer, keyJson: string): Entry | undefined {
  if (buf.length < PREFIX || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const headerBytes = buf.readUInt32LE(MAGIC.length);
  const crc = buf.readUInt32LE(MAGIC.length + 4);
  if (PREFIX + headerBytes > buf.length) return undefined;
  const header = buf.subarray(PREFIX, PREFIX + headerBytes);
  const payload = buf.subarray(PREFIX + headerBytes);
  if (crc32(payload, crc32(header)) !== crc) return undefined;
  let h: { format?: number; key?: unknown; payloadBytes?: number; info?: GradientModelInfo };
  try {
    h = JSON.parse(header.toString('utf8'));
  } catch {
    return undefined;
  }
  if (h.format !== CACHE_FORMAT || h.payloadBytes !== payload.length || canonicalJson(h.key) !== keyJson) return undefined;
  const info = h.info;
  if (!info || typeof info.input !== 'string' || typeof info.logits !== 'string' || !Array.isArray(info.layers) || !Array.isArray(info.gradOutputs)) return undefined;
  return { info, payload };
}

function warnOnce(dir: string, e: Error): void {
  if (warned) return;
  warned = true;
  process.emitWarning(`gradcam-node: cannot write the model cache in ${dir} (${e.message.split('\n')[0]}); models are built each run`, { code: 'GRADCAM_CACHE' });
}

/** A model file's bytes, read once: decoded by the caller, hashed for the cache key. */
export function readModelFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new GradcamError(`Cannot read ONNX model ${file}: ${(e as Error).message}`, 'ENOENT');
  }
}

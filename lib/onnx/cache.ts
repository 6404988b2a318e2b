/**
 * On-disk cache of generated gradient models, so that a second run of the same model is ready at
 * once. Per (model, backward options) two entries:
 *
 *   <key>.gradient   one self-checking file: the generated forward+backward model (saveModel's
 *                    bytes) and the names the session reads (GradientModelInfo): a hit skips
 *                    buildGradientModel and saveModel
 *   <key>.optimized/ a folder: the model as ONNX Runtime optimized it (graph level 'all') for this
 *                    CPU, as ORT wrote it: model.onnx (the graph) and weights.bin (its initializers,
 *                    as external data), and entry.json (a self-checking file: the key, the
 *                    GradientModelInfo, the size and CRC-32 of the two). A hit is loaded by path with
 *                    optimization disabled: ORT reads the graph and maps the weights from the file, no
 *                    byte of the model passes through JavaScript (a 90 MB model read into fresh memory
 *                    costs 0.3 s on some VMs), and ORT's optimizer is skipped. The two files are
 *                    checked against their CRC-32 in the thread that loads them (the ORT worker's),
 *                    before the session is used. Small reads (headers, stats) are synchronous: on
 *                    libuv's pool they would queue behind the first pictures' decoding. CPU sessions only: ORT marks such a model as specific to the machine
 *                    (NCHWc blocking), so the CPU model and architecture are part of its key; CUDA
 *                    sessions load the .gradient entry.
 *
 * Per model file, two small entries spare a warm start reading and decoding the model at all:
 *
 *   <key>.digest     the sha256 of a model file, remembered with the file's identity (device, inode,
 *                    size, mtime and ctime, as git's index does): used only while all five are
 *                    unchanged and the file was not modified within 2 s of its hashing (a change within
 *                    the timestamps' resolution could otherwise pass unseen); otherwise the file is hashed
 *   <key>.summary    what the explainer reads of the model's graph (its input, candidate layers, the
 *                    default layer, the score tensor, whether the input gradient is supported, ReLU
 *                    counts), keyed by the model's sha256 and this package's version
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
import { GradcamError, checkOneOf, checkPositiveInteger, invalidType } from '../errors';
import { BackwardOptions, GradientModel, buildGradientModel } from './backward';
import { ModelProto, saveModel } from './proto';
import { FileCheck, crc32, fileCrc32 } from '../io/crc32';
import { EXECUTION_PROVIDERS, ExecutionProviderRequest, InProcessRunner, ModelBytes, ModelSource, OrtLoadOptions, Runner, WorkerRunner, cudaProvider } from './runtime';

export { crc32 } from '../io/crc32';

/** Bump when the file layout or what a cached model means changes. */
export const CACHE_FORMAT = 2;
export const DEFAULT_CACHE_MAX_BYTES = 2 * 1024 ** 3;
const MAGIC = Buffer.from('gcamcach', 'latin1');
const PREFIX = MAGIC.length + 8;
const ENTRY = /^[0-9a-f]{40}\.(gradient|optimized|digest|summary)$/;
const TEMP = /^[0-9a-f]{40}\.(gradient|optimized|digest|summary)\.\d+\.[0-9a-f]+\.tmp$/;
const STALE_TEMP_MS = 3600e3;
/** the files of an .optimized folder */
const OPT_MODEL = 'model.onnx';
const OPT_WEIGHTS = 'weights.bin';
const OPT_HEADER = 'entry.json';
/** a digest is trusted only for a file last changed this long before it was hashed */
const RACY_MS = 2000;

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
  /** model files whose sha256 came from a .digest entry (not read) */
  digestHits: number;
  /** explainers whose graph summary came from a .summary entry (model not decoded) */
  summaryHits: number;
  /** entries written */
  writes: number;
  /** entries found damaged or unusable (rebuilt over) */
  corrupt: number;
}
const stats: CacheStats = { builds: 0, gradientHits: 0, optimizedHits: 0, digestHits: 0, summaryHits: 0, writes: 0, corrupt: 0 };

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

/** A runner for a model nobody reads afterwards (a worker thread takes the bytes over). */
function createRunner(model: ModelSource, spec: RunnerSpec, options?: OrtLoadOptions): Promise<Runner> {
  const load = { ...options, transferBytes: true };
  return spec.workers > 0
    ? WorkerRunner.create(model, spec.executionProvider, spec.workers, spec.intraOpThreads, load)
    : InProcessRunner.create(model, spec.executionProvider, spec.intraOpThreads, load);
}

/** A worker runner started before its model is known; give() hands the model over, once. */
function earlyRunner(spec: RunnerSpec): { used: boolean; give: (model: ModelSource, load?: OrtLoadOptions) => Promise<Runner>; cancel: () => void } {
  let resolve!: (m: ModelBytes) => void;
  let reject!: (e: Error) => void;
  const model = new Promise<ModelBytes>((res, rej) => { resolve = res; reject = rej; });
  const runner = WorkerRunner.create(model, spec.executionProvider, spec.workers, spec.intraOpThreads);
  runner.catch(() => undefined); // awaited by give(); unused (cancelled) otherwise
  const r = {
    used: false,
    give(m: ModelSource, load?: OrtLoadOptions): Promise<Runner> {
      r.used = true;
      resolve({ bytes: m, load: { ...load, transferBytes: true } });
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

/** The model to build from: a decoded proto, or how to get it (decoded only when a build is needed). */
export type ModelLoader = ModelProto | (() => ModelProto);

function build(model: ModelLoader, bopts: BackwardOptions): { info: GradientModelInfo; bytes: Uint8Array } {
  stats.builds++;
  const gm = buildGradientModel(typeof model === 'function' ? model() : model, bopts);
  return { info: infoOf(gm), bytes: saveModel(gm.model) };
}

/**
 * The generated model for (model, bopts) in an ORT runner: from the cache where it has the entry,
 * built (and stored) where not. Without a cache: built, as before.
 */
export async function openGradientModel(
  model: ModelLoader, bopts: BackwardOptions, spec: RunnerSpec, cache?: ModelCache,
): Promise<{ info: GradientModelInfo; runner: Runner }> {
  checkOneOf('executionProvider', spec.executionProvider, EXECUTION_PROVIDERS);
  if (!cache) {
    const { info, bytes } = build(model, bopts);
    return { info, runner: await createRunner(bytes, spec) };
  }
  return cache.open(model, bopts, spec);
}

interface Entry<T = GradientModelInfo> { info: T; payload: Uint8Array }
interface FileRecord { name: string; bytes: number; crc: number }

let warned = false;

/** A model file's identity: while all of it is unchanged, so are its bytes (as git's index assumes). */
interface FileIdentity { path: string; dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }

function identityOf(file: string, st: fs.Stats): FileIdentity {
  return { path: file, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return (['path', 'dev', 'ino', 'size', 'mtimeMs', 'ctimeMs'] as const).every((k) => a[k] === b[k]);
}

/** what a .digest entry holds */
interface DigestMemo extends FileIdentity { digest: string; hashedAt: number }

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

  /**
   * The cache for a model file, with the file's bytes when they had to be read: its sha256 comes
   * from a .digest entry while the file's identity is unchanged (then it is not read), else the
   * file is read, hashed and its digest remembered.
   */
  static async forFile(file: string, options: CacheOptions = {}): Promise<{ cache: ModelCache; bytes?: Buffer }> {
    const probe = new ModelCache('0'.repeat(64), options);
    let abs = path.resolve(file);
    try {
      abs = fs.realpathSync(abs);
    } catch {
      // read below, which names the file
    }
    const key = keyed({ format: CACHE_FORMAT, kind: 'digest', path: abs }, 'digest');
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(abs);
    } catch {
      // read below, which names the file
    }
    const id = st && identityOf(abs, st);
    if (id) {
      const m = probe.readSmall(key, isDigestMemo);
      if (m && sameIdentity(m, id) && m.hashedAt - Math.max(id.mtimeMs, id.ctimeMs) > RACY_MS) {
        stats.digestHits++;
        return { cache: new ModelCache(m.digest, options) };
      }
    }
    const bytes = readModelFile(file);
    const cache = new ModelCache(digestOf(bytes), options);
    const after = id && fs.statSync(abs, { throwIfNoEntry: false });
    // remembered only when the file did not change while it was read
    if (id && after && sameIdentity(identityOf(abs, after), id)) {
      const memo: DigestMemo = { ...id, digest: cache.modelDigest, hashedAt: Date.now() };
      await cache.writeSmall(key, memo);
    }
    return { cache, bytes };
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

  /** The key of a model's graph summary: this package's reading of the model, with the options that change it. */
  summaryKey(options: object): { json: string; name: string } {
    return keyed({ format: CACHE_FORMAT, kind: 'summary', package: softwareVersions().package, model: this.modelDigest, options }, 'summary');
  }

  /** A graph summary stored by writeSummary, or undefined (missing or corrupt). */
  readSummary<T extends object>(options: object, valid: (v: unknown) => v is T): T | undefined {
    const hit = this.readSmall(this.summaryKey(options), valid);
    if (hit) stats.summaryHits++;
    return hit;
  }

  async writeSummary(options: object, summary: object): Promise<void> {
    await this.writeSmall(this.summaryKey(options), summary);
  }

  async open(model: ModelLoader, bopts: BackwardOptions, spec: RunnerSpec): Promise<{ info: GradientModelInfo; runner: Runner }> {
    // the worker thread starts now: its start-up overlaps hashing and reading (or building) the model
    const early = spec.workers > 0 ? earlyRunner(spec) : undefined;
    const runnerFor = (m: ModelSource, load?: OrtLoadOptions): Promise<Runner> => (early && !early.used ? early.give(m, load) : createRunner(m, spec, load));
    try {
      return await this.openWith(model, bopts, spec, runnerFor);
    } finally {
      if (early && !early.used) early.cancel();
    }
  }

  private async openWith(model: ModelLoader, bopts: BackwardOptions, spec: RunnerSpec, runnerFor: (m: ModelSource, load?: OrtLoadOptions) => Promise<Runner>): Promise<{ info: GradientModelInfo; runner: Runner }> {
    // ORT's optimized model is cached for CPU sessions only (see the top of this file)
    const cpuOnly = spec.executionProvider === 'cpu' || !cudaProvider().available;
    const gKey = this.gradientKey(bopts);
    const oKey = cpuOnly ? this.optimizedKey(bopts) : undefined;
    if (oKey) {
      const hit = await this.readOptimized(oKey);
      if (hit) {
        try {
          // the thread that loads the files checks their CRC-32 (runtime.ts createOrtSession)
          const runner = await runnerFor({ path: hit.model, verify: hit.verify }, { graphOptimizationLevel: 'disabled' });
          stats.optimizedHits++;
          return { info: hit.info, runner };
        } catch {
          // a checked entry ORT cannot load (e.g. a CPU without its instructions) or a file that
          // differs from its CRC-32: rebuilt over
          stats.corrupt++;
          await this.discard(oKey.name);
        }
      }
    }
    let entry = await this.read(gKey);
    if (entry) stats.gradientHits++;
    else {
      const { info, bytes } = build(model, bopts);
      entry = { info, payload: bytes };
      await this.write(gKey, entry);
    }
    // ORT writes the optimized model into a temp folder, renamed into place when complete
    const ortTemp = oKey ? this.tempPath(oKey.name) : undefined;
    try {
      let load: OrtLoadOptions | undefined;
      if (ortTemp) {
        try {
          await fs.promises.mkdir(ortTemp, { recursive: true });
          load = { optimizedModelFilePath: path.join(ortTemp, OPT_MODEL), externalWeights: OPT_WEIGHTS };
        } catch (e) {
          warnOnce(this.dir, e as Error);
        }
      }
      const runner = await runnerFor(entry.payload, load);
      if (oKey && ortTemp && load) await this.adopt(oKey, entry.info, ortTemp);
      return { info: entry.info, runner };
    } finally {
      if (ortTemp) await fs.promises.rm(ortTemp, { recursive: true, force: true }).catch(() => undefined);
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
    touch(this.file(key.name));
    return entry;
  }

  /** The info of a small checked entry (a header without payload) when it passes `valid`, or undefined. */
  private readSmall<T>(key: { json: string; name: string }, valid: (info: unknown) => info is T): T | undefined {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file(key.name));
    } catch {
      return undefined;
    }
    const entry = decodeEntry(buf, key.json, valid);
    if (!entry || entry.payload.length) {
      stats.corrupt++;
      return undefined;
    }
    touch(this.file(key.name));
    return entry.info;
  }

  private async writeSmall(key: { json: string; name: string }, info: object): Promise<void> {
    await this.write(key, { info, payload: new Uint8Array(0) });
  }

  /** An .optimized folder's model file and the checks of its files, when its entry.json is whole and its files have the recorded sizes. */
  private async readOptimized(key: { json: string; name: string }): Promise<{ info: GradientModelInfo; model: string; verify: FileCheck[] } | undefined> {
    const dir = this.file(key.name);
    if (!fs.existsSync(dir)) return undefined;
    const damaged = async (): Promise<undefined> => {
      stats.corrupt++;
      await this.discard(key.name);
      return undefined;
    };
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path.join(dir, OPT_HEADER));
    } catch {
      return damaged(); // a folder without its entry.json
    }
    const entry = decodeEntry(buf, key.json, isGradientModelInfo);
    const files = entry?.header.files;
    const ok = entry && entry.payload.length === 0 && Array.isArray(files) && files.some((f) => f?.name === OPT_MODEL)
      && files.every((f) => f && [OPT_MODEL, OPT_WEIGHTS].includes(f.name) && Number.isInteger(f.bytes) && Number.isInteger(f.crc));
    if (!entry || !ok) return damaged();
    const verify = (files as FileRecord[]).map((f) => ({ path: path.join(dir, f.name), bytes: f.bytes, crc: f.crc }));
    // the sizes here, before ORT maps the weights: a mapping past a truncated file's end would fault
    // in ORT (the loading thread checks the CRC-32 after)
    if (verify.some((f) => fs.statSync(f.path, { throwIfNoEntry: false })?.size !== f.bytes)) return damaged();
    touch(dir);
    return { info: entry.info, model: path.join(dir, OPT_MODEL), verify };
  }

  /** Store an entry: a temp file in the folder, renamed into place. Failures only warn. */
  async write(key: { json: string; name: string }, entry: Entry<object>): Promise<boolean> {
    const tmp = this.tempPath(key.name);
    try {
      await fs.promises.mkdir(this.dir, { recursive: true });
      await writeParts(tmp, encodeEntry(key.json, entry));
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

  /** Make the folder ORT wrote the optimized model in (model.onnx, weights.bin) an entry: its entry.json, then renamed into place. */
  private async adopt(key: { json: string; name: string }, info: GradientModelInfo, folder: string): Promise<void> {
    const files: FileRecord[] = [];
    try {
      for (const name of [OPT_MODEL, OPT_WEIGHTS]) {
        const f = path.join(folder, name);
        if (!fs.existsSync(f)) continue;
        const { bytes, crc } = fileCrc32(f);
        files.push({ name, bytes, crc });
      }
    } catch {
      return; // ORT wrote nothing readable: the next run optimizes again
    }
    if (!files.some((f) => f.name === OPT_MODEL && f.bytes > 0)) return;
    try {
      await writeParts(path.join(folder, OPT_HEADER), encodeEntry(key.json, { info, payload: new Uint8Array(0) }, { files }));
      try {
        await fs.promises.rename(folder, this.file(key.name));
      } catch (e) {
        // another process put the same entry in place first (a folder is not replaced): theirs stays
        if (fs.existsSync(this.file(key.name))) return;
        throw e;
      }
      stats.writes++;
    } catch (e) {
      warnOnce(this.dir, e as Error);
    }
  }

  /** Remove a damaged entry (file or folder): renamed out of the way first, so a rebuild can take its place. */
  private async discard(name: string): Promise<void> {
    const trash = this.tempPath(name);
    try {
      await fs.promises.rename(this.file(name), trash);
    } catch {
      return; // gone already (another process discarded it)
    }
    await fs.promises.rm(trash, { recursive: true, force: true }).catch(() => undefined);
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
        if (now - st.mtimeMs > STALE_TEMP_MS) await fs.promises.rm(this.file(name), { recursive: true, force: true }).catch(() => undefined);
        continue;
      }
      entries.push({ name, size: st.isDirectory() ? await folderBytes(this.file(name)) : st.size, mtime: st.mtimeMs });
    }
    let total = entries.reduce((s, e) => s + e.size, 0);
    entries.sort((a, b) => a.mtime - b.mtime);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (keep.includes(e.name)) continue;
      try {
        await fs.promises.rm(this.file(e.name), { recursive: true, force: true });
        total -= e.size;
      } catch {
        // in use (Windows) or gone: leave it
      }
    }
  }
}

/** The least recently used entry goes first: a hit marks its entry used. */
function touch(file: string): void {
  const now = new Date();
  fs.promises.utimes(file, now, now).catch(() => undefined);
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
    const st = await fs.promises.stat(path.join(dir, name)).catch(() => undefined);
    if (st?.isFile()) total += st.size;
  }
  return total;
}

async function writeParts(file: string, parts: Uint8Array[]): Promise<void> {
  const fh = await fs.promises.open(file, 'wx');
  try {
    for (const part of parts) await fh.write(part);
  } finally {
    await fh.close();
  }
}

function isGradientModelInfo(v: unknown): v is GradientModelInfo {
  const info = v as GradientModelInfo | undefined;
  return !!info && typeof info.input === 'string' && typeof info.logits === 'string' && Array.isArray(info.layers) && Array.isArray(info.gradOutputs);
}

function isDigestMemo(v: unknown): v is DigestMemo {
  const m = v as Partial<DigestMemo> | undefined;
  return !!m && typeof m.digest === 'string' && /^[0-9a-f]{64}$/.test(m.digest) && typeof m.hashedAt === 'number';
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

function encodeEntry(keyJson: string, entry: Entry<object>, extra: { files?: FileRecord[] } = {}): Uint8Array[] {
  const header = Buffer.from(JSON.stringify({ format: CACHE_FORMAT, key: JSON.parse(keyJson), payloadBytes: entry.payload.length, info: entry.info, ...extra }), 'utf8');
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(header.length, MAGIC.length);
  prefix.writeUInt32LE(crc32(entry.payload, crc32(header)), MAGIC.length + 4);
  return [prefix, header, entry.payload];
}

/** The entry in `buf` when it is whole, is the one for `keyJson` and its info passes `valid`; undefined otherwise. */
export function decodeEntry<T = GradientModelInfo>(
  buf: Buffer, keyJson: string, valid: (info: unknown) => info is T = isGradientModelInfo as (info: unknown) => info is T,
): (Entry<T> & { header: { files?: FileRecord[] } }) | undefined {
  if (buf.length < PREFIX || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const headerBytes = buf.readUInt32LE(MAGIC.length);
  const crc = buf.readUInt32LE(MAGIC.length + 4);
  if (PREFIX + headerBytes > buf.length) return undefined;
  const header = buf.subarray(PREFIX, PREFIX + headerBytes);
  const payload = buf.subarray(PREFIX + headerBytes);
  if (crc32(payload, crc32(header)) !== crc) return undefined;
  let h: { format?: number; key?: unknown; payloadBytes?: number; info?: unknown; files?: FileRecord[] };
  try {
    h = JSON.parse(header.toString('utf8'));
  } catch {
    return undefined;
  }
  if (h.format !== CACHE_FORMAT || h.payloadBytes !== payload.length || canonicalJson(h.key) !== keyJson) return undefined;
  if (!valid(h.info)) return undefined;
  return { info: h.info, payload, header: { files: h.files } };
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

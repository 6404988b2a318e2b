/**
 * The on-disk cache of generated ONNX gradient models (lib/onnx/cache.ts): hits skip
 * buildGradientModel, misses build and store, damaged entries are rebuilt, concurrent writers
 * both succeed, a changed weight misses, --no-cache writes nothing, and cached results equal
 * uncached ones bit for bit. Every test uses its own temporary cache folder.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createOnnxExplainer } from '../lib/onnx';
import { CacheStats, canonicalJson, cacheStats, checkCacheOption, crc32, defaultCacheDir } from '../lib/onnx/cache';
import { loadModel, saveModel } from '../lib/onnx/proto';
import { parseExplainArgs, parseLayersArgs, UsageError } from '../lib/cli/args';
import { writeNpy } from '../lib/image';
import type { ExplainResult, Method } from '../lib/types';
import { repoRoot } from './helpers/reference-data';

const MODEL = path.join(repoRoot(), 'test/fixtures/onnx/resnet_o13/model.onnx');
const MAIN = path.resolve(__dirname, '../lib/cli/main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-cache-test-'));
let dirs = 0;
const freshDir = () => path.join(root, `c${dirs++}`);

/** The fixture's batch: [2,3,32,32] NCHW, fixed values. */
function batch() {
  const data = new Float32Array(2 * 3 * 32 * 32);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 1.5;
  return { data, shape: [2, 3, 32, 32] as [number, number, number, number], layout: 'nchw' as const };
}

/** Stats counted while fn runs. */
async function counted<T>(fn: () => Promise<T>): Promise<{ value: T; d: CacheStats }> {
  const before = cacheStats();
  const value = await fn();
  const after = cacheStats();
  const d = Object.fromEntries(Object.keys(after).map((k) => [k, after[k as keyof CacheStats] - before[k as keyof CacheStats]])) as unknown as CacheStats;
  return { value, d };
}

async function explainOnce(model: string | Uint8Array, cache: false | { dir: string; maxBytes?: number }, method: Method = 'gradcam', workers?: number): Promise<ExplainResult> {
  const ex = await createOnnxExplainer(model, { cache, executionProvider: 'cpu', workers });
  try {
    return await ex.explain(batch(), { method, targets: { topK: 2 } });
  } finally {
    ex.dispose();
  }
}

/** Every output array of a result, as bytes. */
function bytesOf(r: ExplainResult): Buffer {
  const parts: Buffer[] = [Buffer.from(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength)];
  for (const e of r.explanations) {
    for (const a of [e.map, e.inputGradient, e.guidedMap]) if (a) parts.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  }
  return Buffer.concat(parts);
}

const entries = (dir: string, suffix?: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((f) => !suffix || f.endsWith(suffix)).sort();

describe('ONNX model cache', function () {
  this.timeout(180000);
  let uncached: Record<string, Buffer>;

  before(async () => {
    uncached = {};
    for (const m of ['gradcam', 'guided-backprop', 'guided-gradcam'] as Method[]) uncached[m] = bytesOf(await explainOnce(MODEL, false, m));
  });

  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('misses, then hits without building the gradient model; results equal the uncached ones bit for bit', async () => {
    const dir = freshDir();
    for (const m of ['gradcam', 'guided-backprop', 'guided-gradcam'] as Method[]) {
      const miss = await counted(() => explainOnce(MODEL, { dir }, m));
      // the first explainer of the model also stores its digest and graph summary
      const first = m === 'gradcam';
      assert.deepEqual([miss.d.builds, miss.d.optimizedHits, miss.d.gradientHits, miss.d.writes, miss.d.digestHits, miss.d.summaryHits], [1, 0, 0, first ? 4 : 2, first ? 0 : 1, first ? 0 : 1], m);
      const hit = await counted(() => explainOnce(MODEL, { dir }, m));
      assert.deepEqual([hit.d.builds, hit.d.optimizedHits, hit.d.gradientHits, hit.d.writes, hit.d.corrupt, hit.d.digestHits, hit.d.summaryHits], [0, 1, 0, 0, 0, 1, 1], m);
      assert.ok(bytesOf(miss.value).equals(uncached[m]), `${m}: cold cached run differs from uncached`);
      assert.ok(bytesOf(hit.value).equals(uncached[m]), `${m}: warm cached run differs from uncached`);
    }
    assert.equal(entries(dir, '.gradient').length, 3);
    assert.equal(entries(dir, '.optimized').length, 3);
    assert.equal(entries(dir, '.digest').length, 1);
    assert.equal(entries(dir, '.summary').length, 1);
    assert.equal(entries(dir, '.tmp').length, 0);
    // an .optimized entry is a folder: ORT's graph, its weights as external data, the checked header
    for (const o of entries(dir, '.optimized')) assert.deepEqual(fs.readdirSync(path.join(dir, o)).sort(), ['entry.json', 'model.onnx', 'weights.bin']);
  });

  it('a warm start neither reads nor decodes the model file', async () => {
    const dir = freshDir();
    await explainOnce(MODEL, { dir });
    // the digest is trusted only for a file changed 2 s before its hashing: a copy made now is hashed
    // each time until then, so the fixture (old) is used as is
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const proto = require('../lib/onnx/proto') as { loadModel: typeof loadModel };
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const cacheMod = require('../lib/onnx/cache') as { readModelFile: (f: string) => Buffer };
    const original = [proto.loadModel, cacheMod.readModelFile] as const;
    let decoded = 0;
    let read = 0;
    proto.loadModel = ((m: Parameters<typeof loadModel>[0]) => { decoded++; return original[0](m); }) as typeof loadModel;
    cacheMod.readModelFile = (f: string) => { read++; return original[1](f); };
    try {
      const r = await counted(() => explainOnce(MODEL, { dir }));
      assert.deepEqual([r.d.digestHits, r.d.summaryHits, r.d.optimizedHits, r.d.builds], [1, 1, 1, 0]);
      assert.deepEqual([read, decoded], [0, 0], 'model file read / decoded');
      assert.ok(bytesOf(r.value).equals(uncached.gradcam));
      // a layer given by a module path needs the node names: the model is decoded then, once
      const ex = await createOnnxExplainer(MODEL, { cache: { dir }, executionProvider: 'cpu' });
      try {
        const layers = ex.layers();
        assert.ok(layers.length > 0);
        assert.deepEqual([read, decoded], [1, 1]);
      } finally {
        ex.dispose();
      }
    } finally {
      [proto.loadModel, cacheMod.readModelFile] = original;
    }
  });

  it('hashes a model file again when its identity changed; a copy is its own file', async () => {
    const dir = freshDir();
    const copy = path.join(root, `copy-${dirs}.onnx`);
    fs.copyFileSync(MODEL, copy);
    const old = new Date(Date.now() - 60e3);
    fs.utimesSync(copy, old, old);
    await explainOnce(copy, { dir });
    const again = await counted(() => explainOnce(copy, { dir }));
    // utimes set the mtime back but the ctime is now: within 2 s of the hashing, so hashed again
    assert.equal(again.d.digestHits, 0);
    // the same bytes under the same key: the model entries hit
    assert.deepEqual([again.d.builds, again.d.optimizedHits], [0, 1]);
    // a changed weight with the old size and mtime: ctime and the racy rule catch it
    const bytes = fs.readFileSync(copy);
    const proto = loadModel(bytes);
    const w = (proto.graph?.initializer ?? []).find((t) => t.dataType === 1 && t.rawData && (t.rawData as Uint8Array).length > 16);
    assert.ok(w);
    const raw = Buffer.from(w.rawData as Uint8Array);
    raw.writeFloatLE(raw.readFloatLE(0) + 0.25, 0);
    w.rawData = raw;
    const changed = Buffer.from(saveModel(proto));
    assert.equal(changed.length, bytes.length);
    fs.writeFileSync(copy, changed);
    fs.utimesSync(copy, old, old);
    const r = await counted(() => explainOnce(copy, { dir }));
    assert.deepEqual([r.d.digestHits, r.d.builds], [0, 1]);
    assert.ok(bytesOf(r.value).equals(bytesOf(await explainOnce(changed, false))));
  });

  for (const workers of [1, 0]) {
    it(`a changed byte in the cached weights is caught by their CRC-32 before use (workers: ${workers})`, async () => {
      const dir = freshDir();
      await explainOnce(MODEL, { dir }, 'gradcam', workers);
      const [opt] = entries(dir, '.optimized');
      const weights = path.join(dir, opt, 'weights.bin');
      const b = fs.readFileSync(weights);
      b[Math.floor(b.length / 2)] ^= 0x40;
      fs.writeFileSync(weights, b);
      const r = await counted(() => explainOnce(MODEL, { dir }, 'gradcam', workers));
      assert.deepEqual([r.d.corrupt, r.d.optimizedHits, r.d.gradientHits, r.d.builds, r.d.writes], [1, 0, 1, 0, 1]);
      assert.ok(bytesOf(r.value).equals(uncached.gradcam));
      const again = await counted(() => explainOnce(MODEL, { dir }, 'gradcam', workers));
      assert.deepEqual([again.d.corrupt, again.d.optimizedHits], [0, 1]);
      assert.ok(bytesOf(again.value).equals(uncached.gradcam));
    });
  }

  it('serves the gradient entry when the optimized one is missing, in this thread too', async () => {
    const dir = freshDir();
    await explainOnce(MODEL, { dir }, 'gradcam', 0);
    for (const f of entries(dir, '.optimized')) fs.rmSync(path.join(dir, f), { recursive: true });
    const r = await counted(() => explainOnce(MODEL, { dir }, 'gradcam', 0));
    assert.deepEqual([r.d.builds, r.d.gradientHits, r.d.optimizedHits, r.d.writes], [0, 1, 0, 1]);
    assert.ok(bytesOf(r.value).equals(uncached.gradcam));
    assert.equal(entries(dir, '.optimized').length, 1);
    const again = await counted(() => explainOnce(MODEL, { dir }, 'gradcam', 0));
    assert.deepEqual([again.d.builds, again.d.optimizedHits], [0, 1]);
    assert.ok(bytesOf(again.value).equals(uncached.gradcam));
  });

  const damages: Array<[string, (b: Buffer) => Buffer]> = [
    ['truncated', (b) => b.subarray(0, Math.floor(b.length / 2))],
    // (small entries have no payload: there the byte flipped is the header's last but one)
    ['a flipped payload byte', (b) => { const c = Buffer.from(b); c[c.length > 2000 ? c.length - 1000 : c.length - 2] ^= 0x10; return c; }],
    ['a flipped header byte', (b) => { const c = Buffer.from(b); c[40] ^= 0x01; return c; }],
    ['garbage', () => Buffer.from('not a cache entry')],
    ['empty', () => Buffer.alloc(0)],
  ];
  for (const [what, damage] of damages) {
    it(`detects an entry ${what} and rebuilds it`, async () => {
      const dir = freshDir();
      await explainOnce(MODEL, { dir });
      // every file: the .gradient, .digest and .summary entries and each file of the .optimized folder
      const files = entries(dir).flatMap((f) => (fs.statSync(path.join(dir, f)).isDirectory() ? fs.readdirSync(path.join(dir, f)).map((g) => path.join(f, g)) : [f]));
      assert.equal(files.length, 6);
      for (const f of files) fs.writeFileSync(path.join(dir, f), damage(fs.readFileSync(path.join(dir, f))));
      const r = await counted(() => explainOnce(MODEL, { dir }));
      assert.deepEqual([r.d.corrupt, r.d.builds, r.d.optimizedHits, r.d.gradientHits, r.d.digestHits, r.d.summaryHits, r.d.writes], [4, 1, 0, 0, 0, 0, 4]);
      assert.ok(bytesOf(r.value).equals(uncached.gradcam));
      const again = await counted(() => explainOnce(MODEL, { dir }));
      assert.deepEqual([again.d.corrupt, again.d.builds, again.d.optimizedHits, again.d.digestHits, again.d.summaryHits], [0, 0, 1, 1, 1]);
    });
    it(`detects an .optimized folder's file ${what} alone and rebuilds the folder`, async () => {
      const dir = freshDir();
      await explainOnce(MODEL, { dir });
      const [opt] = entries(dir, '.optimized');
      for (const name of ['entry.json', 'model.onnx', 'weights.bin']) {
        const f = path.join(dir, opt, name);
        fs.writeFileSync(f, damage(fs.readFileSync(f)));
        const r = await counted(() => explainOnce(MODEL, { dir }));
        assert.deepEqual([r.d.corrupt, r.d.builds, r.d.optimizedHits, r.d.gradientHits, r.d.writes], [1, 0, 0, 1, 1], name);
        assert.ok(bytesOf(r.value).equals(uncached.gradcam), name);
      }
    });
  }

  it('two processes writing the same entry at once both succeed and leave a valid entry', async () => {
    const dir = freshDir();
    const lib = path.resolve(__dirname, '../lib/onnx');
    const script = `
      const { createOnnxExplainer, cacheStats } = require(${JSON.stringify(lib)});
      (async () => {
        const ex = await createOnnxExplainer(${JSON.stringify(MODEL)}, { cache: { dir: ${JSON.stringify(dir)} }, executionProvider: 'cpu' });
        const data = new Float32Array(2 * 3 * 32 * 32); for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 1.5;
        const r = await ex.explain({ data, shape: [2, 3, 32, 32], layout: 'nchw' }, { targets: { topK: 2 } });
        const h = require('crypto').createHash('sha256');
        h.update(r.logits); for (const e of r.explanations) h.update(e.map);
        console.log(JSON.stringify({ digest: h.digest('hex'), stats: cacheStats() }));
        ex.dispose();
      })().catch((e) => { console.error(e); process.exit(3); });`;
    const child = () => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, ['-e', script], { env: { ...process.env, GRADCAM_QUIET: '1' } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out, err }));
    });
    const [a, b] = await Promise.all([child(), child()]);
    assert.equal(a.code, 0, a.err);
    assert.equal(b.code, 0, b.err);
    const ra = JSON.parse(a.out);
    const rb = JSON.parse(b.out);
    assert.equal(ra.digest, rb.digest);
    assert.equal(entries(dir, '.tmp').length, 0, 'temp files left behind');
    assert.equal(entries(dir, '.gradient').length, 1);
    assert.equal(entries(dir, '.optimized').length, 1);
    const third = JSON.parse((await child()).out);
    assert.equal(third.digest, ra.digest);
    assert.deepEqual([third.stats.builds, third.stats.optimizedHits, third.stats.corrupt], [0, 1, 0]);
  });

  it('a changed weight misses; other backward options get their own entry', async () => {
    const dir = freshDir();
    await explainOnce(MODEL, { dir });
    const proto = loadModel(Buffer.from(fs.readFileSync(MODEL)));
    const w = (proto.graph?.initializer ?? []).filter((t) => t.dataType === 1 && t.rawData).sort((x, y) => (y.rawData as Uint8Array).length - (x.rawData as Uint8Array).length)[0];
    assert.ok(w, 'an initializer with raw data');
    const raw = Buffer.from(w.rawData as Uint8Array);
    raw.writeFloatLE(raw.readFloatLE(0) + 0.5, 0);
    w.rawData = raw;
    const changed = saveModel(proto);
    const r = await counted(() => explainOnce(changed, { dir }));
    assert.deepEqual([r.d.builds, r.d.optimizedHits, r.d.gradientHits], [1, 0, 0]);
    assert.ok(bytesOf(r.value).equals(bytesOf(await explainOnce(changed, false))), 'the changed model, cached, equals itself uncached');
    const ex = await createOnnxExplainer(MODEL, { cache: { dir }, executionProvider: 'cpu' });
    const relu6 = await counted(() => ex.explain(batch(), { method: 'guided-gradcam', guidedRelu6: true }));
    ex.dispose();
    assert.equal(relu6.d.builds, 1);
    assert.equal(entries(dir, '.gradient').length, 3);
  });

  it('cache: false writes nothing, also with GRADCAM_CACHE_DIR set', async () => {
    const dir = freshDir();
    const saved = process.env.GRADCAM_CACHE_DIR;
    process.env.GRADCAM_CACHE_DIR = dir;
    try {
      const r = await counted(() => explainOnce(MODEL, false));
      assert.equal(r.d.builds, 1);
      assert.equal(fs.existsSync(dir), false);
      // and the default (cache on) goes to GRADCAM_CACHE_DIR
      const ex = await createOnnxExplainer(MODEL, { executionProvider: 'cpu' });
      await ex.explain(batch());
      ex.dispose();
      assert.equal(entries(dir, '.gradient').length, 1);
    } finally {
      if (saved === undefined) delete process.env.GRADCAM_CACHE_DIR;
      else process.env.GRADCAM_CACHE_DIR = saved;
    }
  });

  it('listing layers builds no session and stores no model (only the digest and the graph summary)', async () => {
    const dir = freshDir();
    const r = await counted(async () => {
      const ex = await createOnnxExplainer(MODEL, { cache: { dir } });
      const layers = ex.layers();
      ex.dispose();
      return layers;
    });
    assert.ok(r.value.length > 0);
    assert.equal(r.d.builds, 0);
    assert.deepEqual(entries(dir).map((f) => path.extname(f)).sort(), ['.digest', '.summary']);
  });

  it('keeps the folder under maxBytes, least recently used entries first', async () => {
    const dir = freshDir();
    const models = () => entries(dir).filter((f) => /\.(gradient|optimized)$/.test(f));
    await explainOnce(MODEL, { dir, maxBytes: 1 }, 'gradcam');
    assert.equal(models().length, 2, 'the entries just written stay');
    await explainOnce(MODEL, { dir, maxBytes: 1 }, 'guided-backprop');
    const left = models();
    assert.equal(left.length, 2, left.join(', '));
    // a generous bound keeps everything
    await explainOnce(MODEL, { dir }, 'gradcam');
    assert.equal(models().length, 4);
  });

  it('gradcam explain --no-cache writes nothing; --cache-dir writes there', () => {
    const dir = freshDir();
    const other = freshDir();
    const npy = path.join(root, 'input.npy');
    const b = batch();
    writeNpy(npy, b.data, b.shape);
    const env = { ...process.env, GRADCAM_QUIET: '1', GRADCAM_CACHE_DIR: dir };
    const cli = (args: string[]) => spawnSync(process.execPath, [MAIN, 'explain', '-m', MODEL, '-i', npy, '-b', '2', '--device', 'js', '--no-images', '-q', '-o', path.join(root, 'out'), ...args], { encoding: 'utf8', env, timeout: 120000 });
    let r = cli(['--no-cache']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.existsSync(dir), false);
    r = cli(['--cache-dir', other]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.existsSync(dir), false);
    assert.equal(entries(other, '.gradient').length, 1);
    r = cli([]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(entries(dir, '.gradient').length, 1);
    r = spawnSync(process.execPath, [MAIN, 'layers', '-m', MODEL, '--cache-dir', freshDir()], { encoding: 'utf8', env, timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
  });

  it('prepare() builds the session explain() then uses; it checks its arguments', async () => {
    const ex = await createOnnxExplainer(MODEL, { cache: false, executionProvider: 'cpu' });
    try {
      const prepared = await counted(() => (ex.prepare as NonNullable<typeof ex.prepare>)({ method: 'guided-gradcam' }, [32, 32]));
      assert.equal(prepared.d.builds, 1);
      const r = await counted(() => ex.explain(batch(), { method: 'guided-gradcam', targets: { topK: 2 } }));
      assert.equal(r.d.builds, 0, 'explain() built a session prepare() had built');
      assert.ok(bytesOf(r.value).equals(uncached['guided-gradcam']));
      await assert.rejects((ex.prepare as NonNullable<typeof ex.prepare>)({ method: 'gradcm' as Method }), /for method but received 'gradcm'.*did you mean 'gradcam'/);
      await assert.rejects((ex.prepare as NonNullable<typeof ex.prepare>)({}, [32, 0]), (e: Error & { code?: string }) => e.code === 'EARGTYPE' && /inputSize/.test(e.message));
    } finally {
      ex.dispose();
    }
  });

  it('the worker thread starts when the explainer is made, and the first session takes it', async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { prestartedWorkers } = require('../lib/onnx/runtime') as { prestartedWorkers: () => number };
    const ex = await createOnnxExplainer(MODEL, { cache: { dir: freshDir() }, executionProvider: 'cpu' });
    try {
      assert.equal(prestartedWorkers(), 1);
      const r = await ex.explain(batch(), { method: 'gradcam', targets: { topK: 2 } });
      assert.equal(prestartedWorkers(), 0, 'the session did not take the started thread');
      assert.ok(bytesOf(r).equals(uncached.gradcam));
    } finally {
      ex.dispose();
    }
    // in-thread sessions start none
    const inThread = await createOnnxExplainer(MODEL, { cache: false, workers: 0 });
    inThread.dispose();
    assert.equal(prestartedWorkers(), 0);
  });

  it('parses the cache flags and options', () => {
    const base = ['-m', 'm.onnx', '-i', 'x.png'];
    assert.deepEqual([parseExplainArgs(base).cache, parseExplainArgs(base).cacheDir], [true, undefined]);
    assert.equal(parseExplainArgs([...base, '--no-cache']).cache, false);
    assert.equal(parseExplainArgs([...base, '--cache-dir', '/tmp/c']).cacheDir, '/tmp/c');
    assert.throws(() => parseExplainArgs([...base, '--no-cache', '--cache-dir', '/tmp/c']), (e: Error) => e instanceof UsageError && e.message === '--no-cache and --cache-dir cannot be used together');
    assert.throws(() => parseExplainArgs([...base, '--cache-dir', ' ']), /--cache-dir must not be empty/);
    assert.equal(parseLayersArgs(['m.onnx', '--no-cache']).cache, false);
    assert.deepEqual(checkCacheOption('cache', undefined), {});
    assert.equal(checkCacheOption('cache', false), false);
    assert.throws(() => checkCacheOption('cache', 'yes'), { name: 'TypeError', message: "Expected false, true or { dir?, maxBytes? } for cache but received 'yes' of type string" });
    assert.throws(() => checkCacheOption('cache', { maxBytes: 0 }), { name: 'RangeError', message: 'Expected positive integer for cache.maxBytes but received 0 of type number' });
  });

  it('crc32 equals zlib\'s (the table used where node lacks zlib.crc32)', () => {
    const zlib = require('zlib') as { crc32?: (d: Uint8Array, v?: number) => number };
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 0xff));
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    if (zlib.crc32) {
      const saved = zlib.crc32;
      const expected = [saved(data), saved(data, 12345)];
      try {
        zlib.crc32 = undefined;
        assert.deepEqual([crc32(data), crc32(data, 12345), crc32(Buffer.from('123456789'))], [...expected, 0xcbf43926]);
      } finally {
        zlib.crc32 = saved;
      }
    }
  });

  it('keys: canonical JSON sorts keys at every level; the default folder per platform', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}');
    assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
    assert.equal(defaultCacheDir({ GRADCAM_CACHE_DIR: '/x/y' }, 'linux', '/home/u'), path.resolve('/x/y'));
    assert.equal(defaultCacheDir({}, 'linux', '/home/u'), path.join('/home/u', '.cache', 'gradcam-node'));
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }, 'linux', '/home/u'), path.join('/xdg', 'gradcam-node'));
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: 'relative' }, 'linux', '/home/u'), path.join('/home/u', '.cache', 'gradcam-node'));
    assert.equal(defaultCacheDir({}, 'darwin', '/Users/u'), path.join('/Users/u', 'Library', 'Caches', 'gradcam-node'));
    assert.equal(defaultCacheDir({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32', 'C:\\Users\\u'), path.join('C:\\Users\\u\\AppData\\Local', 'gradcam-node', 'Cache'));
  });
});

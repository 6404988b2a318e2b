/**
 * The npm package as a user gets it: `npm pack`, then an install of the tarball into an empty
 * project OFFLINE (ONNX case: gradcam-node + onnxruntime-node, ONNXRUNTIME_NODE_INSTALL=skip),
 * from npm's cache as `npm ci` filled it; then the README's API sample, `npx gradcam explain`,
 * the ESM entries and a `"module": "nodenext"` type check, all inside that project.
 *
 * npm 11 asks the registry for full packuments to resolve version ranges, and `npm ci` caches
 * only tarballs, so the project gets a package-lock.json built from the repository's own lock
 * (the closure of gradcam-node's dependencies, resolved the way Node resolves them in the
 * repository's tree): the install then needs tarballs only. Skips, saying why, where npm's cache
 * lacks a tarball (ENOTCACHED).
 */
import * as assert from 'node:assert/strict';
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from './helpers/reference-data';
import { skipBecause } from './helpers/skip';

const ROOT = repoRoot();
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
/** the ONNX model of the samples: 2x3x32x32 NCHW, 10 classes (scripts/onnx-fixtures.py) */
const MODEL = path.join(ROOT, 'test', 'fixtures', 'onnx', 'resnet_o13', 'model.onnx');
const PICTURES = ['chelsea.png', 'coffee.png'].map((f) => path.join(ROOT, 'assets', 'images', f));

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * package.json + package-lock.json of a consumer project depending on the tarball and `engines`,
 * with the repository lock's entries for everything they need.
 */
export function consumerProject(dir: string, tarball: string, engines: string[]): void {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const me = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown> & {
    version: string;
    dependencies: Record<string, string>;
  };
  const pkgs = lock.packages;
  const resolveFrom = (from: string, name: string): string | undefined => {
    for (let dir = from; ; ) {
      const p = `${dir ? dir + '/' : ''}node_modules/${name}`;
      if (pkgs[p]) return p;
      if (!dir) return undefined;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const keep = new Set<string>();
  const visit = (p: string): void => {
    if (keep.has(p)) return;
    keep.add(p);
    const e = pkgs[p];
    for (const d of Object.keys({ ...e.dependencies, ...e.optionalDependencies })) {
      const r = resolveFrom(p, d);
      if (r) visit(r);
      else if (!e.optionalDependencies?.[d]) throw new Error(`${d} (needed by ${p}) is not in package-lock.json`);
    }
  };
  for (const d of [...Object.keys(me.dependencies), ...engines]) visit(resolveFrom('', d) as string);
  const file = `file:${tarball}`;
  const dependencies = Object.fromEntries([['gradcam-node', file], ...engines.map((e) => [e, pkgs[`node_modules/${e}`].version as string])]);
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies },
    'node_modules/gradcam-node': {
      version: me.version, resolved: file, hasInstallScript: true, license: me.license, dependencies: me.dependencies,
      bin: me.bin, engines: me.engines, peerDependencies: me.peerDependencies, peerDependenciesMeta: me.peerDependenciesMeta,
    },
  };
  for (const p of [...keep].sort()) {
    const { dev, devOptional, peer, ...entry } = pkgs[p];
    void dev, devOptional, peer;
    packages[p] = entry;
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, dependencies }, null, 2));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('package: the npm tarball installs offline with the prebuilt addon and works', function () {
  this.timeout(300_000);
  let tmp = '';
  let project = '';
  let packed: { filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> };
  let install: SpawnSyncReturns<string>;
  let installSeconds = 0;

  before(function () {
    if (process.env.GRADCAM_SKIP_PACKAGE_TEST === '1') {
      skipBecause(this, 'GRADCAM_SKIP_PACKAGE_TEST=1');
    }
    if (run(NPM, ['--version'], ROOT).status !== 0) {
      skipBecause(this, 'npm is not on PATH');
    }
    assert.ok(fs.existsSync(path.join(ROOT, 'dist', 'lib', 'index.mjs')), 'dist/lib/index.mjs missing: run `npm run build:ts`');
    // the prebuilt, as prepack places it; --reuse takes build/Release when it is up to date
    const pre = run(process.execPath, [path.join(ROOT, 'scripts', 'prebuild.js'), '--reuse'], ROOT);
    console.log(`      ${ok(pre, 'scripts/prebuild.js --reuse').trim()}`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-package-'));
    // prepack's two steps (tsc, prebuild) are done above: pack without running them again
    const pack = ok(run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT), 'npm pack');
    packed = (JSON.parse(pack) as (typeof packed)[])[0];
    console.log(`      tarball ${packed.filename}: ${(packed.size / 1e6).toFixed(2)} MB, ${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${packed.files.length} files`);
    project = path.join(tmp, 'consumer');
    fs.mkdirSync(project);
    consumerProject(project, path.join(tmp, packed.filename), ['onnxruntime-node']);
    const t0 = Date.now();
    install = run(NPM, ['install', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], project, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    installSeconds = (Date.now() - t0) / 1000;
    if (install.status !== 0 && /ENOTCACHED/.test(install.stdout + install.stderr)) {
      const what = (install.stdout + install.stderr).split('\n').find((l) => /request to/.test(l)) ?? 'ENOTCACHED';
      skipBecause(this, `npm's cache lacks a tarball (run \`npm ci\` first): ${what.replace(/^npm error /, '')}`);
    }
    ok(install, 'npm install of the tarball');
    console.log(`      npm install --offline of the tarball + onnxruntime-node: ${installSeconds.toFixed(1)} s (load average ${os.loadavg()[0].toFixed(1)})`);
  });

  after(function () {
    if (tmp && process.env.GRADCAM_KEEP_PACKAGE_TEST !== '1') fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('packs dist/lib with its maps and lib/ sources, ESM wrappers, the prebuilt addon, sources to compile and LICENSE; no tests or native/test', function () {
    const files = packed.files.map((f) => f.path);
    for (const f of [
      'package.json', 'LICENSE', 'README.md', 'CMakeLists.txt', 'scripts/install.js', 'scripts/native-common.js',
      'dist/lib/index.js', 'dist/lib/index.mjs', 'dist/lib/index.d.ts', 'dist/lib/index.d.mts',
      'dist/lib/tfjs/index.mjs', 'dist/lib/onnx/index.mjs', 'dist/lib/cli/main.js', 'native/addon.cc', 'assets/images/chelsea.png',
    ]) assert.ok(files.includes(f), `${f} missing from the tarball`);
    if (process.platform === 'linux' && process.arch === 'x64') assert.ok(files.includes('prebuilds/linux-x64/gradcam_native.node'));
    const bad = files.filter((f) => /^dist\/(test|bench)\/|^native\/test\/|^test\/|^bench\/|^build\//.test(f));
    assert.deepEqual(bad, []);
    // every source map ships with the TypeScript it points to (no dangling maps)
    const maps = files.filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 0);
    for (const m of maps) {
      const { sources } = JSON.parse(fs.readFileSync(path.join(ROOT, m), 'utf8')) as { sources: string[] };
      for (const src of sources) {
        const rel = path.posix.normalize(path.posix.join(path.posix.dirname(m), src));
        assert.ok(files.includes(rel), `${m} points to ${rel}, which is not in the tarball`);
      }
    }
  });

  it('installs with the prebuilt addon: the install line says so and no compiler ran (no build/ folder)', function () {
    const line = install.stdout.split('\n').find((l) => l.startsWith('gradcam-node: '));
    console.log(`      ${line}`);
    assert.match(line ?? '', /^gradcam-node: using the prebuilt native addon \(prebuilds\/[a-z0-9-]+\): .*CUDA.*; \d+ CPU threads$/);
    const pkg = path.join(project, 'node_modules', 'gradcam-node');
    assert.ok(!fs.existsSync(path.join(pkg, 'build')), 'a build/ folder appeared: cmake-js ran');
    // the engine that was not asked for is not there
    assert.ok(!fs.existsSync(path.join(project, 'node_modules', '@tensorflow', 'tfjs')));
  });

  it("runs the README's API sample on an ONNX model, with the native kernels", function () {
    fs.writeFileSync(path.join(project, 'sample.js'), `
const { createExplainer, preprocessImages, renderOverlay, renderGuided } = require('gradcam-node');
(async () => {
  const explainer = await createExplainer(${JSON.stringify(MODEL)});
  const layers = explainer.layers();
  const { batch, images } = await preprocessImages(${JSON.stringify(PICTURES)}, {
    width: 32, height: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: explainer.layout,
  });
  const result = await explainer.explain(batch, { method: 'guided-gradcam', targets: { topK: 3 } });
  const pngs = [];
  for (const e of result.explanations) {
    const overlay = await renderOverlay(images[e.image].rgb, e.map, 32, 32, { colormap: 'jet', imageWeight: 0.5 });
    const guided = await renderGuided(e.guidedMap, 3, 32, 32, result.layout);
    pngs.push(overlay.data.subarray(1, 4).toString(), guided.data.subarray(1, 4).toString());
  }
  console.log(JSON.stringify({ layers: layers.length, n: result.explanations.length, engine: result.engine, device: result.device, pngs }));
  explainer.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
`);
    const out = JSON.parse(ok(run(process.execPath, ['sample.js'], project), 'the API sample').trim().split('\n').pop() as string);
    assert.ok(out.layers > 0);
    assert.equal(out.n, 6); // 2 images x top 3
    assert.equal(out.engine, 'onnxruntime-cpu');
    assert.notEqual(out.device, 'js', 'the prebuilt addon did not load at run time');
    assert.ok(out.pngs.every((s: string) => s === 'PNG'));
  });

  it('npx gradcam explain writes the pictures and one JSON document', function () {
    const r = run(NPX, ['--offline', 'gradcam', 'explain', '--model', MODEL, '--input', ...PICTURES, '--size', '32x32', '--out', 'out', '--json'], project);
    const report = JSON.parse(ok(r, 'npx gradcam explain')) as { images: Array<{ explained: Array<{ files: { overlay: string } }> }> };
    assert.equal(report.images.length, 2);
    for (const img of report.images) assert.ok(fs.existsSync(path.resolve(project, img.explained[0].files.overlay)));
  });

  it('imports the three entries from ESM; the tfjs entry without @tensorflow/tfjs is ENOENGINE naming the package', function () {
    fs.writeFileSync(path.join(project, 'model.json'), '{}');
    fs.writeFileSync(path.join(project, 'esm.mjs'), `
import { createExplainer, GradcamError, kernelInfo } from 'gradcam-node';
import { createOnnxExplainer } from 'gradcam-node/onnx';
const fail = async (f) => { try { await f(); return 'no error'; } catch (e) { return { name: e.name, code: e.code, message: e.message, ours: e instanceof GradcamError }; } };
console.log(JSON.stringify({
  root: typeof createExplainer, onnx: typeof createOnnxExplainer, kernelInfo: typeof kernelInfo,
  tfjs: await fail(() => import('gradcam-node/tfjs')),
  legacy: await fail(() => import('gradcam-node/dist/lib/tfjs')),
  modelJson: await fail(() => createExplainer('model.json')),
}));
`);
    const out = JSON.parse(ok(run(process.execPath, ['esm.mjs'], project), 'esm.mjs'));
    assert.equal(out.root, 'function');
    assert.equal(out.onnx, 'function');
    assert.equal(out.kernelInfo, 'function');
    const expected = 'TensorFlow.js models need the package @tensorflow/tfjs, which is not installed (an optional peer dependency of gradcam-node): ' +
      'run `npm install @tensorflow/tfjs @tensorflow/tfjs-backend-wasm`';
    for (const k of ['tfjs', 'legacy', 'modelJson']) {
      assert.equal(out[k].code, 'ENOENGINE', `${k}: ${JSON.stringify(out[k])}`);
      assert.equal(out[k].message, expected);
    }
    assert.equal(out.modelJson.ours, true);
  });

  it('type-checks a "module": "nodenext" project importing the three entries (ESM and CommonJS files)', function () {
    const dir = path.join(project, 'ts');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: [] },
      files: ['esm.mts', 'cjs.cts', 'wrong.mts'],
    }));
    fs.writeFileSync(path.join(dir, 'esm.mts'), `
import { createExplainer, preprocessImages, type Explainer, type ExplainResult } from 'gradcam-node';
import { createOnnxExplainer, type OnnxExplainerOptions } from 'gradcam-node/onnx';
import { createTfjsExplainer, type TfjsModelExplainer } from 'gradcam-node/tfjs';
export async function f(path: string): Promise<ExplainResult> {
  const e: Explainer = await createExplainer(path, { workers: 0 } satisfies OnnxExplainerOptions);
  const { batch } = await preprocessImages([path], { width: 32, height: 32, layout: e.layout });
  return e.explain(batch, { method: 'gradcam' });
}
export const g: Array<(...a: never[]) => unknown> = [createOnnxExplainer, createTfjsExplainer];
export type T = TfjsModelExplainer;
`);
    fs.writeFileSync(path.join(dir, 'cjs.cts'), `
import gradcam = require('gradcam-node');
import onnx = require('gradcam-node/onnx');
import tfjs = require('gradcam-node/tfjs');
export const h: Array<(...a: never[]) => unknown> = [gradcam.createExplainer, onnx.createOnnxExplainer, tfjs.createTfjsExplainer];
`);
    // a wrong name must be the one error (so the check is not vacuous), in one tsc run
    fs.writeFileSync(path.join(dir, 'wrong.mts'), "import { noSuchExport } from 'gradcam-node/onnx';\nexport const x = noSuchExport;\n");
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = run(process.execPath, [tsc, '-p', dir], dir);
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    assert.equal(errors.length, 1, r.stdout);
    assert.match(errors[0], /^wrong\.mts\(1,10\): error TS2305: Module '"gradcam-node\/onnx"' has no exported member 'noSuchExport'/);
  });
});

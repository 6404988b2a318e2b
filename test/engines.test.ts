/**
 * The engines are optional peers: a missing one is GradcamError ENOENGINE naming the package to
 * install, through every door (createExplainer, the gradcam-node/onnx and /tfjs entries, the CLI),
 * never MODULE_NOT_FOUND. "Missing" is simulated in a child process by a resolver hook that
 * hides the package (the repository has them all as devDependencies).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ENGINE_PACKAGES, missingEngine } from '../lib/engines';
import { GradcamError } from '../lib/errors';
import { repoRoot } from './helpers/reference-data';

const ROOT = repoRoot();
const LIB = path.join(ROOT, 'dist', 'lib');

/** Runs `code` (CommonJS) with the packages `hide` unresolvable; returns its stdout, stderr and status. */
function withHidden(hide: string[], code: string, args: string[] = []): { stdout: string; stderr: string; status: number | null } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-engines-'));
  try {
    const hook = path.join(dir, 'hide.js');
    fs.writeFileSync(hook, `
const Module = require('module');
const hidden = ${JSON.stringify(hide)};
const original = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (hidden.some((h) => request === h || request.startsWith(h + '/'))) {
    const e = new Error("Cannot find module '" + request + "'");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return original.call(this, request, ...rest);
};`);
    const script = path.join(dir, 'main.js');
    fs.writeFileSync(script, code);
    const r = spawnSync(process.execPath, ['--require', hook, script, ...args], {
      cwd: dir, encoding: 'utf8', env: { ...process.env, GRADCAM_QUIET: '1' },
    });
    return { stdout: r.stdout, stderr: r.stderr, status: r.status };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ORT_MESSAGE = 'ONNX models need the package onnxruntime-node, which is not installed (an optional peer dependency of gradcam-node): ' +
  'run `npm install onnxruntime-node` (ONNXRUNTIME_NODE_INSTALL=skip skips its postinstall download of the CUDA provider where there is no network)';
const TFJS_MESSAGE = 'TensorFlow.js models need the package @tensorflow/tfjs, which is not installed (an optional peer dependency of gradcam-node): ' +
  'run `npm install @tensorflow/tfjs @tensorflow/tfjs-backend-wasm`';

describe('engines: optional peers, ENOENGINE when missing', function () {
  this.timeout(60000);

  it('the messages name the package and the command', function () {
    const e = missingEngine('onnxruntime-node');
    assert.ok(e instanceof GradcamError);
    assert.equal(e.code, 'ENOENGINE');
    assert.equal(e.message, ORT_MESSAGE);
    assert.equal(missingEngine('@tensorflow/tfjs').message, TFJS_MESSAGE);
  });

  it('the table agrees with package.json: optional peers, and devDependencies for the tests', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    for (const [name, e] of Object.entries(ENGINE_PACKAGES)) {
      assert.equal(pkg.peerDependencies[name], e.range, name);
      assert.deepEqual(pkg.peerDependenciesMeta[name], { optional: true }, name);
      assert.equal(pkg.dependencies[name], undefined, `${name} must not be a dependency`);
      if (name !== '@tensorflow/tfjs-node') assert.ok(pkg.devDependencies[name], `${name} is a devDependency`);
    }
  });

  it('without onnxruntime-node: createExplainer(.onnx), require(gradcam-node/onnx) and the CLI say what to install', function () {
    const model = path.join(ROOT, 'test', 'fixtures', 'onnx', 'resnet_o13', 'model.onnx');
    const r = withHidden(['onnxruntime-node'], `
const show = (e) => ({ code: e.code, message: e.message, name: e.name });
(async () => {
  const out = {};
  try { await require(${JSON.stringify(LIB)}).createExplainer(${JSON.stringify(model)}); out.api = 'no error'; } catch (e) { out.api = show(e); }
  try { require(${JSON.stringify(path.join(LIB, 'onnx'))}); out.entry = 'no error'; } catch (e) { out.entry = show(e); }
  console.log(JSON.stringify(out));
})();`);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    for (const k of ['api', 'entry']) assert.deepEqual(out[k], { code: 'ENOENGINE', message: ORT_MESSAGE, name: 'GradcamError' }, k);
    const cli = withHidden(['onnxruntime-node'], `require(${JSON.stringify(path.join(LIB, 'cli', 'main.js'))}).main(process.argv.slice(2)).then((c) => process.exit(c));`,
      ['explain', '--model', model, '--input', path.join(ROOT, 'assets', 'images', 'chelsea.png'), '--size', '32x32']);
    assert.equal(cli.status, 1);
    assert.equal(cli.stderr.trim().split('\n').pop(), `gradcam: error: ${ORT_MESSAGE}`);
  });

  it("without @tensorflow/tfjs-backend-wasm: engine 'wasm' is ENOENGINE saying how to get it", function () {
    const r = withHidden(['@tensorflow/tfjs-backend-wasm'], `
const { selectTfjsEngine } = require(${JSON.stringify(path.join(LIB, 'tfjs'))});
selectTfjsEngine('wasm').then(() => console.log('no error'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.code, 'ENOENGINE');
    assert.match(out.message, /@tensorflow\/tfjs-backend-wasm: not installed \(`npm install @tensorflow\/tfjs-backend-wasm` for the WebAssembly engine\)/);
  });
});

/**
 * The CLI in its user's words: errors name the flags typed (not API options), "did you mean" for
 * layers, methods and flags, skipped non-pictures, bad pictures named and skipped, --fail-fast, the
 * sidecar named and checked against the model; ONNX layers by node name and PyTorch module path;
 * the one-time warning on ReLU6-only models; README's error-code table equal to ERROR_CODES.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { createExplainer } from '../lib/index';
import { ERROR_CODES, errorCodesMarkdown } from '../lib/errors';
import { parseExplainArgs, UsageError } from '../lib/cli/args';
import { checkSidecarFits, declaredInput, skippedInputs } from '../lib/cli/inputs';
import { cliMessage, inCliWords } from '../lib/cli/words';
import { layerNames, modulePathOf, resolveLayerName } from '../lib/onnx/layer-names';
import { GraphIndex } from '../lib/onnx/graph';
import { DataType, ModelProto, floatTensor, loadModel, node, saveModel } from '../lib/onnx/proto';
import { layerCandidates } from '../lib/onnx/session';
import type { Explainer, InputBatch } from '../lib/types';
import { repoRoot } from './helpers/reference-data';
import { rng } from './helpers/random';

const MAIN = path.resolve(__dirname, '../lib/cli/main.js');
const RESNET = path.join(repoRoot(), 'test/fixtures/onnx/resnet_o13/model.onnx');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-words-'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Run {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', cwd: tmp, timeout: 120000, env: { ...process.env, GRADCAM_QUIET: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The stderr lines that are ours (not the engines' banners). */
function errLines(r: Run): string[] {
  return r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('gradcam-node:'));
}

async function png(file: string, r: number): Promise<string> {
  await sharp({ create: { width: 32, height: 32, channels: 3, background: { r, g: 100, b: 50 } } }).png().toFile(file);
  return file;
}

describe('cli: the user\'s words', function () {
  this.timeout(200000);
  const pics = path.join(tmp, 'pics');
  const a = path.join(pics, 'a.png');
  const b = path.join(pics, 'b.png');
  const bad = path.join(pics, 'c.jpg');

  before(async () => {
    fs.mkdirSync(path.join(pics, 'sub'), { recursive: true });
    await png(a, 200);
    await png(b, 20);
    fs.writeFileSync(bad, 'not a jpeg');
    fs.writeFileSync(path.join(pics, 'notes.txt'), 'hello');
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('API words become flags', () => {
    it('translates option names in the argument slot and camelCase words, keeping class and code', () => {
      assert.equal(cliMessage('Expected integer in [1, 10] for targets.topK but received 100 of type number'), 'Expected integer in [1, 10] for --top-k but received 100 of type number');
      assert.equal(cliMessage('Expected integer class index in [0, 9] for targets but received 100 of type number'), 'Expected integer class index in [0, 9] for --class but received 100 of type number');
      assert.equal(cliMessage("Expected one of x (see layers(); default y) for layer but received 'z'"), "Expected one of x (see 'gradcam layers'; default y) for --layer but received 'z'");
      assert.equal(
        cliMessage("Expected false for method 'saliency' (augSmooth averages CAM maps) for augSmooth but received true of type boolean"),
        "Expected false for method 'saliency' (--aug-smooth averages CAM maps) for --aug-smooth but received true of type boolean",
      );
      assert.equal(cliMessage('pass guidedRelu6: true to apply it'), 'pass --guided-relu6 to apply it');
      assert.equal(
        cliMessage("Expected 2 (the model's fixed batch size) for input.shape[0] but received 1 of type number"),
        "Expected 2 (the model's fixed batch size) images in a batch (--batch-size, and the number of inputs) but received 1 of type number",
      );
      // a name that is no option stays
      assert.equal(cliMessage('Expected finite values for input.data but received NaN at index 0'), 'Expected finite values for input.data but received NaN at index 0');
      const e = inCliWords(Object.assign(new RangeError('Expected 1 for targets.topK but received 2 of type number'), { code: 'EARGRANGE' }));
      assert.ok(e instanceof RangeError);
      assert.equal(e.code, 'EARGRANGE');
      assert.match(e.message, /for --top-k but/);
    });

    it('names --top-k and --class, not targets', () => {
      const r = run(['explain', '-m', RESNET, '-i', a, b, '--top-k', '100', '-o', path.join(tmp, 'o-topk'), '-q']);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errLines(r), ['gradcam: error: Expected integer in [1, 10] for --top-k but received 100 of type number']);
      const c = run(['explain', '-m', RESNET, '-i', a, b, '--class', '10', '-o', path.join(tmp, 'o-class'), '-q']);
      assert.equal(c.code, 1, c.stderr);
      assert.deepEqual(errLines(c), ['gradcam: error: Expected integer class index in [0, 9] for --class but received 10 of type number']);
    });

    it('names --aug-smooth for a method it does not apply to', () => {
      const r = run(['explain', '-m', RESNET, '-i', a, b, '--method', 'saliency', '--aug-smooth', '-o', path.join(tmp, 'o-aug'), '-q']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /for --aug-smooth but received true/);
      assert.doesNotMatch(r.stderr, /augSmooth/);
    });

    it('a wrong --layer: the flag, where to look, and the nearest names', () => {
      const r = run(['explain', '-m', RESNET, '-i', a, b, '--layer', 'layr2', '-o', path.join(tmp, 'o-layer'), '-q']);
      assert.equal(r.code, 1, r.stderr);
      const [line] = errLines(r);
      assert.match(line, /see 'gradcam layers'; default \/layer2\/relu2\/Relu_output_0\) for --layer but received 'layr2' \(did you mean 'layer2'/);
      assert.doesNotMatch(line, /layers\(\)/);
    });

    it('--method and unknown flags: did you mean', () => {
      const m = run(['explain', '-m', RESNET, '-i', a, '--method', 'gradcm']);
      assert.equal(m.code, 2);
      assert.match(m.stderr, /^gradcam: --method must be one of .* \(got 'gradcm'\) \(did you mean 'gradcam'/m);
      assert.throws(() => parseExplainArgs(['-m', 'x.onnx', '-i', 'a.png', '--method', 'gradcampp']), (e: UsageError) => e.code === 'EUSAGE' && /did you mean .*'gradcam\+\+'/.test(e.message));
      const f = run(['explain', '-m', RESNET, '-i', a, '--topk', '3']);
      assert.equal(f.code, 2);
      assert.match(f.stderr, /^gradcam: Unknown option '--topk' \(did you mean '--top-k'\?\)/m);
    });

    it('API errors carry codes: EBADLAYER for a layer, EARGRANGE for a method', async () => {
      const ex = await createExplainer(RESNET, { executionProvider: 'cpu', cache: false });
      try {
        const batch: InputBatch = { data: new Float32Array(2 * 3 * 32 * 32), shape: [2, 3, 32, 32], layout: 'nchw' };
        await assert.rejects(ex.explain(batch, { layer: 'nope' }), { name: 'RangeError', code: 'EBADLAYER' });
        await assert.rejects(ex.explain(batch, { method: 'gradcm' as never }), { name: 'RangeError', code: 'EARGRANGE', message: /did you mean 'gradcam'/ });
      } finally {
        ex.dispose();
      }
    });
  });

  describe('inputs', () => {
    it('lists what a folder holds besides pictures', () => {
      assert.deepEqual(skippedInputs([pics, a]).map((s) => [path.basename(s.input), s.reason.split(' ')[0]]), [['notes.txt', 'not'], ['sub', 'a']]);
    });

    it('skips non-pictures (stderr, --json skipped) and a bad picture (named, failures, exit 1)', () => {
      const r = run(['explain', '-m', RESNET, '-i', pics, '-o', path.join(tmp, 'o-dir'), '--json']);
      assert.equal(r.code, 1, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.deepEqual(doc.skipped.map((s: { input: string }) => path.basename(s.input)), ['notes.txt', 'sub']);
      assert.match(doc.skipped[0].reason, /not a picture/);
      assert.deepEqual(doc.images.map((i: { input: string }) => path.basename(i.input)), ['a.png', 'b.png']);
      assert.equal(doc.failures.length, 1);
      assert.equal(doc.failures[0].input, bad);
      assert.equal(doc.failures[0].code, 'EIMAGE');
      assert.ok(doc.failures[0].error.includes(bad), doc.failures[0].error);
      assert.equal(doc.complete, false);
      assert.match(r.stderr, new RegExp(`gradcam: skipped ${pics.replace(/[/\\.]/g, '\\$&')}.notes\\.txt: not a picture`));
      assert.match(r.stderr, /gradcam: error: 1 of 3 input\(s\) failed; first: .*c\.jpg: cannot read image .*c\.jpg/);
    });

    it('--fail-fast stops at the first failure', () => {
      const r = run(['explain', '-m', RESNET, '-i', bad, a, b, '-o', path.join(tmp, 'o-ff'), '--json', '--fail-fast']);
      assert.equal(r.code, 1, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.images.length, 0);
      assert.deepEqual(doc.failures.map((f: { input: string }) => f.input), [bad]);
      assert.equal(doc.notRun, 2);
      assert.match(r.stderr, /1 of 3 input\(s\) failed \(2 not run\)/);
      assert.equal(parseExplainArgs(['-m', 'x', '-i', 'y', '--fail-fast']).failFast, true);
      assert.equal(parseExplainArgs(['-m', 'x', '-i', 'y']).failFast, false);
    });
  });

  describe('sidecar', () => {
    const dir = path.join(tmp, 'side');
    const model = path.join(dir, 'resnet.onnx');
    const side = `${model}.gradcam.json`;
    before(() => {
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(RESNET, model);
    });

    it('is named on stderr, unless --quiet', () => {
      fs.writeFileSync(side, JSON.stringify({ size: [32, 32], mean: [0.5, 0.5, 0.5] }));
      const r = run(['explain', '-m', model, '-i', a, b, '-o', path.join(tmp, 'o-side')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stderr.split('\n').includes(`sidecar: ${side} (size 32x32, mean 0.5,0.5,0.5)`), r.stderr);
      const q = run(['explain', '-m', model, '-i', a, b, '-o', path.join(tmp, 'o-side'), '-q']);
      assert.equal(q.code, 0, q.stderr);
      assert.doesNotMatch(q.stderr, /sidecar/);
    });

    it('written for another model: an error naming the file (ESIDECAR)', () => {
      fs.writeFileSync(side, JSON.stringify({ size: [64, 64], layout: 'nhwc' }));
      const r = run(['explain', '-m', model, '-i', a, b, '-o', path.join(tmp, 'o-side2'), '-q']);
      assert.equal(r.code, 2, r.stderr);
      assert.deepEqual(errLines(r), [
        `gradcam: sidecar ${side} was written for another model: size 64x64, the model's is 32x32; layout nhwc, the model's is nchw (resnet.onnx takes [N,3,32,32] nchw); fix or remove the sidecar`,
      ]);
      // a value the flags override is not used, so not checked
      const ok = run(['explain', '-m', model, '-i', a, b, '-o', path.join(tmp, 'o-side3'), '-q', '--size', '32x32', '--layout', 'nchw']);
      assert.equal(ok.code, 0, ok.stderr);
      const declared = declaredInput({ inputShape: [2, 1, 32, 32], layout: 'nchw' }, 'm.onnx');
      assert.throws(() => checkSidecarFits({ file: 's.json', channels: 3 }, 'm.onnx', declared, {}), (e: UsageError) => e.code === 'ESIDECAR' && /s\.json .*3 channel\(s\), the model has 1/.test(e.message));
      // tfjs transposes an input in the other layout itself: no layout error there
      checkSidecarFits({ file: 's.json', layout: 'nchw' }, 'model.json', declaredInput({ inputShape: [null, 32, 32, 3], layout: 'nhwc' }, 'model.json'), {});
    });

    it('a malformed sidecar is ESIDECAR too', () => {
      fs.writeFileSync(side, '{ "size": "big" }');
      const r = run(['explain', '-m', model, '-i', a, b, '-o', path.join(tmp, 'o-side4'), '-q']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--size in .*resnet\.onnx\.gradcam\.json must be WIDTHxHEIGHT/);
      fs.rmSync(side);
    });
  });

  describe('ONNX layers by node name and module path', () => {
    it('derives module paths from PyTorch scopes', () => {
      assert.equal(modulePathOf('/layer4/layer4.1/relu_1/Relu'), 'layer4.1.relu_1');
      assert.equal(modulePathOf('/features/features.18/features.18.0/Conv'), 'features.18.0');
      assert.equal(modulePathOf('/layer2/down/down.0/Conv'), 'layer2.down.0');
      assert.equal(modulePathOf('/Flatten'), '');
      assert.equal(modulePathOf('relu'), '');
    });

    it('resolves tensor names, node names and module paths on the resnet fixture', () => {
      const g = new GraphIndex(loadModel(RESNET));
      const tensors = layerCandidates(g).map((c) => c.name);
      const names = layerNames(g, tensors);
      const r = (n: string) => resolveLayerName(n, tensors, names);
      assert.equal(r('/layer2/relu2/Relu_output_0'), '/layer2/relu2/Relu_output_0');
      assert.equal(r('/layer2/relu1/Relu'), '/layer2/relu1/Relu_output_0');
      assert.equal(r('layer2'), '/layer2/relu2/Relu_output_0');
      assert.equal(r('layer1'), '/layer1/relu2/Relu_output_0');
      assert.equal(r('layer2.down'), '/layer2/down/down.1/BatchNormalization_output_0');
      assert.equal(r('layer2.down.0'), '/layer2/down/down.0/Conv_output_0');
      assert.equal(r('/layer2/'), '/layer2/relu2/Relu_output_0');
      assert.equal(r('layer9'), undefined);
      assert.deepEqual(names.modulesOf.get('/layer2/relu2/Relu_output_0'), ['layer2', 'layer2.relu2']);
    });

    it('explain() with a module path equals explain() with its tensor; layers() lists the modules', async () => {
      const ex: Explainer = await createExplainer(RESNET, { executionProvider: 'cpu', cache: false });
      try {
        const r0 = rng(3);
        const batch: InputBatch = { data: Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => r0()), shape: [2, 3, 32, 32], layout: 'nchw' };
        const byModule = await ex.explain(batch, { layer: ['layer1', '/layer2/relu1/Relu'] });
        assert.deepEqual(byModule.layers, ['/layer1/relu2/Relu_output_0', '/layer2/relu1/Relu_output_0']);
        const byTensor = await ex.explain(batch, { layer: ['/layer1/relu2/Relu_output_0', '/layer2/relu1/Relu_output_0'] });
        assert.deepEqual(byModule.explanations[0].map, byTensor.explanations[0].map);
        const info = ex.layers().find((l) => l.name === '/layer2/relu2/Relu_output_0');
        assert.deepEqual(info?.modules, ['layer2', 'layer2.relu2']);
      } finally {
        ex.dispose();
      }
    });

    it('gradcam layers shows a module column; gradcam explain --layer takes a module path', () => {
      const l = run(['layers', RESNET, '--no-cache']);
      assert.equal(l.code, 0, l.stderr);
      const lines = l.stdout.split('\n');
      assert.match(lines[0], /name +type +output shape \(nchw\) +module$/);
      assert.ok(lines.some((x) => /^\* \/layer2\/relu2\/Relu_output_0 +Relu +\[2,32,8,8\] +layer2, layer2\.relu2$/.test(x)), l.stdout);
      const r = run(['explain', '-m', RESNET, '-i', a, b, '--layer', 'layer1', '-o', path.join(tmp, 'o-mod'), '--json', '--no-images']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).layers, ['/layer1/relu2/Relu_output_0']);
    });
  });

  describe('ReLU6 models', () => {
    /** x [N,3,8,8] -> Conv -> Clip(0,6) -> GlobalAveragePool -> Flatten -> Gemm -> logits [N,4]: no ReLU the rule applies to */
    function clipModel(op: 'Clip' | 'Relu'): ModelProto {
      const r = rng(11);
      const t = (name: string, dims: number[]) => floatTensor(name, dims, Array.from({ length: dims.reduce((p, q) => p * q, 1) }, () => r() - 0.3));
      const act = op === 'Clip' ? node('Clip', ['c', 'lo', 'hi'], ['r'], '/act/Clip') : node('Relu', ['c'], ['r'], '/act/Relu');
      return {
        irVersion: 8,
        opsetImport: [{ domain: '', version: 13 }],
        graph: {
          name: 'clip',
          node: [
            node('Conv', ['x', 'cw', 'cb'], ['c'], '/conv/Conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
            act,
            node('GlobalAveragePool', ['r'], ['g'], '/gap'),
            node('Flatten', ['g'], ['f'], '/flatten', { axis: 1 }),
            node('Gemm', ['f', 'fw', 'fb'], ['logits'], '/fc', { transB: 1 }),
          ],
          initializer: [t('cw', [4, 3, 3, 3]), t('cb', [4]), t('fw', [4, 4]), t('fb', [4]), ...(op === 'Clip' ? [floatTensor('lo', [], [0]), floatTensor('hi', [], [6])] : [])],
          input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 8 }, { dimValue: 8 }] } } } }],
          output: [{ name: 'logits', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 4 }] } } } }],
        },
      };
    }

    async function warningsOf(model: ModelProto, calls: Array<Record<string, unknown>>): Promise<string[]> {
      const ex = await createExplainer(saveModel(model), { executionProvider: 'cpu', cache: false });
      const seen: string[] = [];
      const warn = console.warn;
      const quiet = process.env.GRADCAM_QUIET;
      delete process.env.GRADCAM_QUIET;
      console.warn = (...args: unknown[]) => {
        if (/applies to no feature-map activation/.test(String(args[0]))) seen.push(String(args[0]));
      };
      try {
        const r0 = rng(5);
        const batch: InputBatch = { data: Float32Array.from({ length: 3 * 64 }, () => r0()), shape: [1, 3, 8, 8], layout: 'nchw' };
        for (const options of calls) await ex.explain(batch, options);
      } finally {
        console.warn = warn;
        if (quiet !== undefined) process.env.GRADCAM_QUIET = quiet;
        ex.dispose();
      }
      return seen;
    }

    it('warns once when the guided rule applies to no activation, and names the switch', async () => {
      const seen = await warningsOf(clipModel('Clip'), [{ method: 'guided-backprop' }, { method: 'deconvnet' }, { method: 'guided-gradcam' }]);
      assert.equal(seen.length, 1, seen.join('\n'));
      assert.match(seen[0], /the guided ReLU rule of 'guided-backprop' applies to no feature-map activation of this model: .*ReLU6\/Clip.*guidedRelu6: true \(CLI: --guided-relu6\)/);
    });

    it('stays silent with guidedRelu6, for plain methods and for models with ReLUs', async () => {
      assert.deepEqual(await warningsOf(clipModel('Clip'), [{ method: 'guided-backprop', guidedRelu6: true }, { method: 'saliency' }, { method: 'gradcam' }]), []);
      assert.deepEqual(await warningsOf(clipModel('Relu'), [{ method: 'guided-backprop' }]), []);
    });
  });

  describe('error codes', () => {
    it("README's table is ERROR_CODES (npm run readme:errors writes it)", () => {
      const readme = fs.readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');
      const m = /<!-- error-codes:start -->\n([\s\S]*?)\n<!-- error-codes:end -->/.exec(readme);
      assert.ok(m, 'README.md has an error-codes section');
      assert.equal(m[1], errorCodesMarkdown(), 'README.md is out of date: run npm run readme:errors');
      for (const code of Object.keys(ERROR_CODES)) assert.ok(m[1].includes(`| \`${code}\` |`), code);
    });

    it('usage errors carry EUSAGE, sidecar errors ESIDECAR, both in ERROR_CODES', () => {
      assert.throws(() => parseExplainArgs(['-i', 'a.png']), (e: UsageError) => e.code === 'EUSAGE');
      assert.ok('EUSAGE' in ERROR_CODES && 'ESIDECAR' in ERROR_CODES && 'EBADLAYER' in ERROR_CODES);
    });
  });
});

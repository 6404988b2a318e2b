import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as path from 'path';
import { repoRoot } from './helpers/reference-data';

describe('ONNX explainer in worker threads', () => {
  it('keeps the process alive while a run is pending, and lets it exit when idle', () => {
    // A script whose only pending work is a worker-thread run: an unref'd worker would let node exit
    // before the result arrives (silently, exit code 0).
    const lib = path.resolve(__dirname, '../lib/onnx');
    const model = path.join(repoRoot(), 'test/fixtures/onnx/resnet_o13/model.onnx');
    const script = `
      const { createOnnxExplainer } = require(${JSON.stringify(lib)});
      (async () => {
        const ex = await createOnnxExplainer(${JSON.stringify(model)}, { workers: 1 });
        const r = await ex.explain({ data: new Float32Array(2 * 3 * 32 * 32).fill(0.5), shape: [2, 3, 32, 32], layout: 'nchw' });
        console.log('done ' + r.explanations.length + ' ' + r.explanations[0].map.length);
      })().catch((e) => { console.error(e); process.exit(3); });`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, GRADCAM_QUIET: '1' }, timeout: 60000 });
    assert.equal(out.trim(), 'done 2 1024');
  });
});

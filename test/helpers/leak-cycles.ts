/**
 * Child process of test/reliability.test.ts: `node --expose-gc leak-cycles.js <model.json> <cycles> [workers]`
 * runs createExplainer(path, { workers }) / explain / dispose cycles and prints, as one JSON line, the
 * tensor count and the RSS after each cycle (after a full GC, and after a worker thread has exited).
 */
import * as tf from '@tensorflow/tfjs';
import { createExplainer } from '../../lib/index';
import type { InputBatch } from '../../lib/types';

async function main(): Promise<void> {
  const [model, cyclesText, workersText = '1'] = process.argv.slice(2);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const x: InputBatch = { data: Float32Array.from({ length: 2 * 16 * 16 * 3 }, (_, i) => Math.sin(i)), shape: [2, 16, 16, 3], layout: 'nhwc' };
  const tensors: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < Number(cyclesText); i++) {
    const ex = await createExplainer(model, { engine: 'cpu', workers: Number(workersText) });
    const r = await ex.explain(x, { method: 'gradcam' });
    if (r.explanations.length !== 2) throw new Error('expected 2 explanations');
    ex.dispose();
    ex.dispose(); // twice is harmless
    // a worker thread frees its model by ending: wait for it, so that its memory is not counted mid-exit
    await (ex as { adapter?: { exited?: Promise<number> } }).adapter?.exited;
    gc();
    gc();
    tensors.push(tf.memory().numTensors);
    rss.push(process.memoryUsage().rss);
  }
  process.stdout.write(JSON.stringify({ tensors, rss }) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exitCode = 1;
});

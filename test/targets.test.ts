import assert from 'node:assert/strict';
import { resolveTargets, targetRounds, topK } from '../lib/cam/targets';

describe('targets', () => {
  // 3 images x 4 classes
  const logits = Float32Array.from([
    0.1, 2.0, -1.0, 0.5,
    3.0, 3.0, 1.0, -2.0,
    -1.0, -0.5, -0.25, -3.0,
  ]);

  it('argmax by default, ties to the lower index', () => {
    assert.deepEqual(resolveTargets(undefined, logits, 3, 4), [[1], [0], [2]]);
    assert.deepEqual(resolveTargets('argmax', logits, 3, 4), [[1], [0], [2]]);
  });

  it('one class for every image', () => {
    assert.deepEqual(resolveTargets(3, logits, 3, 4), [[3], [3], [3]]);
  });

  it('top-k sorted by score', () => {
    assert.deepEqual(resolveTargets({ topK: 2 }, logits, 3, 4), [[1, 3], [0, 1], [2, 1]]);
    assert.deepEqual(topK(logits, 2, 4, 4), [2, 1, 0, 3]);
  });

  it('per-image classes, mixed single and lists, and their rounds', () => {
    const per = resolveTargets([0, [1, 2], [3, 0, 1]], logits, 3, 4);
    assert.deepEqual(per, [[0], [1, 2], [3, 0, 1]]);
    const rounds = targetRounds(per);
    assert.equal(rounds.length, 3);
    assert.deepEqual(Array.from(rounds[0]), [0, 1, 3]);
    assert.deepEqual(Array.from(rounds[1]), [-1, 2, 0]);
    assert.deepEqual(Array.from(rounds[2]), [-1, -1, 1]);
  });

  it('custom score functions are recognised and refused where there are only class indices', () => {
    assert.throws(() => resolveTargets({ score: (l: unknown) => l }, logits, 3, 4), { name: 'GradcamError', message: /needs a TensorFlow.js model/ });
    assert.throws(() => resolveTargets({ score: 1 } as never, logits, 3, 4), { name: 'TypeError', message: 'Expected function (logits) => scores for targets.score but received 1 of type number' });
  });

  it('errors name the argument', () => {
    assert.throws(() => resolveTargets(4, logits, 3, 4),
      { name: 'RangeError', message: 'Expected integer class index in [0, 3] for targets but received 4 of type number' });
    assert.throws(() => resolveTargets(1.5, logits, 3, 4), RangeError);
    assert.throws(() => resolveTargets([1, 2], logits, 3, 4),
      { name: 'RangeError', message: 'Expected array of length 3 (one entry per image) for targets but received [1,2]' });
    assert.throws(() => resolveTargets([1, [], 2], logits, 3, 4),
      { name: 'RangeError', message: 'Expected non-empty array of class indices for targets[1] but received []' });
    assert.throws(() => resolveTargets([1, [2, -1], 2], logits, 3, 4),
      { name: 'RangeError', message: 'Expected integer class index in [0, 3] for targets[1][1] but received -1 of type number' });
    assert.throws(() => resolveTargets([1, ['a' as unknown as number], 2], logits, 3, 4),
      { name: 'TypeError', message: "Expected integer class index in [0, 3] for targets[1][0] but received 'a' of type string" });
    assert.throws(() => resolveTargets({ topK: 5 }, logits, 3, 4),
      { name: 'RangeError', message: 'Expected integer in [1, 4] for targets.topK but received 5 of type number' });
    assert.throws(() => resolveTargets({ topK: 0 }, logits, 3, 4), RangeError);
    assert.throws(() => resolveTargets('max' as 'argmax', logits, 3, 4), RangeError);
    assert.throws(() => resolveTargets({} as { topK: number }, logits, 3, 4), TypeError);
    assert.throws(() => resolveTargets(undefined, logits, 2, 4), /for logits/);
  });
});

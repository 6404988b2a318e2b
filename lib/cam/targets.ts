/**
 * Which classes to explain. Targets resolve to a list of classes per image; adapters then run one
 * backward pass per "round" (the r-th class of every image), so top-k costs k passes, not n*k.
 */
import { GradcamError, invalidRange, invalidType } from '../errors';
import type { ScoreFunction, TargetSpec } from '../types';

function checkClass(name: string, c: unknown, numClasses: number): number {
  if (typeof c !== 'number') throw invalidType(name, `integer class index in [0, ${numClasses - 1}]`, c);
  if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
    throw invalidRange(name, `integer class index in [0, ${numClasses - 1}]`, c);
  }
  return c;
}

/** Indices of the k largest logits of row i, largest first (ties: lower index first). */
export function topK(logits: Float32Array, i: number, numClasses: number, k: number): number[] {
  const row = logits.subarray(i * numClasses, (i + 1) * numClasses);
  const idx = Array.from({ length: numClasses }, (_, j) => j);
  idx.sort((a, b) => row[b] - row[a] || a - b);
  return idx.slice(0, k);
}

/**
 * Per-image class lists for a target spec (see TargetSpec), validated against the batch:
 * an array must have one entry per image, every class must exist.
 */
export function resolveTargets(spec: TargetSpec | undefined, logits: Float32Array, n: number, numClasses: number): number[][] {
  if (logits.length !== n * numClasses) {
    throw invalidRange('logits', `Float32Array of length ${n * numClasses}`, logits);
  }
  if (spec === undefined || spec === 'argmax') {
    return Array.from({ length: n }, (_, i) => topK(logits, i, numClasses, 1));
  }
  if (typeof spec === 'number') {
    const c = checkClass('targets', spec, numClasses);
    return Array.from({ length: n }, () => [c]);
  }
  if (typeof spec === 'string') throw invalidRange('targets', "'argmax', a class index, an array of length n or { topK }", spec);
  if (Array.isArray(spec)) {
    if (spec.length !== n) throw invalidRange('targets', `array of length ${n} (one entry per image)`, spec);
    return spec.map((entry, i) => {
      if (Array.isArray(entry)) {
        if (entry.length === 0) throw invalidRange(`targets[${i}]`, 'non-empty array of class indices', entry);
        return entry.map((c, j) => checkClass(`targets[${i}][${j}]`, c, numClasses));
      }
      return [checkClass(`targets[${i}]`, entry, numClasses)];
    });
  }
  if (isCustomScore(spec)) {
    throw new GradcamError('A custom score function (targets.score) needs a TensorFlow.js model: ONNX models are explained for class indices', 'EUNSUPPORTED');
  }
  if (typeof spec === 'object' && spec !== null && 'topK' in spec) {
    const k = (spec as { topK: unknown }).topK;
    if (typeof k !== 'number') throw invalidType('targets.topK', `integer in [1, ${numClasses}]`, k);
    if (!Number.isInteger(k) || k < 1 || k > numClasses) throw invalidRange('targets.topK', `integer in [1, ${numClasses}]`, k);
    return Array.from({ length: n }, (_, i) => topK(logits, i, numClasses, k));
  }
  throw invalidType('targets', "'argmax', a class index, an array of length n, { topK } or { score }", spec);
}

/** A { score: fn } target, checked: fn must be a function. */
export function isCustomScore(spec: unknown): spec is { score: ScoreFunction } {
  if (typeof spec !== 'object' || spec === null || !('score' in spec)) return false;
  const fn = (spec as { score: unknown }).score;
  if (typeof fn !== 'function') throw invalidType('targets.score', 'function (logits) => scores', fn);
  return true;
}

/** Round r holds every image's r-th class, or -1 for an image with fewer classes. */
export function targetRounds(perImage: number[][]): Int32Array[] {
  const rounds = Math.max(0, ...perImage.map((l) => l.length));
  return Array.from({ length: rounds }, (_, r) => Int32Array.from(perImage, (l) => (r < l.length ? l[r] : -1)));
}

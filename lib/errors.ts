/**
 * One error factory and one message shape for every argument check, in the style of sharp:
 *   Expected positive integer for width but received 1.5 of type number
 * TypeError for a value of the wrong kind, RangeError for a value of the right kind out of range.
 * The native addon produces the same messages for the same checks (native/check.h).
 */

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (ArrayBuffer.isView(value)) {
    const name = (value as object).constructor.name;
    const len = (value as unknown as { length?: number }).length;
    return len === undefined ? name : `${name}(${len})`;
  }
  if (Array.isArray(value)) {
    const short = value.length <= 8 && value.every((v) => typeof v === 'number' || typeof v === 'boolean');
    return short ? `[${value.join(',')}]` : `array of length ${value.length}`;
  }
  if (typeof value === 'string') return `'${value.length > 60 ? value.slice(0, 57) + '...' : value}' of type string`;
  if (typeof value === 'object') return `object ${value.constructor?.name ?? 'Object'}`;
  return `${String(value)} of type ${typeof value}`;
}

/** `Expected ${expected} for ${name} but received ${describe(value)}` as a TypeError, code EARGTYPE. */
export function invalidType(name: string, expected: string, value: unknown): TypeError & { code: 'EARGTYPE' } {
  return Object.assign(new TypeError(`Expected ${expected} for ${name} but received ${describe(value)}`), { code: 'EARGTYPE' as const });
}

/** `Expected ${expected} for ${name} but received ${describe(value)}` as a RangeError, code EARGRANGE. */
export function invalidRange(name: string, expected: string, value: unknown): RangeError & { code: 'EARGRANGE' } {
  return Object.assign(new RangeError(`Expected ${expected} for ${name} but received ${describe(value)}`), { code: 'EARGRANGE' as const });
}

/** A RangeError with code EARGRANGE whose message is already composed (a list of names, a suggestion). */
export function rangeErrorOf(message: string): RangeError & { code: 'EARGRANGE' } {
  return Object.assign(new RangeError(message), { code: 'EARGRANGE' as const });
}

export function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** A positive integer (NaN, 0, negative, fractional, non-number rejected). */
export function checkPositiveInteger(name: string, v: unknown): number {
  if (typeof v !== 'number') throw invalidType(name, 'positive integer', v);
  if (!Number.isInteger(v) || v <= 0) throw invalidRange(name, 'positive integer', v);
  return v;
}

export function checkFloat32Array(name: string, v: unknown, length?: number): Float32Array {
  if (!(v instanceof Float32Array)) throw invalidType(name, 'Float32Array', v);
  if (length !== undefined && v.length !== length) {
    throw invalidRange(name, `Float32Array of length ${length}`, v);
  }
  return v;
}

export function checkOneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    const list = allowed.map((a) => `'${a}'`).join(', ');
    if (typeof v !== 'string') throw invalidType(name, `one of ${list}`, v);
    throw invalidRange(name, `one of ${list}`, v);
  }
  return v as T;
}

export function checkBoolean(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalidType(name, 'boolean', v);
  return v;
}

/** An error that is not about an argument: a model we cannot differentiate, a missing engine. */
export class GradcamError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'GradcamError';
  }
}

/** A RangeError with a code: what a failed allocation throws (the native addon's too). */
export type CodedRangeError = RangeError & { code: string };

/**
 * A kernel output that could not be allocated (memory exhausted for a valid but huge size): a
 * RangeError with code 'ALLOCATION_FAILED', as the native addon throws (native/check.h), never a
 * crash of the process.
 */
export function allocationFailed(what: string, reason: string): CodedRangeError {
  const e = new RangeError(`gradcam-node: could not allocate ${what}: ${reason}`) as CodedRangeError;
  e.code = 'ALLOCATION_FAILED';
  return e;
}

/** V8's own failure of `new Float32Array(n)` (a RangeError without a code), as allocationFailed(what). */
export function asAllocationFailure(e: unknown, what: string): unknown {
  if (e instanceof RangeError && !(e as Partial<CodedRangeError>).code && /allocation failed/i.test(e.message)) {
    return allocationFailed(what, e.message);
  }
  return e;
}

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** Up to `max` candidates nearest to `name` (case-insensitive edit distance within a third of its length, or containing it). */
export function nearest(name: string, candidates: readonly string[], max = 3): string[] {
  const lower = name.toLowerCase();
  const limit = Math.max(2, Math.ceil(name.length / 3));
  return candidates
    .map((c) => ({ c, d: c.toLowerCase().includes(lower) && lower.length >= 3 ? 0.5 : editDistance(lower, c.toLowerCase()) }))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, max)
    .map((x) => x.c);
}

/** ' (did you mean 'a' or 'b'?)', or '' when nothing is near. */
export function didYouMean(name: string, candidates: readonly string[]): string {
  const near = nearest(name, candidates);
  if (near.length === 0) return '';
  return ` (did you mean ${near.map((c) => `'${c}'`).join(' or ')}?)`;
}

/**
 * Rejects option names not in `known`: a misspelt option is an error, never silently ignored.
 * `what` names the options object in the message ('options', 'explain options').
 */
export function checkKnownKeys(what: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if ((value as Record<string, unknown>)[key] === undefined || known.includes(key)) continue;
    const hint = didYouMean(key, known);
    throw new GradcamError(`Unknown option '${key}' in ${what}${hint}; known options: ${known.join(', ')}`, 'EUNKNOWNOPTION');
  }
}
/**
 * Every `code` the library puts on its errors, in one list (test/reliability.test.ts checks that the
 * sources use no other). Argument errors are TypeError/RangeError with EARGTYPE/EARGRANGE; the rest
 * are GradcamErrors. The CLI's --json `failures[].code` uses the same codes.
 */
export const ERROR_CODES = {
  EARGTYPE: 'an argument of the wrong kind (TypeError)',
  EARGRANGE: 'an argument of the right kind out of range, or too large (RangeError)',
  ENOENT: 'a model file or folder that does not exist or cannot be read',
  EFORMAT: 'a model path that is neither .onnx nor a tfjs model.json',
  EBADMODEL: 'a model file that is corrupt, truncated or not a model (the message names the file)',
  EMODEL: 'a tfjs model the explainer cannot use (structure, layers, weight files)',
  EBADLAYER: 'a target layer that does not exist or is not 4-D (the message suggests the nearest names)',
  ESHAPE: 'an ONNX input shape that must be given',
  EUNSUPPORTED: 'an operation or method the model cannot be differentiated through',
  EEXTERNAL: 'an ONNX model with external tensor data',
  EDTYPE: 'an ONNX tensor data type that is not supported',
  EORT: 'ONNX Runtime failed',
  EWORKER: 'the worker thread computing a model (ONNX Runtime, TensorFlow.js) failed, exited or ran out of memory',
  ENOCUDA: "CUDA asked for where it is not available: the 'cuda' kernels (device) or ONNX Runtime's CUDA executionProvider",
  EDISPOSED: 'an explainer used after dispose()',
  EADAPTER: 'an internal error: a model adapter returned arrays of the wrong size',
  EUNKNOWNOPTION: 'an option name the function does not know (the message suggests the nearest)',
  ENONFINITE: 'a NaN or infinite logit, activation, gradient or map (the message names what, the layer and the images)',
  EENGINE: 'an engine that is installed but cannot be used (did not load or initialize)',
  ENOENGINE: 'an engine package that is not installed (onnxruntime-node, @tensorflow/tfjs, its wasm backend, tfjs-node): the message says what to npm install',
  ENPY: 'a .npy file that cannot be read',
  EIMAGE: 'a picture that cannot be decoded',
  EDEMO: "the demo's packaged models are missing",
  EUSAGE: 'a command-line mistake: a missing or malformed flag, an input that does not exist (exit code 2)',
  ESIDECAR: "a sidecar JSON (`<model>.gradcam.json`) that is malformed or was written for another model (its size, layout or channels do not fit the model's input)",
  NATIVE_UNAVAILABLE: 'the native kernels asked for where the addon is not loaded',
  WORKER_CLOSED: 'a kernel job pending when its worker pool was closed',
  WORKER_FAILED: 'a kernel worker thread failed',
  ECANCELLED: "internal: a worker started early for a model that was then not needed, cancelled (never reaches a caller)",
  GRADCAM_CACHE: 'the code of the process warning (not an error) when the model cache cannot be written: models are built each run',
  WORKER_MISSING: "the 'js' kernels' worker script is missing (the .ts sources run without dist/)",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** ERROR_CODES as the Markdown table README.md shows (scripts/readme-error-codes.js writes it; a test compares). */
export function errorCodesMarkdown(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, what]) => `| \`${code}\` | ${what.replace(/\|/g, '\\|')} |`);
  return ['| code | meaning |', '| --- | --- |', ...rows].join('\n');
}

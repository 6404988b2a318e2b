/**
 * Worker-thread side of the 'js' device's Promise API (lib/kernels/js-async.ts): runs one
 * reference kernel per message and posts the result back, transferring (not copying) the
 * freshly allocated output buffers. Arguments were validated on the main thread.
 */

import { parentPort } from 'node:worker_threads';
import { asAllocationFailure } from '../errors';
import { reference } from './reference';
import type { KernelsSync } from './types';

export interface JobMessage {
  id: number;
  name: keyof KernelsSync;
  args: unknown[];
}

export type ResultMessage =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string; code?: string } };

/** The ArrayBuffers of the typed arrays in a result (a Float32Array or Uint8Array, or an object of them). */
export function resultBuffers(result: unknown): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  const isArray = (v: unknown): v is Float32Array | Uint8Array => v instanceof Float32Array || v instanceof Uint8Array;
  const add = (v: unknown): void => {
    if (isArray(v) && v.buffer instanceof ArrayBuffer && !out.includes(v.buffer)) out.push(v.buffer);
  };
  if (isArray(result)) add(result);
  else if (result && typeof result === 'object') for (const v of Object.values(result)) add(v);
  return out;
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (msg: JobMessage) => {
    let reply: ResultMessage;
    let transfer: ArrayBuffer[] = [];
    try {
      const fn = reference[msg.name] as (...args: unknown[]) => unknown;
      const result = fn(...msg.args);
      reply = { id: msg.id, ok: true, result };
      transfer = resultBuffers(result);
    } catch (e) {
      const err = asAllocationFailure(e instanceof Error ? e : new Error(String(e)), `the output of ${msg.name}`) as Error & { code?: unknown };
      const code = typeof err.code === 'string' ? err.code : undefined;
      reply = { id: msg.id, ok: false, error: { name: err.name, message: err.message, stack: err.stack, code } };
    }
    port.postMessage(reply, transfer);
  });
}

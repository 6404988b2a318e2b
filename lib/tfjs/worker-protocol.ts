/** The messages between a TfjsWorkerAdapter (worker-adapter.ts) and its worker thread (worker.ts). */
import type * as tf from '@tensorflow/tfjs';
import type { GradientRequest, LayerActivations } from '../cam/adapter';
import type { InputBatch } from '../types';
import type { TfjsEngine, TfjsEnginePreference } from './engine';
import type { TfjsModelInfo } from './explainer';

/** workerData: the model as a path the worker loads, or as serialized artifacts. */
export interface TfjsWorkerInit {
  file?: string;
  artifacts?: tf.io.ModelArtifacts;
  graph?: boolean;
  engine: TfjsEnginePreference;
  logitsNode?: string;
}

/** A GradientRequest without its score function (those stay in the main thread). */
export type WireRequest = Omit<GradientRequest, 'score'>;

export type ToWorker =
  | { op: 'begin'; id: number; batch: InputBatch; request: WireRequest }
  | { op: 'round'; id: number; pass: number; classes: Int32Array }
  | { op: 'release'; pass: number }
  | { op: 'memory'; id: number }
  | { op: 'dispose' };

/** An error crossing the thread boundary: enough to rebuild the same class, message and code. */
export interface WireError { name: string; message: string; code?: string }

export interface WorkerMemory {
  /** tf.memory() in the worker now */
  numTensors: number;
  numBytes: number;
  /** tf.memory().numTensors once the model was loaded: back to it after every call */
  baselineTensors: number;
  /** forward passes the worker still holds (0 between calls) */
  passes: number;
}

export type FromWorker =
  | { ready: true; info: TfjsModelInfo; engine: TfjsEngine; note?: string }
  | { ready: false; error: WireError }
  | { id: number; error: WireError }
  | { id: number; pass: number; logits: Float32Array; numClasses: number; activations: LayerActivations[] }
  | { id: number; layerGrads: Float32Array[]; inputGradient?: Float32Array }
  | ({ id: number } & WorkerMemory);

export function toWire(e: unknown): WireError {
  const err = e as Error & { code?: unknown };
  return {
    name: typeof err?.name === 'string' ? err.name : 'Error',
    message: typeof err?.message === 'string' ? err.message : String(e),
    code: typeof err?.code === 'string' ? err.code : undefined,
  };
}

/**
 * Kernel device selection: getKernels('auto' | 'cuda' | 'cpu' | 'js').
 *
 * The native addon is probed once (lib/kernels/native.ts, nativeStatus()), and 'auto' is
 * decided once per process: CUDA when the addon has a usable GPU, else the addon's CPU
 * threads, else the TypeScript twins (lib/kernels/reference.ts) with their Promise API in
 * worker threads (lib/kernels/js-async.ts). A fallback is announced once with console.warn
 * (silenced by GRADCAM_QUIET=1); asking for a device that is not there is an error.
 *
 * Every function returned validates its arguments (lib/kernels/validate.ts) before dispatch;
 * the async variants reject with the same TypeError/RangeError.
 */

import { GradcamError, asAllocationFailure, checkOneOf } from '../errors';
import { jsAsyncKernels, jsSyncKernels } from './js-async';
import { type NativeStatus, nativeKernels, nativeStatus } from './native';
import type { DeviceRequest, KernelDevice, KernelsAsync, KernelsSync } from './types';
import { KERNEL_NAMES, validate } from './validate';

export type {
  CamCombine,
  CamGuide,
  CamTailOptions,
  CamTailResult,
  ChannelWeighting,
  DeviceRequest,
  ElementwiseOp,
  FeatureShape,
  KernelDevice,
  KernelsAsync,
  KernelsSync,
  Layout,
  PictureKernelsSync,
  ShowCamOnImageOptions,
} from './types';
export type { NativeStatus } from './native';

export interface Kernels {
  /** the device that runs these kernels */
  device: KernelDevice;
  sync: KernelsSync;
  async: KernelsAsync;
  /** why this device: 'requested', or what 'auto' found */
  reason: string;
}

const REQUESTS: readonly DeviceRequest[] = ['auto', 'cuda', 'cpu', 'js'];

interface AutoChoice {
  device: KernelDevice;
  reason: string;
}
let autoChoice: AutoChoice | undefined;
let warned = false;

function chooseAuto(): AutoChoice {
  if (!autoChoice) {
    const st = nativeStatus();
    if (st.loaded && st.cuda.available) {
      autoChoice = { device: 'cuda', reason: `CUDA available${st.cuda.deviceName ? `: ${st.cuda.deviceName}` : ''}` };
    } else if (st.loaded) {
      autoChoice = { device: 'cpu', reason: `CUDA unavailable: ${st.cuda.reason}` };
    } else {
      autoChoice = { device: 'js', reason: `native addon not loaded: ${st.error ?? 'unknown error'}` };
    }
  }
  return autoChoice;
}

const DEVICE_WORDS: Record<KernelDevice, string> = {
  cuda: 'CUDA',
  cpu: 'native CPU',
  js: 'TypeScript',
};

function warnOnce(choice: AutoChoice): void {
  if (warned || choice.device === 'cuda') return;
  warned = true;
  if (process.env.GRADCAM_QUIET === '1') return;
  console.warn(`gradcam-node: kernels on ${DEVICE_WORDS[choice.device]} (${choice.reason})`);
}

/**
 * Every field of a shape or options object: FeatureShape, ResizeOptions, GradcamTailOptions,
 * CamTailOptions, CamCombine, CamGuide, ShowCamOnImageOptions.
 */
const OPTION_FIELDS = [
  'n', 'k', 'h', 'w', 'layout', 'outH', 'outW', 'relu', 'alignCorners',
  'kind', 'weighting', 'eps', 'op', 'weights', 'lowres', 'c', 'inputGrads',
  'colormap', 'imageWeight', 'channels',
] as const;

/**
 * A shape or options object read once into a plain object: its getters (or a Proxy's traps) run
 * here, before the arrays are checked, so what is checked is what the kernel gets, and a getter
 * that detaches or shrinks an array is caught by the array's length check. A JS array (camTail's
 * per-round arrays) is read once into a plain array. Anything else as is.
 */
function snapshot(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) return Array.from(v as unknown[], snapshot);
  const o = v as Record<string, unknown>;
  const plain: Record<string, unknown> = {};
  for (const f of OPTION_FIELDS) {
    const value = o[f];
    if (value !== undefined) plain[f] = snapshot(value);
  }
  return plain;
}

/**
 * Each function reads its shape and options objects once (snapshot), checks its arguments, then
 * calls the implementation; a failed allocation of an output becomes allocationFailed().
 */
function guarded(device: KernelDevice, impl: { sync: KernelsSync; async: KernelsAsync }, reason: string): Kernels {
  const sync: Record<string, unknown> = {};
  const async: Record<string, unknown> = {};
  for (const name of KERNEL_NAMES) {
    const check = validate[name] as (...args: unknown[]) => void;
    const runSync = impl.sync[name] as (...args: unknown[]) => unknown;
    const runAsync = impl.async[name] as (...args: unknown[]) => Promise<unknown>;
    const what = `the output of ${name}`;
    sync[name] = (...given: unknown[]) => {
      const args = given.map(snapshot);
      check(...args);
      try {
        return runSync.apply(impl.sync, args);
      } catch (e) {
        throw asAllocationFailure(e, what);
      }
    };
    async[name] = async (...given: unknown[]) => {
      const args = given.map(snapshot);
      check(...args);
      try {
        return await runAsync.apply(impl.async, args);
      } catch (e) {
        throw asAllocationFailure(e, what);
      }
    };
  }
  return { device, sync: sync as unknown as KernelsSync, async: async as unknown as KernelsAsync, reason };
}

const implCache = new Map<KernelDevice, { sync: KernelsSync; async: KernelsAsync }>();

function implementation(device: KernelDevice): { sync: KernelsSync; async: KernelsAsync } {
  let impl = implCache.get(device);
  if (!impl) {
    if (device === 'js') {
      impl = { sync: jsSyncKernels(), async: jsAsyncKernels() };
    } else {
      const st = nativeStatus();
      if (device === 'cuda' && !(st.loaded && st.cuda.available)) {
        throw new GradcamError(
          `gradcam-node: device 'cuda' requested but CUDA kernels are unavailable: ${st.loaded ? st.cuda.reason : `native addon not loaded: ${st.error}`}`,
          'ENOCUDA',
        );
      }
      if (device === 'cpu' && !st.loaded) {
        throw new GradcamError(
          `gradcam-node: device 'cpu' requested but the native addon is not loaded: ${st.error ?? 'unknown error'}; device 'js' runs the TypeScript kernels`,
          'NATIVE_UNAVAILABLE',
        );
      }
      impl = nativeKernels(device);
    }
    implCache.set(device, impl);
  }
  return impl;
}

const kernelsCache = new Map<DeviceRequest, Kernels>();

/**
 * The kernels of a device. 'auto' (the default) picks cuda -> native cpu -> js once per process,
 * warning once when it falls back. 'cuda' or 'cpu' where unavailable throws a GradcamError;
 * anything else throws a RangeError (TypeError when not a string) naming `device`.
 */
export function getKernels(request: DeviceRequest = 'auto'): Kernels {
  const cached = kernelsCache.get(request);
  if (cached) return cached;
  checkOneOf('device', request, REQUESTS);
  let kernels: Kernels;
  if (request === 'auto') {
    const choice = chooseAuto();
    kernels = guarded(choice.device, implementation(choice.device), choice.reason);
    warnOnce(choice);
  } else {
    kernels = guarded(request, implementation(request), 'requested');
  }
  kernelsCache.set(request, kernels);
  return kernels;
}

/** What 'auto' runs on, and the native addon's status (nothing is printed). */
export function kernelInfo(): { auto: KernelDevice; native: NativeStatus } {
  return { auto: chooseAuto().device, native: nativeStatus() };
}

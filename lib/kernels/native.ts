/**
 * The native kernels (C++ threads or CUDA) behind the kernel contract of lib/kernels/types.ts.
 * nativeStatus() says what loaded and whether CUDA is usable; nativeKernels(device) adapts the
 * raw addon (lib/kernels/addon.ts) to KernelsSync / KernelsAsync for one device.
 * Argument checks: the addon repeats lib/kernels/validate.ts in C++, with the same messages.
 */

import { GradcamError, checkOneOf } from '../errors';
import { type NativeAddon, type NativeDevice, loadAddon } from './addon';
import type { KernelsAsync, KernelsSync } from './types';

export interface NativeStatus {
  loaded: boolean;
  error?: string;
  path?: string;
  cuda: { available: boolean; reason: string; deviceName?: string };
}

let status: NativeStatus | undefined;

/** Loads the addon once and probes CUDA once; never throws. */
export function nativeStatus(): NativeStatus {
  if (status) return status;
  const load = loadAddon();
  if (!load.addon) {
    status = { loaded: false, error: load.error, cuda: { available: false, reason: `native addon not loaded: ${load.error}` } };
    return status;
  }
  try {
    const info = load.addon.cudaInfo();
    const cuda: NativeStatus['cuda'] = { available: info.available, reason: info.reason };
    if (info.deviceName) cuda.deviceName = info.deviceName;
    status = { loaded: true, path: load.path, cuda };
  } catch (e) {
    const reason = `CUDA probe failed: ${e instanceof Error ? e.message : String(e)}`;
    status = { loaded: true, path: load.path, cuda: { available: false, reason } };
  }
  return status;
}

function bind(addon: NativeAddon, device: NativeDevice): { sync: KernelsSync; async: KernelsAsync } {
  const sync: KernelsSync = {
    channelMean: (x, shape) => addon.channelMean(device, x, shape),
    channelSums: (g, a, shape) => addon.channelSums(device, g, a, shape),
    weightedChannelSum: (weights, a, shape, relu) => addon.weightedChannelSum(device, weights, a, shape, relu),
    elementwiseChannelSum: (g, a, shape, op, relu) => addon.elementwiseChannelSum(device, g, a, shape, op, relu),
    resizeBilinear: (x, n, h, w, outH, outW, options, out) => addon.resizeBilinear(device, x, n, h, w, outH, outW, options, out),
    minMaxNormalize: (x, n, size) => addon.minMaxNormalize(device, x, n, size),
    guidedProduct: (guided, cam, n, c, H, W, layout, out) => addon.guidedProduct(device, guided, cam, n, c, H, W, layout, out),
    gradcamTail: (a, g, shape, options) => addon.gradcamTail(device, a, g, shape, options),
    applyColormap: (maps, n, H, W, colormap) => addon.applyColormap(device, maps, n, H, W, colormap),
    showCamOnImage: (images, maps, n, H, W, options) => addon.showCamOnImage(device, images, maps, n, H, W, options),
    deprocessImage: (data, n, c, H, W, layout) => addon.deprocessImage(device, data, n, c, H, W, layout),
    greyToRgb: (grey, n, H, W) => addon.greyToRgb(device, grey, n, H, W),
    camTail: (a, grads, shape, combine, options, guide) => addon.camTail(device, a, grads, shape, combine, options, guide),
  };
  const async: KernelsAsync = {
    channelMean: (x, shape) => addon.channelMeanAsync(device, x, shape),
    channelSums: (g, a, shape) => addon.channelSumsAsync(device, g, a, shape),
    weightedChannelSum: (weights, a, shape, relu) => addon.weightedChannelSumAsync(device, weights, a, shape, relu),
    elementwiseChannelSum: (g, a, shape, op, relu) => addon.elementwiseChannelSumAsync(device, g, a, shape, op, relu),
    resizeBilinear: (x, n, h, w, outH, outW, options, out) =>
      addon.resizeBilinearAsync(device, x, n, h, w, outH, outW, options, out),
    minMaxNormalize: (x, n, size) => addon.minMaxNormalizeAsync(device, x, n, size),
    guidedProduct: (guided, cam, n, c, H, W, layout, out) =>
      addon.guidedProductAsync(device, guided, cam, n, c, H, W, layout, out),
    gradcamTail: (a, g, shape, options) => addon.gradcamTailAsync(device, a, g, shape, options),
    applyColormap: (maps, n, H, W, colormap) => addon.applyColormapAsync(device, maps, n, H, W, colormap),
    showCamOnImage: (images, maps, n, H, W, options) => addon.showCamOnImageAsync(device, images, maps, n, H, W, options),
    deprocessImage: (data, n, c, H, W, layout) => addon.deprocessImageAsync(device, data, n, c, H, W, layout),
    greyToRgb: (grey, n, H, W) => addon.greyToRgbAsync(device, grey, n, H, W),
    camTail: (a, grads, shape, combine, options, guide) => addon.camTailAsync(device, a, grads, shape, combine, options, guide),
  };
  return { sync, async };
}

const bound = new Map<NativeDevice, { sync: KernelsSync; async: KernelsAsync }>();

/**
 * The native kernels of one device. Throws a GradcamError when the addon is not loaded
 * (NATIVE_UNAVAILABLE) or when 'cuda' is asked for where there is no usable GPU (CUDA_UNAVAILABLE).
 */
export function nativeKernels(device: 'cpu' | 'cuda'): { sync: KernelsSync; async: KernelsAsync } {
  checkOneOf('device', device, ['cpu', 'cuda'] as const);
  const cached = bound.get(device);
  if (cached) return cached;
  const st = nativeStatus();
  const addon = loadAddon().addon;
  if (!st.loaded || !addon) {
    throw new GradcamError(`gradcam-node: native kernels unavailable: ${st.error ?? 'unknown error'}`, 'NATIVE_UNAVAILABLE');
  }
  if (device === 'cuda' && !st.cuda.available) {
    throw new GradcamError(`gradcam-node: CUDA kernels unavailable: ${st.cuda.reason}`, 'CUDA_UNAVAILABLE');
  }
  const k = bind(addon, device);
  bound.set(device, k);
  return k;
}

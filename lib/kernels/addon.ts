/**
 * The native addon (gradcam_native.node: prebuilt in the package under prebuilds/<platform>-<arch>,
 * or built from native/ by cmake-js into build/Release):
 * one typed description of its whole surface, and its loader. Nothing else touches the
 * untyped addon object.
 *
 * Every kernel of lib/kernels/types.ts is exported twice, each taking the device first:
 *   name(device, ...args)        synchronous
 *   nameAsync(device, ...args)   Promise; the work runs on a libuv worker thread
 * Synchronous calls read inputs in place; Promise calls copy inputs (not those on a
 * SharedArrayBuffer) first, since the caller may free a buffer meanwhile (native/README.md,
 * "The caller's buffers"). Outputs are fresh Float32Arrays (Uint8Arrays for the picture kernels)
 * unless `out` is given. The addon checks its arguments itself (native/check.h), with the
 * messages of lib/kernels/validate.ts.
 */

import * as fs from 'fs';
import * as path from 'path';

import type {
  CamCombine,
  CamGuide,
  CamTailOptions,
  CamTailResult,
  ChannelSums,
  ColormapName,
  ElementwiseOp,
  FeatureShape,
  GradcamTailOptions,
  GradcamTailResult,
  Layout,
  ResizeOptions,
  ShowCamOnImageOptions,
} from './types';

/** Where a native kernel runs. */
export type NativeDevice = 'cpu' | 'cuda';

export interface AddonCudaInfo {
  /** a CUDA device is usable */
  available: boolean;
  /** why not, or which device was found */
  reason: string;
  deviceName?: string;
  /** the addon was compiled with the CUDA kernels (GRADCAM_CUDA=AUTO found nvcc, or ON) */
  compiled: boolean;
}

/** The raw addon, exactly as native/addon.cc registers it. */
export interface NativeAddon {
  channelMean(device: NativeDevice, x: Float32Array, shape: FeatureShape): Float32Array;
  channelMeanAsync(device: NativeDevice, x: Float32Array, shape: FeatureShape): Promise<Float32Array>;

  channelSums(device: NativeDevice, g: Float32Array, a: Float32Array, shape: FeatureShape): ChannelSums;
  channelSumsAsync(device: NativeDevice, g: Float32Array, a: Float32Array, shape: FeatureShape): Promise<ChannelSums>;

  weightedChannelSum(device: NativeDevice, weights: Float32Array, a: Float32Array, shape: FeatureShape, relu: boolean): Float32Array;
  weightedChannelSumAsync(
    device: NativeDevice, weights: Float32Array, a: Float32Array, shape: FeatureShape, relu: boolean,
  ): Promise<Float32Array>;

  elementwiseChannelSum(
    device: NativeDevice, g: Float32Array, a: Float32Array, shape: FeatureShape, op: ElementwiseOp, relu: boolean,
  ): Float32Array;
  elementwiseChannelSumAsync(
    device: NativeDevice, g: Float32Array, a: Float32Array, shape: FeatureShape, op: ElementwiseOp, relu: boolean,
  ): Promise<Float32Array>;

  resizeBilinear(
    device: NativeDevice, x: Float32Array, n: number, h: number, w: number, outH: number, outW: number, options?: ResizeOptions,
    out?: Float32Array,
  ): Float32Array;
  resizeBilinearAsync(
    device: NativeDevice, x: Float32Array, n: number, h: number, w: number, outH: number, outW: number, options?: ResizeOptions,
    out?: Float32Array,
  ): Promise<Float32Array>;

  minMaxNormalize(device: NativeDevice, x: Float32Array, n: number, size: number): Float32Array;
  minMaxNormalizeAsync(device: NativeDevice, x: Float32Array, n: number, size: number): Promise<Float32Array>;

  guidedProduct(
    device: NativeDevice, guided: Float32Array, cam: Float32Array, n: number, c: number, H: number, W: number, layout: Layout,
    out?: Float32Array,
  ): Float32Array;
  guidedProductAsync(
    device: NativeDevice, guided: Float32Array, cam: Float32Array, n: number, c: number, H: number, W: number, layout: Layout,
    out?: Float32Array,
  ): Promise<Float32Array>;

  gradcamTail(device: NativeDevice, a: Float32Array, g: Float32Array, shape: FeatureShape, options: GradcamTailOptions): GradcamTailResult;
  gradcamTailAsync(
    device: NativeDevice, a: Float32Array, g: Float32Array, shape: FeatureShape, options: GradcamTailOptions,
  ): Promise<GradcamTailResult>;

  // the picture kernels: outputs are fresh Uint8Arrays [n,H,W,channels]
  applyColormap(device: NativeDevice, maps: Float32Array, n: number, H: number, W: number, colormap: ColormapName): Uint8Array;
  applyColormapAsync(device: NativeDevice, maps: Float32Array, n: number, H: number, W: number, colormap: ColormapName): Promise<Uint8Array>;

  showCamOnImage(
    device: NativeDevice, images: Float32Array, maps: Float32Array, n: number, H: number, W: number, options?: ShowCamOnImageOptions,
  ): Uint8Array;
  showCamOnImageAsync(
    device: NativeDevice, images: Float32Array, maps: Float32Array, n: number, H: number, W: number, options?: ShowCamOnImageOptions,
  ): Promise<Uint8Array>;

  deprocessImage(device: NativeDevice, data: Float32Array, n: number, c: number, H: number, W: number, layout: Layout): Uint8Array;
  deprocessImageAsync(
    device: NativeDevice, data: Float32Array, n: number, c: number, H: number, W: number, layout: Layout,
  ): Promise<Uint8Array>;

  greyToRgb(device: NativeDevice, grey: Uint8Array, n: number, H: number, W: number): Uint8Array;
  greyToRgbAsync(device: NativeDevice, grey: Uint8Array, n: number, H: number, W: number): Promise<Uint8Array>;
  camTail(
    device: NativeDevice, a: Float32Array, grads: Float32Array[] | null, shape: FeatureShape, combine: CamCombine,
    options: CamTailOptions, guide?: CamGuide,
  ): CamTailResult;
  camTailAsync(
    device: NativeDevice, a: Float32Array, grads: Float32Array[] | null, shape: FeatureShape, combine: CamCombine,
    options: CamTailOptions, guide?: CamGuide,
  ): Promise<CamTailResult>;

  /** CUDA detection, done once by the addon and cached. */
  cudaInfo(): AddonCudaInfo;
  /** threads of the CPU pool (hardware concurrency, or GRADCAM_THREADS) */
  cpuThreads(): number;
}

export interface AddonLoad {
  addon?: NativeAddon;
  /** the file that loaded */
  path?: string;
  /** why nothing loaded: every path tried with its failure, and how to fix it */
  error?: string;
  tried: string[];
}

const ADDON_FILE = 'gradcam_native.node';

/**
 * The package root: the nearest folder above `from` with a package.json (works from lib/
 * under ts-node, dist/lib/kernels, and every dist-* output folder).
 */
export function packageRoot(from: string = __dirname): string | undefined {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'CMakeLists.txt'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The folder name of the prebuilt addon for this process: `linux-x64`, `linux-x64-musl` on musl
 * (whose libc cannot load a glibc build), `darwin-arm64`, ... (scripts/prebuild.js and
 * scripts/install.js name it the same way).
 */
export function prebuildTag(): string {
  let musl = false;
  if (process.platform === 'linux') {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    musl = !header?.glibcVersionRuntime;
  }
  return `${process.platform}-${process.arch}${musl ? '-musl' : ''}`;
}

/**
 * The paths tried, in order: GRADCAM_NATIVE_PATH; a local build of the package (build/Release,
 * build/Debug: a developer's, or one compiled at install where no prebuilt fits); the prebuilt
 * addon shipped in the package for this platform (prebuilds/<platform>-<arch>).
 */
export function addonCandidates(): string[] {
  const list: string[] = [];
  if (process.env.GRADCAM_NATIVE_PATH) list.push(path.resolve(process.env.GRADCAM_NATIVE_PATH));
  const root = packageRoot();
  if (root) {
    list.push(path.join(root, 'build', 'Release', ADDON_FILE));
    list.push(path.join(root, 'build', 'Debug', ADDON_FILE));
    list.push(path.join(root, 'prebuilds', prebuildTag(), ADDON_FILE));
  }
  return list;
}

/** How to get the addon built, for messages: the command a consumer has (not the repo's npm scripts). */
export function buildAdvice(root: string | undefined = packageRoot()): string {
  return (
    `build it with \`npx cmake-js compile\` in ${root ?? 'the gradcam-node folder'}, or \`npm rebuild gradcam-node\` in the ` +
    'project that installed it (needs CMake and a C++17 compiler; nvcc for the CUDA kernels)'
  );
}

let loaded: AddonLoad | undefined;

/** Loads the addon once; never throws. GRADCAM_DISABLE_NATIVE=1 skips it (to test fallbacks). */
export function loadAddon(): AddonLoad {
  if (loaded) return loaded;
  if (process.env.GRADCAM_DISABLE_NATIVE === '1') {
    loaded = { error: 'disabled by GRADCAM_DISABLE_NATIVE=1', tried: [] };
    return loaded;
  }
  const tried = addonCandidates();
  const failures: string[] = [];
  for (const file of tried) {
    if (!fs.existsSync(file)) {
      failures.push(`${file}: not found`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const addon = require(file) as NativeAddon;
      if (typeof addon.gradcamTail !== 'function' || typeof addon.camTail !== 'function' || typeof addon.cudaInfo !== 'function') {
        failures.push(`${file}: not the gradcam-node addon (missing exports)`);
        continue;
      }
      loaded = { addon, path: file, tried };
      return loaded;
    } catch (e) {
      failures.push(`${file}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    }
  }
  if (tried.length === 0) failures.push(`no package root (package.json + CMakeLists.txt) above ${__dirname}`);
  loaded = {
    error:
      `the native addon ${ADDON_FILE} could not be loaded (${failures.join('; ')}); ${buildAdvice()}`,
    tried,
  };
  return loaded;
}

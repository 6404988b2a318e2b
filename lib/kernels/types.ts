/**
 * The kernel contract: one signature per kernel, served by three implementations with the
 * same numbers: the native addon on CUDA, the native addon on CPU threads, and the
 * pure-TypeScript twins (lib/kernels/reference.ts), which are the readable definition.
 *
 * Conventions (one vocabulary, the same names in C++):
 *  - n: batch size, k: channels of the feature map, h x w: feature-map size,
 *    H x W: output (input-image) size, c: channels of the guided (input-gradient) tensor.
 *  - layout 'nchw' (ONNX, PyTorch) or 'nhwc' (TensorFlow.js) for 4-D tensors [n,k,h,w] / [n,h,w,k].
 *  - maps (CAMs) are always [n,h,w] (or [n,H,W]), C order, float32.
 *  - every output is a fresh Float32Array unless `out` is given (then it must have the exact length).
 */

import type { ColormapName } from '../image/colormap';

export type Layout = 'nchw' | 'nhwc';
export type KernelDevice = 'cuda' | 'cpu' | 'js';
export type DeviceRequest = 'auto' | KernelDevice;

/** Shape of a 4-D feature tensor (activations A or gradients dY/dA). */
export interface FeatureShape {
  n: number;
  k: number;
  h: number;
  w: number;
  layout: Layout;
}

/** Per-channel reductions over the spatial dims, each [n,k]. */
export interface ChannelSums {
  /** sum_ij g */
  g: Float32Array;
  /** sum_ij g^2 */
  g2: Float32Array;
  /** sum_ij g^3 */
  g3: Float32Array;
  /** sum_ij A */
  a: Float32Array;
  /** sum_ij g*A */
  ga: Float32Array;
}

/** The element-wise channel sum variants: cam[n,i,j] = sum_k f(g,A)[n,k,i,j]. */
export type ElementwiseOp =
  /** HiResCAM: f = g*A */
  | 'grad-times-act'
  /** LayerCAM: f = max(g,0)*A */
  | 'relu-grad-times-act'
  /** f = max(g*A,0) (Grad-CAM element-wise) */
  | 'relu-of-grad-times-act';

/**
 * How camTail turns one round's G = dY/dA into channel weights w[n,k] (S_A = sum_ij A):
 *  - 'grad-mean':          w = mean_ij G (Grad-CAM's alpha; exactly channelMean)
 *  - 'grad-pp':            w = sum_ij max(G,0)*a_ij, a_ij = G^2 / (2G^2 + S_A*G^3 + eps), a_ij = 0 where G == 0
 *                          (pytorch-grad-cam's Grad-CAM++)
 *  - 'grad-pp-normalized': the same, divided per channel by sum_ij a_ij where that sum is not 0
 *                          (the Grad-CAM++ authors' normalization)
 *  - 'grad-act-ratio':     w = sum_ij G*A / (S_A + eps) (XGrad-CAM)
 */
export type ChannelWeighting = 'grad-mean' | 'grad-pp' | 'grad-pp-normalized' | 'grad-act-ratio';

/** How camTail forms the low-resolution map of each round from A [n,k,h,w] and that round's G. */
export type CamCombine =
  /** cam = sum_k w[n,k]*A, w from G by `weighting`; eps (default 1e-7, finite, >= 0) as above */
  | { kind: 'weights'; weighting: ChannelWeighting; eps?: number }
  /** cam = sum_k w[n,k]*A with the caller's weights, one [n*k] array per round (grads unused: pass null) */
  | { kind: 'given-weights'; weights: Float32Array[] }
  /** cam[n,i,j] = sum_k f(G,A) (elementwiseChannelSum's op) */
  | { kind: 'elementwise'; op: ElementwiseOp }
  /** the caller's raw low-resolution maps, one [n*h*w] per round (A is checked, not read; grads: null) */
  | { kind: 'given-lowres'; lowres: Float32Array[] };

/** The fused guided product of camTail: per round, inputGrads[r] * map[r] (as guidedProduct). */
export interface CamGuide {
  /** one per round, [n,c,outH,outW] or [n,outH,outW,c] as `layout` says */
  inputGrads: Float32Array[];
  c: number;
  layout: Layout;
}

/** Everything camTail produces for R rounds over one batch of n (round r at offset r * the per-round size). */
export interface CamTailResult {
  /** R, the number of rounds */
  rounds: number;
  /** [R*n*k] channel weights (kinds 'weights' and 'given-weights') */
  weights?: Float32Array;
  /** [R*n*h*w] the map before ReLU */
  lowresRaw: Float32Array;
  /** [R*n*h*w] ReLU'd (if relu) and min-max normalized per image */
  lowres: Float32Array;
  /** [R*n*outH*outW] lowres resized bilinearly, then min-max normalized again */
  map: Float32Array;
  /** [R*n*c*outH*outW] inputGrads[r] * map[r] broadcast over channels, in guide.layout (with `guide`) */
  guided?: Float32Array;
}

export interface ResizeOptions {
  /** false (default): half-pixel centres, edge clamp (OpenCV INTER_LINEAR, torch align_corners=False). */
  alignCorners?: boolean;
}

export interface GradcamTailOptions extends ResizeOptions {
  /** output size (the model input size) */
  outH: number;
  outW: number;
  /** apply ReLU to the low-resolution map (default true). false = counterfactual-free raw Captum-like map */
  relu?: boolean;
}

export type CamTailOptions = GradcamTailOptions;

/** Everything the fused Grad-CAM tail produces, for a batch of n. */
export interface GradcamTailResult {
  /** [n,k] alpha = spatial mean of dY/dA */
  weights: Float32Array;
  /** [n,h,w] sum_k alpha_k A_k (before ReLU) */
  lowresRaw: Float32Array;
  /** [n,h,w] ReLU'd (if relu) and min-max normalized low-resolution map */
  lowres: Float32Array;
  /** [n,H,W] lowres resized bilinearly to outH x outW, then min-max normalized again */
  map: Float32Array;
}

export type { ColormapName } from '../image/colormap';

/** Options of the showCamOnImage picture kernel. */
export interface ShowCamOnImageOptions {
  /** default 'jet' */
  colormap?: ColormapName;
  /** weight of the image in the blend, 0..1 (pytorch-grad-cam's image_weight, default 0.5); the heatmap gets 1 - imageWeight */
  imageWeight?: number;
  /** 3 (default): RGB bytes; 4: RGBA with alpha 255 (what a raw 'rgba' picture is) */
  channels?: 3 | 4;
}

/**
 * The picture kernels: CAMs and guided outputs to bytes, n pictures per call, outputs
 * interleaved uint8 [n,H,W,channels] (fresh Uint8Arrays), byte-equal on every device.
 * Twins: lib/kernels/pictures.ts; native: native/colormap.*, native/deprocess.*.
 */
export interface PictureKernelsSync {
  /** [n,H,W,3] RGB: cv2.applyColorMap(np.uint8(255 * map), colormap) (in RGB order) for maps [n,H,W] in [0,1]. */
  applyColormap(maps: Float32Array, n: number, H: number, W: number, colormap: ColormapName): Uint8Array;
  /**
   * [n,H,W,channels] pytorch-grad-cam's show_cam_on_image(img, mask, use_rgb=True) per image:
   * images float RGB [n,H,W,3] with values at most 1 (RangeError otherwise), maps [n,H,W] in [0,1].
   */
  showCamOnImage(images: Float32Array, maps: Float32Array, n: number, H: number, W: number, options?: ShowCamOnImageOptions): Uint8Array;
  /**
   * [n,H,W,c] pytorch-grad-cam's deprocess_image per image of data ([n,c,H,W] 'nchw' or
   * [n,H,W,c] 'nhwc'): mean and std over the image in numpy's float32 arithmetic.
   */
  deprocessImage(data: Float32Array, n: number, c: number, H: number, W: number, layout: Layout): Uint8Array;
  /** [n,H,W,3]: a grey picture [n,H,W] in three channels. */
  greyToRgb(grey: Uint8Array, n: number, H: number, W: number): Uint8Array;
}

/** The synchronous kernel set. Each implementation (cuda, cpu, js) provides all of them. */
export interface KernelsSync extends PictureKernelsSync {
  /** [n,k] spatial mean per channel: Grad-CAM's alpha. */
  channelMean(x: Float32Array, shape: FeatureShape): Float32Array;
  /** the five per-channel sums of g and A (Grad-CAM++, XGrad-CAM). */
  channelSums(g: Float32Array, a: Float32Array, shape: FeatureShape): ChannelSums;
  /** [n,h,w] cam = sum_k weights[n,k] * A[n,k,i,j], then max(cam,0) when relu. */
  weightedChannelSum(weights: Float32Array, a: Float32Array, shape: FeatureShape, relu: boolean): Float32Array;
  /** [n,h,w] cam = sum_k f(g,A), then max(cam,0) when relu. */
  elementwiseChannelSum(g: Float32Array, a: Float32Array, shape: FeatureShape, op: ElementwiseOp, relu: boolean): Float32Array;
  /**
   * [n,outH,outW] bilinear resize of n single-channel maps [n,h,w]; up or down, any sizes.
   * `out`: write into this array (length n*outH*outW, not overlapping x) and return it, instead of a new one.
   */
  resizeBilinear(x: Float32Array, n: number, h: number, w: number, outH: number, outW: number, options?: ResizeOptions, out?: Float32Array): Float32Array;
  /** per image: x = x - min; x = x / (max(x) + 1e-7) (pytorch-grad-cam's scale_cam_image). Returns a new array. */
  minMaxNormalize(x: Float32Array, n: number, size: number): Float32Array;
  /**
   * out[n,c,y,x] = G[n,c,y,x] * cam[n,y,x], broadcast over c; G in `layout`
   * (nchw: [n,c,H,W]; nhwc: [n,H,W,c]), cam [n,H,W]. The output has G's layout.
   * `out`: write into this array (G's length, overlapping neither input) and return it, instead of a new one:
   * a pipeline that reuses its buffers saves the page faults of a fresh array.
   */
  guidedProduct(guided: Float32Array, cam: Float32Array, n: number, c: number, H: number, W: number, layout: Layout, out?: Float32Array): Float32Array;
  /** The whole Grad-CAM tail in one call: weights -> weighted sum -> ReLU -> normalize -> resize -> normalize. */
  gradcamTail(a: Float32Array, g: Float32Array, shape: FeatureShape, options: GradcamTailOptions): GradcamTailResult;
  /**
   * The generalized CAM tail over R rounds (e.g. the top-R classes of one batch) in one call: A is
   * passed once; per round: the low-resolution map by `combine` -> ReLU (options.relu) ->
   * normalize -> resize -> normalize, and with `guide` the guided product with the resized map.
   * Round r equals running the single kernels on round r alone (gradcamTail for 'grad-mean').
   * `grads`: one [n*k*h*w] array per round for kinds 'weights' and 'elementwise', else null.
   */
  camTail(
    a: Float32Array,
    grads: Float32Array[] | null,
    shape: FeatureShape,
    combine: CamCombine,
    options: CamTailOptions,
    guide?: CamGuide,
  ): CamTailResult;
}

/** The Promise variants: same arguments, work done off the main thread. */
export type KernelsAsync = {
  [K in keyof KernelsSync]: (...args: Parameters<KernelsSync[K]>) => Promise<ReturnType<KernelsSync[K]>>;
};

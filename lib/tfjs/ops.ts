/**
 * The differentiable building blocks the model interpreters run: plain tf ops wherever their
 * gradient flows only to the input, and tf.customGrad where the backward rule must differ:
 *  - the ReLU rules of the input gradient (and, on request, of ReLU6): plain grad * (x > 0),
 *    guided grad * (x > 0) * (grad > 0), deconvnet max(grad, 0);
 *  - ReLU6 with PyTorch's backward (gradient only where 0 < x < 6; tfjs also passes x == 6);
 *  - a depthwise convolution whose input gradient runs as another depthwise convolution, so it
 *    needs no DepthwiseConv2dNativeBackpropInput kernel (missing in wasm) and never computes the
 *    filter gradient.
 * Every convolution gets explicit padding (tf.pad, then 'valid'), which is exact for PyTorch's
 * symmetric pads as well as TensorFlow's 'same'.
 */
import * as tf from '@tensorflow/tfjs';
import type { ReluRule } from '../cam/methods';

/** Which backward rules a run uses. */
export interface RunMode {
  /** the ReLU backward rule (see ReluRule) */
  rule: ReluRule;
  /** apply the rule to ReLU6 too (the guidedRelu6 option); else ReLU6 keeps its plain gradient */
  relu6: boolean;
}

export const PLAIN: RunMode = { rule: 'plain', relu6: false };

type CustomGradFn = Parameters<typeof tf.customGrad>[0];
// Backward rules get their forward input through save(), not the closure: tf.grad disposes the
// forward pass's intermediate tensors before running the backward pass (save() keeps a copy).
/** tf.customGrad for a one-input op (the typings want a variadic function). */
function unaryCustomGrad(
  f: (x: tf.Tensor, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor },
): (x: tf.Tensor) => tf.Tensor {
  return tf.customGrad(f as unknown as CustomGradFn) as unknown as (x: tf.Tensor) => tf.Tensor;
}

const guidedReluOp = unaryCustomGrad((x, save) => {
  save([x]);
  return {
    value: tf.relu(x),
    gradFunc: (dy, saved) => tf.mul(tf.relu(dy), tf.step(saved[0])),
  };
});

/** 1 where 0 < x < 6 (PyTorch's hardtanh backward), as float ops (wasm's boolean ops are slow). */
function relu6Mask(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.step(x), tf.step(tf.sub(6, x)));
}

const relu6Op = unaryCustomGrad((x, save) => {
  save([x]);
  return {
    value: tf.clipByValue(x, 0, 6),
    gradFunc: (dy, saved) => tf.mul(dy, relu6Mask(saved[0])),
  };
});

const guidedRelu6Op = unaryCustomGrad((x, save) => {
  save([x]);
  return {
    value: tf.clipByValue(x, 0, 6),
    gradFunc: (dy, saved) => tf.mul(tf.relu(dy), relu6Mask(saved[0])),
  };
});

/** Deconvnet: the backward pass ignores the forward input and passes max(grad, 0). */
const deconvReluOp = unaryCustomGrad((x) => ({ value: tf.relu(x), gradFunc: (dy) => tf.relu(dy) }));
const deconvRelu6Op = unaryCustomGrad((x) => ({ value: tf.clipByValue(x, 0, 6), gradFunc: (dy) => tf.relu(dy) }));

export function relu(x: tf.Tensor, mode: RunMode): tf.Tensor {
  if (probe && x.rank === 4) probe.relu++;
  return mode.rule === 'guided' ? guidedReluOp(x) : mode.rule === 'deconvnet' ? deconvReluOp(x) : tf.relu(x);
}

export function relu6(x: tf.Tensor, mode: RunMode): tf.Tensor {
  if (probe && x.rank === 4) probe.relu6++;
  if (!mode.relu6 || mode.rule === 'plain') return relu6Op(x);
  return mode.rule === 'guided' ? guidedRelu6Op(x) : deconvRelu6Op(x);
}

/** Counts of the ReLU and ReLU6 ops on feature maps (4-D) run while countActivations' function runs. */
let probe: { relu: number; relu6: number } | undefined;

/** How many ReLUs and ReLU6s on feature maps (the ops a ReLU rule can apply to) `run` passes through. */
export function countActivations(run: () => void): { relu: number; relu6: number } {
  const prev = probe;
  const counts = { relu: 0, relu6: 0 };
  probe = counts;
  try {
    run();
  } finally {
    probe = prev;
  }
  return counts;
}

/** ReLU with an upper bound (Keras ReLU(max_value)); 6 is ReLU6. */
export function clippedRelu(x: tf.Tensor, maxValue: number, mode: RunMode): tf.Tensor {
  if (maxValue === 6) return relu6(x, mode);
  const r = relu(x, mode);
  return Number.isFinite(maxValue) ? tf.minimum(r, maxValue) : r;
}

/** A named activation (Keras / TF op names, lowercase). `softmax` only when not at the logits. */
export function activation(name: string, x: tf.Tensor, mode: RunMode, alpha = 0.2): tf.Tensor {
  switch (name) {
    case 'linear':
    case 'identity':
    case '':
      return x;
    case 'relu':
      return relu(x, mode);
    case 'relu6':
      return relu6(x, mode);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'hard_sigmoid':
    case 'hardsigmoid':
      return tf.clipByValue(tf.add(tf.mul(x, 0.2), 0.5), 0, 1);
    case 'tanh':
      return tf.tanh(x);
    case 'elu':
      return tf.elu(x);
    case 'selu':
      return tf.selu(x);
    case 'softplus':
      return tf.softplus(x);
    case 'softsign':
      return tf.div(x, tf.add(tf.abs(x), 1));
    case 'swish':
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.div(x, Math.SQRT2)), 1));
    case 'leakyrelu':
      return tf.leakyRelu(x, alpha);
    case 'softmax':
      return tf.softmax(x);
    default:
      throw new Error(`unsupported activation '${name}'`);
  }
}

export const KNOWN_ACTIVATIONS = new Set([
  'linear', 'identity', '', 'relu', 'relu6', 'sigmoid', 'hard_sigmoid', 'hardsigmoid', 'tanh', 'elu', 'selu',
  'softplus', 'softsign', 'swish', 'silu', 'gelu', 'leakyrelu', 'softmax',
]);

/** Explicit [top, bottom, left, right] pads of a TF-style 'same' or 'valid' window. */
export function windowPads(
  padding: 'same' | 'valid',
  inH: number, inW: number, kH: number, kW: number, sH: number, sW: number, dH = 1, dW = 1,
): [number, number, number, number] {
  if (padding === 'valid') return [0, 0, 0, 0];
  const ekH = (kH - 1) * dH + 1;
  const ekW = (kW - 1) * dW + 1;
  const totalH = Math.max((Math.ceil(inH / sH) - 1) * sH + ekH - inH, 0);
  const totalW = Math.max((Math.ceil(inW / sW) - 1) * sW + ekW - inW, 0);
  const top = Math.floor(totalH / 2);
  const left = Math.floor(totalW / 2);
  return [top, totalH - top, left, totalW - left];
}

export function pad4(x: tf.Tensor4D, pads: [number, number, number, number], value = 0): tf.Tensor4D {
  const [t, b, l, r] = pads;
  if (t === 0 && b === 0 && l === 0 && r === 0) return x;
  return tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], value);
}

/**
 * Zero-insertion: [n,h,w,c] -> [n,h*sH,w*sW,c] with dy at multiples of the strides (and sH-1, sW-1
 * trailing zero rows/columns, which the caller's padding accounts for: no Slice, slow in wasm).
 */
function dilate(dy: tf.Tensor4D, sH: number, sW: number): tf.Tensor4D {
  if (sH === 1 && sW === 1) return dy;
  const [n, h, w, c] = dy.shape;
  const e = tf.reshape(dy, [n, h, 1, w, 1, c]);
  const p = tf.pad(e, [[0, 0], [0, 0], [0, sH - 1], [0, 0], [0, sW - 1], [0, 0]]);
  return tf.reshape(p, [n, h * sH, w * sW, c]) as tf.Tensor4D;
}

type Pads = [number, number, number, number];
type Explicit = [[number, number], [number, number], [number, number], [number, number]];

let explicitPadding: 'auto' | boolean = 'auto';
/**
 * Whether convolutions take explicit pads. The cpu and wasm kernels do; with tfjs-node
 * (backend 'tensorflow') we pad with tf.pad and run 'valid' rather than rely on TensorFlow's
 * EXPLICIT padding for every op. Tests force either path.
 */
export function setExplicitPadding(mode: 'auto' | boolean): void {
  explicitPadding = mode;
}

/** (input, pad argument) for a convolution of x with [top, bottom, left, right] pads. */
function padded(x: tf.Tensor4D, [t, b, l, r]: Pads): [tf.Tensor4D, 'valid' | Explicit] {
  if (t === 0 && b === 0 && l === 0 && r === 0) return [x, 'valid'];
  const direct = explicitPadding === 'auto' ? tf.getBackend() !== 'tensorflow' : explicitPadding;
  if (direct) return [x, [[0, 0], [t, b], [l, r], [0, 0]]];
  return [tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]), 'valid'];
}

function conv2dPadded(x: tf.Tensor4D, f: tf.Tensor4D, strides: [number, number] | number, pads: Pads, dilations: [number, number] = [1, 1]): tf.Tensor4D {
  const [xp, pad] = padded(x, pads);
  return tf.conv2d(xp, f, strides, pad, 'NHWC', dilations);
}

function depthwisePadded(x: tf.Tensor4D, f: tf.Tensor4D, strides: [number, number] | number, pads: Pads, dilations: [number, number] = [1, 1]): tf.Tensor4D {
  const [xp, pad] = padded(x, pads);
  return tf.depthwiseConv2d(xp, f, strides, pad, 'NHWC', dilations);
}

/**
 * Pads of the input-gradient convolution dx = conv(dilate(dy), flipped filter, stride 1, pads) for
 * dy dilated to out*s rows (dilate() leaves s-1 trailing zeros): a negative bottom/right pad means
 * cropping that many trailing zeros. Undefined when the top/left pad would be negative (pads wider
 * than the kernel): the library gradient runs then.
 */
function backwardPads(inH: number, inW: number, outH: number, outW: number, kH: number, kW: number, sH: number, sW: number, [t, , l]: Pads): Pads | undefined {
  const p: Pads = [kH - 1 - t, inH + t - 1 - (outH - 1) * sH - (sH - 1), kW - 1 - l, inW + l - 1 - (outW - 1) * sW - (sW - 1)];
  return p[0] >= 0 && p[2] >= 0 && p[1] >= -(sH - 1) && p[3] >= -(sW - 1) ? p : undefined;
}

/**
 * A convolution (regular, or depthwise with channel multiplier 1) whose gradient flows to x only and
 * runs as a forward convolution of the zero-dilated dy with the flipped filter: the fast forward
 * kernels (XNNPACK in wasm) instead of the generic backprop kernels, no filter gradient ever, and no
 * DepthwiseConv2dNativeBackpropInput (missing in wasm).
 */
function convInputOnly(x: tf.Tensor4D, filter: tf.Tensor4D, strides: [number, number], pads: Pads, depthwise: boolean, backFilter?: tf.Tensor4D): tf.Tensor4D {
  const [kH, kW] = filter.shape;
  const [sH, sW] = strides;
  const [n, inH, inW] = x.shape;
  const forward = (xi: tf.Tensor4D) =>
    depthwise ? depthwisePadded(xi, filter, strides, pads) : conv2dPadded(xi, filter, strides, pads);
  const outH = Math.floor((inH + pads[0] + pads[1] - kH) / sH) + 1;
  const outW = Math.floor((inW + pads[2] + pads[3] - kW) / sW) + 1;
  const back = backwardPads(inH, inW, outH, outW, kH, kW, sH, sW, pads);
  if (!back) return forward(x); // unusual pads: tfjs's own gradient (input only: the filter is no variable on the path)
  const op = unaryCustomGrad((xi, save) => {
    save([]);
    return {
      value: forward(xi as tf.Tensor4D),
      gradFunc: (dy) => {
        let dyd = dilate(dy as tf.Tensor4D, sH, sW);
        const [, dh, dw, c] = dyd.shape;
        const p: Pads = [...back];
        if (p[1] < 0 || p[3] < 0) {
          dyd = tf.slice(dyd, [0, 0, 0, 0], [n, dh + Math.min(p[1], 0), dw + Math.min(p[3], 0), c]);
          p[1] = Math.max(p[1], 0);
          p[3] = Math.max(p[3], 0);
        }
        const bf = backFilter ?? backwardFilter(filter, depthwise);
        return depthwise ? depthwisePadded(dyd, bf, 1, p) : conv2dPadded(dyd, bf, 1, p);
      },
    };
  });
  return op(x) as tf.Tensor4D;
}

/**
 * The filter of the input-gradient convolution: spatially flipped (and, for a regular convolution,
 * in/out channels swapped). Precompute it once per layer (wasm's Reverse is slow) and pass it in.
 */
export function backwardFilter(filter: tf.Tensor4D, depthwise: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const flipped = tf.reverse(filter, [0, 1]) as tf.Tensor4D;
    return depthwise ? flipped : (tf.transpose(flipped, [0, 1, 3, 2]) as tf.Tensor4D);
  });
}

/** A depthwise convolution with explicit [top, bottom, left, right] pads. */
export function depthwiseConv(
  x: tf.Tensor4D, filter: tf.Tensor4D, strides: [number, number],
  pads: Pads, dilations: [number, number] = [1, 1], backFilter?: tf.Tensor4D,
): tf.Tensor4D {
  if (filter.shape[3] === 1 && dilations[0] === 1 && dilations[1] === 1) return convInputOnly(x, filter, strides, pads, true, backFilter);
  return depthwisePadded(x, filter, strides, pads, dilations);
}

/** A 2-D convolution with explicit [top, bottom, left, right] pads. */
export function conv(
  x: tf.Tensor4D, filter: tf.Tensor4D, strides: [number, number],
  pads: Pads, dilations: [number, number] = [1, 1], backFilter?: tf.Tensor4D,
): tf.Tensor4D {
  if (dilations[0] === 1 && dilations[1] === 1) return convInputOnly(x, filter, strides, pads, false, backFilter);
  return conv2dPadded(x, filter, strides, pads, dilations);
}

/** Max pooling with explicit pads (-Infinity padding, which never wins a window). */
export function maxPool(x: tf.Tensor4D, size: [number, number], strides: [number, number], pads: [number, number, number, number]): tf.Tensor4D {
  const [t, b, l, r] = pads;
  if (t === 0 && b === 0 && l === 0 && r === 0) return tf.maxPool(x, size, strides, 'valid');
  // tfjs pools with 'same' natively skip padded positions; explicit asymmetric pads need padding values
  return tf.maxPool(pad4(x, pads, -3.4e38), size, strides, 'valid');
}

/**
 * Max pooling over non-overlapping 'valid' windows (stride = window) whose backward sends the
 * gradient to the FIRST maximal element of each window, row-major, as PyTorch does. tfjs backends
 * do not agree on ties (all-zero windows after a ReLU are common); other poolings use tf.maxPool.
 */
export function maxPoolFirst(x: tf.Tensor4D, size: [number, number], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const [kH, kW] = size;
  if (padding !== 'valid' || strides[0] !== kH || strides[1] !== kW || (kH === 1 && kW === 1)) {
    return tf.maxPool(x, size, strides, padding);
  }
  const op = unaryCustomGrad((xi, save) => {
    save([xi]);
    return {
      value: tf.maxPool(xi as tf.Tensor4D, size, strides, 'valid'),
      gradFunc: (dy, saved) => {
        const xs = saved[0] as tf.Tensor4D;
        const [n, H, W, c] = xs.shape;
        const [, oH, oW] = dy.shape as number[];
        const crop = tf.slice(xs, [0, 0, 0, 0], [n, oH * kH, oW * kW, c]);
        const win = tf.reshape(tf.transpose(tf.reshape(crop, [n, oH, kH, oW, kW, c]), [0, 1, 3, 5, 2, 4]), [n, oH, oW, c, kH * kW]);
        const first = tf.cast(tf.oneHot(tf.argMax(win, 4), kH * kW), 'float32');
        const g = tf.mul(first, tf.expandDims(dy, 4));
        const back = tf.reshape(tf.transpose(tf.reshape(g, [n, oH, oW, c, kH, kW]), [0, 1, 4, 2, 5, 3]), [n, oH * kH, oW * kW, c]);
        return tf.pad(back, [[0, 0], [0, H - oH * kH], [0, W - oW * kW], [0, 0]]);
      },
    };
  });
  return op(x) as tf.Tensor4D;
}

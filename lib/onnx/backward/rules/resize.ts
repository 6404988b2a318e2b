/**
 * Backward rule of Resize (and Upsample): the transposed interpolation matrices.
 */
import { resizeOutput } from '../../graph';
import { NodeProto } from '../../proto';
import { Rule, inp, int, str, unsupported } from './common';

/** Resize interpolation matrix [outLen, inLen] along one axis, following ORT's coordinate rules. */
function resizeMatrix(n: NodeProto, inLen: number, outLen: number, scale: number, srcOpset: number): Float32Array {
  const mode = str(n, 'mode', 'nearest');
  // Upsample and Resize-10 index asymmetrically and take the floor
  const old = srcOpset < 11 || n.opType === 'Upsample';
  const ctm = old ? 'asymmetric' : str(n, 'coordinate_transformation_mode', 'half_pixel');
  const nearestMode = old ? 'floor' : str(n, 'nearest_mode', 'round_prefer_floor');
  const m = new Float32Array(outLen * inLen);
  for (let o = 0; o < outLen; o++) {
    let xo: number;
    switch (ctm) {
      case 'asymmetric': xo = o / scale; break;
      case 'align_corners': xo = outLen === 1 ? 0 : (o * (inLen - 1)) / (outLen - 1); break;
      case 'pytorch_half_pixel': xo = outLen > 1 ? (o + 0.5) / scale - 0.5 : 0; break;
      case 'tf_half_pixel_for_nn': xo = (o + 0.5) / scale; break;
      case 'half_pixel': xo = (o + 0.5) / scale - 0.5; break;
      default: throw unsupported(n, `coordinate_transformation_mode '${ctm}'`);
    }
    if (mode === 'nearest') {
      let i: number;
      switch (nearestMode) {
        case 'floor': i = Math.floor(xo); break;
        case 'ceil': i = Math.ceil(xo); break;
        case 'round_prefer_ceil': i = Math.round(xo); break;
        default: i = xo - Math.floor(xo) === 0.5 ? Math.floor(xo) : Math.round(xo); break;
      }
      i = Math.max(0, Math.min(inLen - 1, i));
      m[o * inLen + i] += 1;
    } else if (mode === 'linear') {
      const c = Math.max(0, Math.min(inLen - 1, xo));
      const i0 = Math.floor(c); const i1 = Math.min(inLen - 1, i0 + 1);
      const f = c - i0;
      m[o * inLen + i0] += 1 - f;
      m[o * inLen + i1] += f;
    } else {
      throw unsupported(n, `Resize mode '${mode}' (nearest and linear are supported)`);
    }
  }
  return m;
}

function transposeMatrix(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
}

export const RESIZE_RULES: Record<string, Rule> = {
  Resize: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      if (xs.length !== 4) throw unsupported(n, 'Resize of a tensor that is not 4-D');
      if (int(n, 'antialias', 0)) throw unsupported(n, 'antialias');
      const rs = resizeOutput(b.g, n, xs, (t) => b.value(t));
      if (!rs || rs.scales[0] !== 1 || rs.scales[1] !== 1) throw unsupported(n, 'sizes/scales not constant or not spatial');
      const [h, w] = [xs[2], xs[3]]; const [H, W] = [rs.out[2], rs.out[3]];
      if (h < 0 || w < 0) throw unsupported(n, 'spatial size unknown');
      // Resize is separable and linear: Y = Rh X Rw^T, so dX = Rh^T dY Rw
      const rh = resizeMatrix(n, h, H, rs.scales[2], b.srcOpset);
      const rw = resizeMatrix(n, w, W, rs.scales[3], b.srcOpset);
      const t = b.op1('MatMul', [gy[0] as string, b.f32(Array.from(rw), [W, w])]);
      return [b.op1('MatMul', [b.f32(Array.from(transposeMatrix(rh, H, h)), [h, H]), t])];
    },
  },
};

RESIZE_RULES.Upsample = RESIZE_RULES.Resize;

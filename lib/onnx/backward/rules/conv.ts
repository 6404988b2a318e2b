/**
 * Backward rules of convolutions: Conv (flipped-weight Conv, ConvTranspose or polyphase stride-1 convolutions for strided layers) and ConvTranspose.
 */
import { Shape, windowGeometry } from '../../graph';
import { NodeProto, floatTensor } from '../../proto';
import { Builder, INT64_MIN } from '../builder';
import { Rule, inp, int, ints, out, str, unsupported } from './common';

/** Conv backward to its input: flipped-weight Conv for stride 1, ConvTranspose otherwise. */
function convInputGrad(b: Builder, n: NodeProto, gy: string): string {
  const x = inp(n, 0); const w = inp(n, 1);
  const xs = b.needShape(x, n); const ws = b.needShape(w, n); const ys = b.needShape(out(n, 0), n);
  const nd = xs.length - 2;
  const group = int(n, 'group', 1);
  const geo = windowGeometry(n, xs.slice(2), ws.slice(2));
  const { kernel: k, strides: s, dilations: d, pads: p } = geo;
  if (xs.slice(2).some((v) => v < 0) || ys.slice(2).some((v) => v < 0)) throw unsupported(n, 'spatial size unknown');
  const flipPads = [...k.map((kk, i) => d[i] * (kk - 1) - p[i]), ...k.map((kk, i) => d[i] * (kk - 1) - p[nd + i])];
  if (s.every((v) => v === 1) && flipPads.every((v) => v >= 0)) {
    // dX = Conv(dY, W') with W' the per-group transposed, spatially flipped weight, built in the
    // graph from W (ORT folds it once at session creation; the file does not grow)
    const axes = k.map((_, i) => i + 2);
    const flipped = b.slice(transposedWeight(b, w, ws, group), k.map(() => -1), k.map(() => INT64_MIN), axes, k.map(() => -1));
    return b.op1('Conv', [gy, flipped], { dilations: d, group, kernel_shape: k, pads: flipPads, strides: k.map(() => 1) });
  }
  const polyphase = b.stridedConv === 'polyphase' || (b.stridedConv === 'auto' && k.every((kk, i) => kk <= s[i]));
  if (polyphase && nd === 2 && d.every((v) => v === 1) && p.every((v) => v >= 0)) {
    return convInputGradPolyphase(b, gy, xs, ys, ws, w, group, k, s, p);
  }
  const outPad = xs.slice(2).map((xin, i) => xin - ((ys[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - p[i] - p[nd + i]));
  if (outPad.some((v) => v < 0)) throw unsupported(n, `negative output padding ${outPad}`);
  return b.op1('ConvTranspose', [gy, w], { dilations: d, group, kernel_shape: k, pads: p, strides: s, output_padding: outPad });
}

/** The conv weight [Co, Ci/g, k...] as the weight of its transpose: [Ci, Co/g, k...], per group. */
function transposedWeight(b: Builder, w: string, ws: Shape, group: number): string {
  const co = ws[0]; const cig = ws[1]; const k = ws.slice(2);
  if (group === 1) return b.op1('Transpose', [w], { perm: [1, 0, ...k.map((_, i) => i + 2)] });
  if (cig === 1 && co === group) return w;
  let wt = b.op1('Reshape', [w, b.i64([group, co / group, cig, ...k])]);
  wt = b.op1('Transpose', [wt], { perm: [0, 2, 1, ...k.map((_, i) => i + 3)] });
  return b.op1('Reshape', [wt, b.i64([group * cig, co / group, ...k])]);
}

/**
 * Strided 2-D Conv backward as stride-1 convolutions, one per output phase (polyphase): the input
 * positions x with (x + pad) = rho (mod s) receive dY convolved with the taps rho, rho+s, ... of W.
 * The s*s phase results are interleaved back with Concat + Reshape. Same MACs as ConvTranspose,
 * but ORT runs them as ordinary (NCHWc) convolutions.
 */
function convInputGradPolyphase(b: Builder, gy: string, xs: Shape, ys: Shape, ws: Shape, w: string, group: number,
  k: number[], s: number[], p: number[]): string {
  const wt = transposedWeight(b, w, ws, group);
  const ci = ws[1] * group;
  const X = [xs[2], xs[3]]; const ho = [ys[2], ys[3]];
  const L = X.map((x, i) => Math.ceil(x / s[i]));
  const batch = b.slice(b.shapeOf(gy), [0], [1], [0]);
  // residue[c_h][c_w]: dX at positions c + s*j, [N, Ci, L_h, L_w]
  const residue: string[][] = Array.from({ length: s[0] }, () => new Array<string>(s[1]));
  for (let rh = 0; rh < s[0]; rh++) {
    for (let rw = 0; rw < s[1]; rw++) {
      const rho = [rh, rw];
      const M = rho.map((r, i) => Math.ceil((k[i] - r) / s[i]));
      const c = rho.map((r, i) => (((r - p[i]) % s[i]) + s[i]) % s[i]);
      if (M.some((m) => m <= 0)) {
        residue[c[0]][c[1]] = b.op1('ConstantOfShape', [b.op1('Concat', [batch, b.i64([ci, L[0], L[1]])], { axis: 0 })], { value: floatTensor('', [1], [0]) });
        continue;
      }
      // taps rho + s*m, flipped (a full convolution of dY with the sub-kernel)
      let sub = wt;
      for (let i = 0; i < 2; i++) {
        const taps = Array.from({ length: M[i] }, (_, m) => rho[i] + s[i] * (M[i] - 1 - m));
        sub = b.op1('Gather', [sub, b.i64(taps)], { axis: 2 + i });
      }
      const full = b.op1('Conv', [gy, sub], { group, kernel_shape: M, pads: [M[0] - 1, M[1] - 1, M[0] - 1, M[1] - 1], strides: [1, 1] });
      // q = j + delta for the positions x = c + s*j of this residue
      const F = ho.map((h, i) => h + M[i] - 1);
      const delta = c.map((ci2, i) => (ci2 + p[i] - rho[i]) / s[i]);
      const st = delta.map((dl) => Math.max(dl, 0));
      const en = delta.map((dl, i) => Math.min(dl + L[i], F[i]));
      let r = b.slice(full, st, en, [2, 3]);
      const before = delta.map((dl) => Math.max(0, -dl));
      const after = en.map((e, i) => L[i] - before[i] - (e - st[i]));
      r = b.pad(r, [0, 0, before[0], before[1], 0, 0, after[0], after[1]]);
      residue[c[0]][c[1]] = r;
    }
  }
  const rows = residue.map((row) => b.op1('Concat', row.map((r) => b.unsqueeze(r, [3, 5])), { axis: 5 }));
  const stacked = b.op1('Concat', rows, { axis: 3 });
  const inter = b.op1('Reshape', [stacked, b.i64([0, ci, L[0] * s[0], L[1] * s[1]])]);
  return L[0] * s[0] === X[0] && L[1] * s[1] === X[1] ? inter : b.slice(inter, [0, 0], X, [2, 3]);
}

export const CONV_RULES: Record<string, Rule> = {
  Conv: { diff: [0], grad: (b, n, gy) => [convInputGrad(b, n, gy[0] as string)] },
  ConvTranspose: {
    diff: [0],
    grad: (b, n, gy) => {
      if (ints(n, 'output_shape') || str(n, 'auto_pad', 'NOTSET') !== 'NOTSET') throw unsupported(n, 'ConvTranspose with output_shape or auto_pad');
      const xs = b.needShape(inp(n, 0), n); const ws = b.needShape(inp(n, 1), n);
      const nd = xs.length - 2;
      const k = ints(n, 'kernel_shape') ?? ws.slice(2);
      // ConvTranspose(x) is the input-gradient of a Conv with the same weight: its gradient is that Conv
      return [b.op1('Conv', [gy[0] as string, inp(n, 1)], {
        dilations: ints(n, 'dilations') ?? k.map(() => 1), group: int(n, 'group', 1), kernel_shape: k,
        pads: ints(n, 'pads') ?? new Array(2 * nd).fill(0), strides: ints(n, 'strides') ?? k.map(() => 1),
      })];
    },
  },
};

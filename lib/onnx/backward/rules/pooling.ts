/**
 * Backward rules of pooling and reductions: MaxPool (MaxUnpool or scatter-add), AveragePool, the global pools, ReduceMean, ReduceSum.
 */
import { Shape, windowGeometry } from '../../graph';
import { AttrValue, NodeProto, attr, floatTensor, getAttr } from '../../proto';
import { Builder } from '../builder';
import { Rule, int, ints, inp, out, unsupported } from './common';

/** Can two windows of this MaxPool (or GlobalMaxPool) share an input position? Unknown shapes: assume so. */
export function maxPoolOverlaps(n: NodeProto, xs: Shape | undefined): boolean {
  if (n.opType === 'GlobalMaxPool') return false;
  if (!xs || xs.slice(2).some((v) => v < 0)) return true;
  if ((ints(n, 'dilations') ?? []).some((v) => v !== 1)) return true;
  const nd = xs.length - 2;
  const geo = windowGeometry(n, xs.slice(2));
  // MaxUnpool also refuses ceil-mode windows that hang over the end: those take the scatter-add too
  const overhang = geo.kernel.some((k, i) => (geo.out[i] - 1) * geo.strides[i] + k - geo.pads[i] - geo.pads[nd + i] > xs[2 + i]);
  return overhang || geo.kernel.some((k, i) => geo.out[i] > 1 && k > geo.strides[i]);
}

function reduceGrad(b: Builder, n: NodeProto, g: string, mean: boolean): string {
  const x = inp(n, 0);
  const xs = b.needShape(x, n);
  const r = xs.length;
  const axesIn = (n.opType === 'ReduceSum' && b.srcOpset >= 13) || b.srcOpset >= 18;
  let axes = axesIn ? (inp(n, 1) ? b.value(inp(n, 1)) : []) : ints(n, 'axes') ?? [];
  if (!axes) throw unsupported(n, 'axes are not constant');
  if (axes.length === 0) {
    if (int(n, 'noop_with_empty_axes', 0)) return g;
    axes = xs.map((_, i) => i);
  }
  axes = axes.map((a) => (a < 0 ? a + r : a)).sort((p, q) => p - q);
  let gg = g;
  if (!int(n, 'keepdims', 1)) gg = b.unsqueeze(gg, axes);
  if (mean) {
    const count = axes.reduce((a, i) => a * xs[i], 1);
    if (count <= 0) throw unsupported(n, 'reduced size unknown');
    gg = b.mul(gg, b.f32([1 / count]));
  }
  return b.op1('Expand', [gg, b.shapeOf(x)]);
}

export const POOLING_RULES: Record<string, Rule> = {
  MaxPool: {
    diff: [0],
    grad: (b, n, gy) => {
      if (int(n, 'storage_order', 0) !== 0) throw unsupported(n, 'storage_order=1');
      const x = inp(n, 0);
      // recompute with Indices (ORT: the first maximum of each window, row-major, as PyTorch)
      let idx = out(n, 1);
      if (!idx) {
        const attrs: Record<string, AttrValue> = {};
        for (const a of n.attribute ?? []) {
          const v = getAttr(n, a.name as string);
          if (v !== undefined) attrs[a.name as string] = v as AttrValue;
        }
        idx = b.op('MaxPool', [x], attrs, 2)[1];
      }
      if (!maxPoolOverlaps(n, b.shape(x))) {
        // windows do not overlap: every input position receives at most one gradient, and
        // MaxUnpool places it (cheaper than the scatter-add, and no opset 16 needed)
        const xs = b.needShape(x, n);
        const geo = windowGeometry(n, xs.slice(2));
        return [b.op1('MaxUnpool', [gy[0] as string, idx, b.shapeOf(x)], { kernel_shape: geo.kernel, strides: geo.strides, pads: geo.pads })];
      }
      // scatter-add into a flat zero tensor: overlapping windows that share a maximum sum up
      const flat = b.i64([-1]);
      const zeros = b.op1('ConstantOfShape', [b.shapeOf(b.op1('Reshape', [x, flat]))], { value: floatTensor('', [1], [0]) });
      const g = b.op1('ScatterElements', [zeros, b.op1('Reshape', [idx, flat]), b.op1('Reshape', [gy[0] as string, flat])], { axis: 0, reduction: 'add' });
      return [b.reshapeLike(g, x)];
    },
  },
  AveragePool: {
    diff: [0],
    grad: (b, n, gy) => {
      const x = inp(n, 0);
      const xs = b.needShape(x, n);
      const nd = xs.length - 2;
      const sp = xs.slice(2);
      if (sp.some((v) => v < 0)) throw unsupported(n, 'spatial size unknown');
      if ((ints(n, 'dilations') ?? []).some((v) => v !== 1)) throw unsupported(n, 'dilated AveragePool');
      const geo = windowGeometry(n, sp);
      const { kernel: k, strides: s, pads: p, out: o } = geo;
      const include = int(n, 'count_include_pad', 0) === 1;
      // the divisor ORT uses for each output position (windows clipped to the padded extent or the input)
      const divs: number[][] = o.map((len, i) => Array.from({ length: len }, (_, j) => {
        const st = j * s[i] - p[i];
        const en = Math.min(st + k[i], sp[i] + p[nd + i]);
        return include ? en - st : Math.min(en, sp[i]) - Math.max(st, 0);
      }));
      const kprod = k.reduce((a, c) => a * c, 1);
      let g = gy[0] as string;
      const uniform = divs.every((d) => d.every((v) => v === k[divs.indexOf(d)]));
      if (uniform) {
        g = b.mul(g, b.f32([1 / kprod]));
      } else {
        const total = o.reduce((a, c) => a * c, 1);
        const m = new Float32Array(total);
        for (let idx = 0; idx < total; idx++) {
          let rem = idx; let div = 1;
          for (let i = nd - 1; i >= 0; i--) { div *= divs[i][rem % o[i]]; rem = Math.floor(rem / o[i]); }
          m[idx] = 1 / div;
        }
        g = b.mul(g, b.f32(Array.from(m), o));
      }
      // scatter each output back over its window: ConvTranspose with a ones kernel on [N*C,1,...]
      const g1 = b.op1('Reshape', [g, b.i64([-1, 1, ...o])]);
      const full = o.map((len, i) => (len - 1) * s[i] + k[i] - p[i] - p[nd + i]);
      const outPad = sp.map((v, i) => Math.max(0, v - full[i]));
      let ct = b.op1('ConvTranspose', [g1, b.f32(new Array(kprod).fill(1), [1, 1, ...k])], {
        kernel_shape: k, pads: p, strides: s, output_padding: outPad,
      });
      if (full.some((v, i) => v > sp[i])) ct = b.slice(ct, sp.map(() => 0), sp, sp.map((_, i) => i + 2));
      return [b.reshapeLike(ct, x)];
    },
  },
  GlobalAveragePool: {
    diff: [0],
    grad: (b, n, gy) => {
      const x = inp(n, 0);
      const xs = b.needShape(x, n);
      const hw = xs.slice(2).reduce((a, c) => a * c, 1);
      if (hw <= 0) throw unsupported(n, 'spatial size unknown');
      return [b.op1('Expand', [b.mul(gy[0] as string, b.f32([1 / hw])), b.shapeOf(x)])];
    },
  },
  GlobalMaxPool: {
    diff: [0],
    grad: (b, n, gy, need, m) => {
      const xs = b.needShape(inp(n, 0), n);
      if (xs.slice(2).some((v) => v < 0)) throw unsupported(n, 'spatial size unknown');
      const pool: NodeProto = { ...n, opType: 'MaxPool', attribute: [attr('kernel_shape', xs.slice(2))] };
      return POOLING_RULES.MaxPool.grad(b, pool, gy, need, m);
    },
  },
  ReduceMean: { diff: [0], grad: (b, n, gy) => [reduceGrad(b, n, gy[0] as string, true)] },
  ReduceSum: { diff: [0], grad: (b, n, gy) => [reduceGrad(b, n, gy[0] as string, false)] },
};

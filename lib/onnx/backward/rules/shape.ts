/**
 * Backward rules of layout ops: identity-like, reshapes, Concat/Split, Transpose, Pad/Slice/Gather, Expand, Cast.
 */
import { isFloatType, sliceParams, splitSizes } from '../../graph';
import { DataType, floatTensor } from '../../proto';
import { INT64_MAX } from '../builder';
import { Rule, inp, int, ints, out, passThrough, reshapeBack, str, unsupported } from './common';

export const SHAPE_RULES: Record<string, Rule> = {
  Identity: passThrough,
  Dropout: passThrough,
  Cast: {
    diff: [0],
    grad: (b, n, gy) => {
      if (!isFloatType(int(n, 'to', DataType.FLOAT))) return [undefined];
      return [gy[0]];
    },
  },
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Expand: {
    diff: [0],
    grad: (b, n, gy) => [b.reduceTo(gy[0] as string, b.needShape(out(n, 0), n), b.needShape(inp(n, 0), n), inp(n, 0))],
  },
  Concat: {
    diff: 'all',
    grad: (b, n, gy, need) => {
      const ys = b.needShape(out(n, 0), n);
      const r = ys.length;
      let ax = int(n, 'axis', 0); if (ax < 0) ax += r;
      let off = 0;
      return (n.input ?? []).map((x, i) => {
        const len = b.needShape(x, n)[ax];
        if (len < 0) throw unsupported(n, 'concatenated size unknown');
        const st = off; off += len;
        return need[i] ? b.slice(gy[0] as string, [st], [st + len], [ax]) : undefined;
      });
    },
  },
  Split: {
    diff: [0],
    outs: 'all',
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      let ax = int(n, 'axis', 0); if (ax < 0) ax += xs.length;
      const parts = (n.output ?? []).map((y, i) => gy[i] ?? b.op1('ConstantOfShape', [b.shapeOf(y)], { value: floatTensor('', [1], [0]) }));
      if (!splitSizes(b.g, n, xs[ax], (t) => b.value(t))) throw unsupported(n, 'split sizes unknown');
      return [b.op1('Concat', parts, { axis: ax })];
    },
  },
  Transpose: {
    diff: [0],
    grad: (b, n, gy) => {
      const r = b.needShape(inp(n, 0), n).length;
      const perm = ints(n, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const invPerm = new Array(r);
      perm.forEach((p, i) => { invPerm[p] = i; });
      return [b.op1('Transpose', [gy[0] as string], { perm: invPerm })];
    },
  },
  Pad: {
    diff: [0],
    grad: (b, n, gy) => {
      const mode = str(n, 'mode', 'constant');
      if (mode !== 'constant') throw unsupported(n, `Pad mode '${mode}' (constant is supported)`);
      if (b.srcOpset >= 18 && inp(n, 3)) throw unsupported(n, 'Pad with axes');
      const pads = b.srcOpset >= 11 ? b.value(inp(n, 1)) : ints(n, 'pads');
      if (!pads) throw unsupported(n, 'pads are not constant');
      if (pads.some((v) => v < 0)) throw unsupported(n, 'negative pads');
      const r = pads.length / 2;
      if (pads.every((v) => v === 0)) return [gy[0]];
      const axes = Array.from({ length: r }, (_, i) => i);
      return [b.slice(gy[0] as string, pads.slice(0, r), pads.slice(r).map((e) => (e > 0 ? -e : INT64_MAX)), axes)];
    },
  },
  Slice: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      const sl = sliceParams(b.g, n, xs, (t) => b.value(t));
      if (!sl) throw unsupported(n, 'slice bounds are not constant');
      const pads = new Array(2 * xs.length).fill(0);
      for (const [ax, st, en, step] of sl) {
        if (step !== 1) throw unsupported(n, 'Slice with step other than 1');
        pads[ax] = st; pads[xs.length + ax] = xs[ax] - Math.max(st, en);
      }
      return [b.pad(gy[0] as string, pads)];
    },
  },
  Gather: {
    diff: [0],
    grad: (b, n, gy) => {
      const xs = b.needShape(inp(n, 0), n);
      const idx = b.value(inp(n, 1));
      const is = b.needShape(inp(n, 1), n);
      if (!idx || is.length !== 0) throw unsupported(n, 'Gather on a float tensor with non-constant or non-scalar indices');
      let ax = int(n, 'axis', 0); if (ax < 0) ax += xs.length;
      if (xs[ax] < 0) throw unsupported(n, 'gathered axis size unknown');
      const i = idx[0] < 0 ? idx[0] + xs[ax] : idx[0];
      const pads = new Array(2 * xs.length).fill(0);
      pads[ax] = i; pads[xs.length + ax] = xs[ax] - i - 1;
      return [b.pad(b.unsqueeze(gy[0] as string, [ax]), pads)];
    },
  },
};

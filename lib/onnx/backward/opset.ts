/**
 * Raising a model's opset for the generated backward nodes.
 */
import { GraphIndex, InferredGraph } from '../graph';
import { NodeProto, attr, getAttr } from '../proto';
import { Builder } from './builder';
import { flt, inp, int, ints, str, unsupported } from './rules/common';

/**
 * The model's nodes rewritten for a newer opset (raised to 16 for the scatter-add, to 13 from opset 9): the ops whose
 * arguments moved from attributes to inputs at opset 13 (Squeeze, Unsqueeze, ReduceSum, Split),
 * and Softmax-family axis defaults. Other ops of the rule set mean the same at 16.
 */
export function upgradeNodes(g: GraphIndex, inf: InferredGraph, to: number, b: Builder): NodeProto[] {
  if (g.opset >= 13 || to < 13) return g.nodes;
  const withoutAttr = (n: NodeProto, ...names: string[]) => (n.attribute ?? []).filter((a) => !names.includes(a.name as string));
  return g.nodes.map((n) => {
    if (g.opset < 11) {
      // opset 10: arguments that became inputs at 11, Upsample/Resize-10 indexing
      switch (n.opType) {
        case 'Clip': {
          const mn = getAttr(n, 'min'); const mx = getAttr(n, 'max');
          return {
            ...n, attribute: withoutAttr(n, 'min', 'max'),
            input: [inp(n, 0), typeof mn === 'number' ? b.f32([mn]) : '', typeof mx === 'number' ? b.f32([mx]) : ''],
          };
        }
        case 'Pad':
          return {
            ...n, attribute: withoutAttr(n, 'pads', 'value'),
            input: [inp(n, 0), b.i64(ints(n, 'pads') ?? []), b.f32([flt(n, 'value', 0)])],
          };
        case 'Dropout':
          return { ...n, attribute: withoutAttr(n, 'ratio') };
        case 'Slice': {
          // opset 9: starts/ends/axes as attributes
          if (g.opset >= 10) break;
          const axes = ints(n, 'axes');
          return {
            ...n, attribute: [],
            input: [inp(n, 0), b.i64(ints(n, 'starts') ?? []), b.i64(ints(n, 'ends') ?? []), ...(axes ? [b.i64(axes)] : [])],
          };
        }
        case 'Upsample': case 'Resize': {
          const mode = str(n, 'mode', 'nearest');
          const attrs = [attr('mode', mode), attr('coordinate_transformation_mode', 'asymmetric')];
          if (mode === 'nearest') attrs.push(attr('nearest_mode', 'floor'));
          return { ...n, opType: 'Resize', input: [inp(n, 0), '', inp(n, 1)], attribute: attrs };
        }
        default:
          break;
      }
    }
    switch (n.opType) {
      case 'Squeeze': case 'Unsqueeze': case 'ReduceSum': {
        const axes = ints(n, 'axes');
        if (!axes) return n;
        return { ...n, input: [inp(n, 0), b.i64(axes)], attribute: withoutAttr(n, 'axes') };
      }
      case 'Split': {
        const split = ints(n, 'split');
        if (!split) return n;
        return { ...n, input: [inp(n, 0), b.i64(split)], attribute: withoutAttr(n, 'split') };
      }
      case 'Softmax': case 'LogSoftmax': case 'Hardmax': {
        const r = inf.shapes.get(inp(n, 0))?.length;
        let ax = int(n, 'axis', 1);
        if (r === undefined) throw unsupported(n, `rank unknown while raising the opset to ${to}`);
        if (ax < 0) ax += r;
        // before 13 the op normalized over all axes from `axis` on: the same only for the last axis
        if (ax !== r - 1) throw unsupported(n, `axis ${ax} of a rank-${r} input while raising the opset to ${to} for MaxPool`);
        return { ...n, attribute: [...withoutAttr(n, 'axis'), attr('axis', ax)] };
      }
      default:
        return n;
    }
  });
}

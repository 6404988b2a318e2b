/**
 * Builds the reference networks of ../shared/reference (smallvgg, mobilenet_v2) as tfjs
 * LayersModels (NHWC) with the weights of their ONNX files, so the tfjs explainer can be checked
 * against pytorch-grad-cam's numbers. Covers exactly the ops those exports use: Conv (regular and
 * depthwise, symmetric pads as ZeroPadding2D + 'valid'), Relu, Clip(0,6), MaxPool, Pad (zero),
 * AveragePool, GlobalAveragePool, Flatten, Gemm, Add.
 */
import * as tf from '@tensorflow/tfjs';
import { getAttr, loadModel, tensorToFloat32, tensorToNumbers, type NodeProto, type TensorProto } from '../../lib/onnx/proto';

export interface OnnxAsTfjs {
  model: tf.LayersModel;
  /** the tfjs layer name whose output is the given ONNX tensor */
  layerOf(onnxTensor: string): string;
}

interface Value {
  sym: tf.SymbolicTensor;
  /** set after a Flatten of a 4-D tensor: the NHWC [h, w, c] it came from */
  flatFrom?: [number, number, number];
}

function layerName(onnxName: string): string {
  return onnxName.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]/g, '.');
}

export function onnxToTfjs(file: string): OnnxAsTfjs {
  const proto = loadModel(file);
  const g = proto.graph!;
  const inits = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) inits.set(t.name as string, t);
  const constants = new Map<string, number[]>();
  const values = new Map<string, Value>();
  const layerOfTensor = new Map<string, string>();
  const pending: Array<{ layer: tf.layers.Layer; weights: Array<{ data: Float32Array; shape: number[] }> }> = [];

  const inputInfo = g.input!.find((i) => !inits.has(i.name as string))!;
  const dims = inputInfo.type!.tensorType!.shape!.dim!.map((d) => (d.dimValue ? Number(d.dimValue) : null));
  const [, c0, h0, w0] = dims as number[];
  const input = tf.input({ shape: [h0, w0, c0], name: 'input' });
  values.set(inputInfo.name as string, { sym: input });

  const get = (name: string) => {
    const v = values.get(name);
    if (!v) throw new Error(`onnx-to-tfjs: value ${name} missing`);
    return v;
  };
  const weight = (name: string) => {
    const t = inits.get(name);
    if (!t) throw new Error(`onnx-to-tfjs: initializer ${name} missing`);
    return { data: tensorToFloat32(t), dims: (t.dims ?? []).map(Number) };
  };
  const apply = (n: NodeProto, layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[], extra: Partial<Value> = {}) => {
    const out = layer.apply(x) as tf.SymbolicTensor;
    const outName = (n.output as string[])[0];
    values.set(outName, { sym: out, ...extra });
    layerOfTensor.set(outName, layer.name);
    return out;
  };

  for (const n of g.node ?? []) {
    const name = layerName(n.name as string);
    const ins = (n.input ?? []) as string[];
    const outName = (n.output as string[])[0];
    switch (n.opType) {
      case 'Constant': {
        const t = getAttr(n, 'value') as TensorProto;
        constants.set(outName, tensorToNumbers(t));
        break;
      }
      case 'Conv': {
        const W = weight(ins[1]);
        const B = ins[2] ? weight(ins[2]) : undefined;
        const [cout, cinPerGroup, kh, kw] = W.dims;
        const group = Number(getAttr(n, 'group') ?? 1);
        const pads = (getAttr(n, 'pads') as number[] | undefined) ?? [0, 0, 0, 0];
        const strides = (getAttr(n, 'strides') as number[] | undefined) ?? [1, 1];
        let x = get(ins[0]).sym;
        if (pads.some((p) => p !== 0)) {
          x = tf.layers.zeroPadding2d({ padding: [[pads[0], pads[2]], [pads[1], pads[3]]], name: `${name}.pad` }).apply(x) as tf.SymbolicTensor;
        }
        const cin = x.shape[3] as number;
        if (group === 1) {
          const k = new Float32Array(kh * kw * cin * cout);
          for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) for (let y = 0; y < kh; y++) for (let z = 0; z < kw; z++) {
            k[((y * kw + z) * cin + i) * cout + o] = W.data[((o * cinPerGroup + i) * kh + y) * kw + z];
          }
          const layer = tf.layers.conv2d({ filters: cout, kernelSize: [kh, kw], strides, padding: 'valid', useBias: !!B, name });
          apply(n, layer, x);
          pending.push({ layer, weights: [{ data: k, shape: [kh, kw, cin, cout] }, ...(B ? [{ data: B.data, shape: [cout] }] : [])] });
        } else if (group === cin && cout === cin && cinPerGroup === 1) {
          const k = new Float32Array(kh * kw * cin);
          for (let c = 0; c < cin; c++) for (let y = 0; y < kh; y++) for (let z = 0; z < kw; z++) k[(y * kw + z) * cin + c] = W.data[(c * kh + y) * kw + z];
          const layer = tf.layers.depthwiseConv2d({ kernelSize: [kh, kw], strides, padding: 'valid', useBias: !!B, name });
          apply(n, layer, x);
          pending.push({ layer, weights: [{ data: k, shape: [kh, kw, cin, 1] }, ...(B ? [{ data: B.data, shape: [cout] }] : [])] });
        } else {
          throw new Error(`onnx-to-tfjs: grouped Conv ${n.name} (group ${group}) not supported`);
        }
        break;
      }
      case 'Relu':
        apply(n, tf.layers.reLU({ name }), get(ins[0]).sym);
        break;
      case 'Clip': {
        const lo = constants.get(ins[1])?.[0] ?? 0;
        const hi = constants.get(ins[2])?.[0] ?? Infinity;
        if (lo !== 0) throw new Error(`onnx-to-tfjs: Clip min ${lo} not supported`);
        apply(n, tf.layers.reLU({ maxValue: Number.isFinite(hi) ? hi : undefined, name }), get(ins[0]).sym);
        break;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const k = getAttr(n, 'kernel_shape') as number[];
        const s = (getAttr(n, 'strides') as number[] | undefined) ?? k;
        const pads = (getAttr(n, 'pads') as number[] | undefined) ?? [0, 0, 0, 0];
        if (pads.some((p) => p !== 0)) throw new Error(`onnx-to-tfjs: padded ${n.opType} not supported`);
        const cfg = { poolSize: k as [number, number], strides: s as [number, number], padding: 'valid' as const, name };
        apply(n, n.opType === 'MaxPool' ? tf.layers.maxPooling2d(cfg) : tf.layers.averagePooling2d(cfg), get(ins[0]).sym);
        break;
      }
      case 'Pad': {
        const p = constants.get(ins[1]) ?? [];
        if (p.some((v) => v !== 0)) throw new Error('onnx-to-tfjs: non-zero Pad not supported');
        values.set(outName, get(ins[0]));
        break;
      }
      case 'GlobalAveragePool':
        apply(n, tf.layers.globalAveragePooling2d({ name }), get(ins[0]).sym);
        break;
      case 'Flatten': {
        const v = get(ins[0]);
        if (v.sym.shape.length === 2) {
          values.set(outName, v);
        } else {
          const [, h, w, c] = v.sym.shape as number[];
          apply(n, tf.layers.flatten({ name }), v.sym, { flatFrom: [h, w, c] });
        }
        break;
      }
      case 'Gemm': {
        if (Number(getAttr(n, 'transB') ?? 0) !== 1) throw new Error('onnx-to-tfjs: Gemm without transB not supported');
        const W = weight(ins[1]);
        const B = weight(ins[2]);
        const [units, inF] = W.dims;
        const v = get(ins[0]);
        const k = new Float32Array(inF * units);
        for (let o = 0; o < units; o++) {
          for (let i = 0; i < inF; i++) {
            let j = i; // tfjs (NHWC flatten) feature index -> torch (NCHW flatten) index
            if (v.flatFrom) {
              const [h, w, c] = v.flatFrom;
              const ch = i % c;
              const xw = Math.floor(i / c) % w;
              const yh = Math.floor(i / (c * w));
              j = (ch * h + yh) * w + xw;
            }
            k[i * units + o] = W.data[o * inF + j];
          }
        }
        const layer = tf.layers.dense({ units, name });
        apply(n, layer, v.sym);
        pending.push({ layer, weights: [{ data: k, shape: [inF, units] }, { data: B.data, shape: [units] }] });
        break;
      }
      case 'Add':
        apply(n, tf.layers.add({ name }), [get(ins[0]).sym, get(ins[1]).sym]);
        break;
      default:
        throw new Error(`onnx-to-tfjs: op ${n.opType} not supported`);
    }
  }
  const outName = g.output![0].name as string;
  const model = tf.model({ inputs: input, outputs: get(outName).sym, name: layerName(file.replace(/.*\//, '').replace(/\.onnx$/, '')) });
  for (const { layer, weights } of pending) {
    const ts = weights.map((w) => tf.tensor(w.data, w.shape));
    layer.setWeights(ts);
    ts.forEach((t) => t.dispose());
  }
  return {
    model,
    layerOf(onnxTensor: string) {
      const l = layerOfTensor.get(onnxTensor);
      if (!l) throw new Error(`onnx-to-tfjs: no layer outputs ${onnxTensor}`);
      return l;
    },
  };
}

/**
 * Writes bench/models/resnet18.onnx without PyTorch: torchvision's ResNet-18 graph as
 * torch.onnx.export writes it (BN folded into the convolutions, opset 17, dynamic batch axis
 * 'n', input 'input' [n,3,224,224], output 'logits' [n,1000], the export's node and tensor names),
 * with seeded random He-initialized weights. scripts/export-bench-models.py writes the same graph
 * (with torch's random weights) where torch is installed; this one serves machines without it.
 *
 * Usage: node dist/bench/resnet18-model.js [out.onnx]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { floatTensor, ModelProto, node, NodeProto, saveModel, TensorProto, ValueInfoProto } from '../lib/onnx/proto';
import { rng } from '../test/helpers/random';


export function resnet18(seed = 0): ModelProto {
  const rand = rng(seed);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let wid = 0;
  const weight = (dims: number[], std: number): string => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (rand() * 2 - 1) * std * Math.sqrt(3);
    const name = `onnx::Conv_${wid++}`;
    inits.push(floatTensor(name, dims, data));
    return name;
  };
  const conv = (scope: string, x: string, cin: number, cout: number, k: number, stride: number): string => {
    const w = weight([cout, cin, k, k], Math.sqrt(2 / (cin * k * k)));
    const b = weight([cout], 0.01);
    const out = `${scope}/Conv_output_0`;
    const pad = (k - 1) >> 1;
    nodes.push(node('Conv', [x, w, b], [out], `${scope}/Conv`, { dilations: [1, 1], group: 1, kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride] }));
    return out;
  };
  const relu = (scope: string, x: string): string => {
    const out = `${scope}/Relu_output_0`;
    nodes.push(node('Relu', [x], [out], `${scope}/Relu`));
    return out;
  };
  let x = conv('/conv1', 'input', 3, 64, 7, 2);
  x = relu('/relu', x);
  nodes.push(node('MaxPool', [x], ['/maxpool/MaxPool_output_0'], '/maxpool/MaxPool', { ceil_mode: 0, dilations: [1, 1], kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }));
  x = '/maxpool/MaxPool_output_0';
  let cin = 64;
  for (const [li, cout] of [[1, 64], [2, 128], [3, 256], [4, 512]]) {
    for (const bi of [0, 1]) {
      const s = `/layer${li}/layer${li}.${bi}`;
      const stride = bi === 0 && li > 1 ? 2 : 1;
      let y = conv(`${s}/conv1`, x, cin, cout, 3, stride);
      y = relu(`${s}/relu`, y);
      y = conv(`${s}/conv2`, y, cout, cout, 3, 1);
      const id = stride !== 1 || cin !== cout ? conv(`${s}/downsample/downsample.0`, x, cin, cout, 1, stride) : x;
      nodes.push(node('Add', [y, id], [`${s}/Add_output_0`], `${s}/Add`));
      x = relu(`${s}/relu_1`, `${s}/Add_output_0`);
      cin = cout;
    }
  }
  nodes.push(node('GlobalAveragePool', [x], ['/avgpool/GlobalAveragePool_output_0'], '/avgpool/GlobalAveragePool'));
  nodes.push(node('Flatten', ['/avgpool/GlobalAveragePool_output_0'], ['/Flatten_output_0'], '/Flatten', { axis: 1 }));
  const fw = weight([1000, 512], Math.sqrt(1 / 512));
  const fb = weight([1000], 0.01);
  nodes.push(node('Gemm', ['/Flatten_output_0', fw, fb], ['logits'], '/fc/Gemm', { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }));
  const vi = (name: string, dims: Array<number | string>): ValueInfoProto => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  return {
    irVersion: 8,
    producerName: 'gradcam-node bench/resnet18-model.ts',
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'main_graph', node: nodes, initializer: inits, input: [vi('input', ['n', 3, 224, 224])], output: [vi('logits', ['n', 1000])] },
  };
}

if (require.main === module) {
  const out = process.argv[2] ?? path.join(__dirname, '..', '..', 'bench', 'models', 'resnet18.onnx');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const bytes = saveModel(resnet18(0));
  fs.writeFileSync(out, bytes);
  console.log(`wrote ${out} (${(bytes.length / 1e6).toFixed(1)} MB)`);
}

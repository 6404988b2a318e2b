/** `gradcam layers`: the candidate target layers of a model, with shapes, the default marked. */
import * as fs from 'fs';
import { createExplainer } from '../index';
import { LayersArgs, UsageError, cacheOption } from './args';

export async function runLayers(a: LayersArgs): Promise<string[]> {
  if (!fs.existsSync(a.model)) throw new UsageError(`model not found: ${a.model}`);
  const isOnnx = a.model.toLowerCase().endsWith('.onnx');
  const explainer = await createExplainer(a.model, isOnnx ? { cache: cacheOption(a) } : { engine: a.engine });
  try {
    const layers = explainer.layers();
    if (a.json) {
      return [JSON.stringify({ model: a.model, engine: explainer.engine, layout: explainer.layout, defaultLayer: explainer.defaultLayer, layers }, null, 2)];
    }
    const shape = (s: Array<number | null>) => `[${s.map((d) => (d === null || d < 0 ? '?' : String(d))).join(',')}]`;
    const nameW = Math.max(4, ...layers.map((l) => l.name.length));
    const typeW = Math.max(4, ...layers.map((l) => l.type.length));
    const shapeW = Math.max(`output shape (${explainer.layout})`.length, ...layers.map((l) => shape(l.shape).length));
    // ONNX exports of PyTorch models: the module paths whose output a tensor is (--layer takes them too)
    const withModules = layers.some((l) => l.modules?.length);
    const moduleCol = (l: (typeof layers)[number]) => (withModules ? `  ${(l.modules ?? []).join(', ')}` : '');
    const head = `  ${'name'.padEnd(nameW)}  ${'type'.padEnd(typeW)}  ${`output shape (${explainer.layout})`.padEnd(withModules ? shapeW : 0)}${withModules ? '  module' : ''}`;
    const lines = [head.trimEnd()];
    for (const l of layers) {
      lines.push(`${l.isDefault ? '*' : ' '} ${l.name.padEnd(nameW)}  ${l.type.padEnd(typeW)}  ${shape(l.shape).padEnd(withModules ? shapeW : 0)}${moduleCol(l)}`.trimEnd());
    }
    lines.push(`${layers.length} candidate layer(s); * = default (${explainer.defaultLayer})${withModules ? '; --layer takes a tensor name, a node name or a module path' : ''}`);
    return lines;
  } finally {
    explainer.dispose();
  }
}

/**
 * ONNX target layers by the names a user knows. A layer is a tensor (the explainer's canonical
 * name), but it can also be given as
 *   - a node name: `/layer4/layer4.1/relu_1/Relu` -> that node's 4-D output;
 *   - a PyTorch module path: `layer4`, `layer4.1`, `features.18` -> the module's output, i.e. the
 *     last node in graph order inside the module's scope that yields a candidate 4-D activation.
 *
 * A PyTorch export (1.13+) names a node `/<scope>/<scope>/.../<Op>`; a Sequential's children are
 * scoped `<parent scope>.<index>` (`/layer4/layer4.1/conv1/Conv`, `/features/features.18/features.18.0/Conv`),
 * so a node's module path is its scopes, each with its parent's prefix removed, joined by dots.
 */
import { didYouMean } from '../errors';
import type { GraphIndex } from './graph';

/** The module path of a node name (`/layer4/layer4.1/relu_1/Relu` -> `layer4.1.relu_1`); '' at the root or for other names. */
export function modulePathOf(nodeName: string): string {
  if (!nodeName.startsWith('/')) return '';
  const scopes = nodeName.split('/').slice(1, -1);
  const parts: string[] = [];
  let parent = '';
  for (const s of scopes) {
    if (!s) continue;
    parts.push(parent && s.startsWith(parent + '.') ? s.slice(parent.length + 1) : s);
    parent = s;
  }
  return parts.join('.');
}

export interface LayerNames {
  /** tensor name -> module paths whose output it is (outermost first) */
  modulesOf: Map<string, string[]>;
  /** node name or module path -> tensor name */
  aliases: Map<string, string>;
}

/**
 * Aliases of the candidate layers (tensor names in graph order): node names of their producers,
 * and module paths whose output they are.
 */
export function layerNames(g: GraphIndex, candidates: readonly string[]): LayerNames {
  const isCandidate = new Set(candidates);
  const aliases = new Map<string, string>();
  const lastOfModule = new Map<string, string>();
  for (const n of g.nodes) {
    const out = (n.output ?? []).find((o) => o && isCandidate.has(o));
    if (!out) continue;
    if (n.name && !aliases.has(n.name)) aliases.set(n.name, out);
    const path = n.name ? modulePathOf(n.name) : '';
    if (!path) continue;
    // every enclosing module: layer4.1.relu_1 is inside layer4.1 and layer4; later nodes win
    const parts = path.split('.');
    for (let k = 1; k <= parts.length; k++) lastOfModule.set(parts.slice(0, k).join('.'), out);
  }
  const modulesOf = new Map<string, string[]>();
  for (const [module, tensor] of lastOfModule) {
    if (!aliases.has(module)) aliases.set(module, tensor);
    const list = modulesOf.get(tensor) ?? [];
    list.push(module);
    modulesOf.set(tensor, list);
  }
  for (const list of modulesOf.values()) list.sort((a, b) => a.split('.').length - b.split('.').length || a.localeCompare(b));
  return { modulesOf, aliases };
}

/**
 * The tensor a layer name stands for: a candidate tensor as given, else a node name or module path
 * alias; undefined when none. `names` lists what the message may suggest.
 */
export function resolveLayerName(name: string, candidates: readonly string[], names: LayerNames): string | undefined {
  if (candidates.includes(name)) return name;
  return names.aliases.get(name) ?? names.aliases.get(name.replace(/^\/+|\/+$/g, '').replace(/\//g, '.'));
}

/** ' (did you mean ...?)' over tensor names, node names and module paths. */
export function layerHint(name: string, candidates: readonly string[], names: LayerNames): string {
  return didYouMean(name, [...candidates, ...names.aliases.keys()]);
}

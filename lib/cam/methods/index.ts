/**
 * The method registry: the one place where methods are named. The API's `method` option, the
 * CLI's `--method` choices and help, the `.npy` names and the report titles all come from here.
 */
import { deconvnet } from './deconvnet';
import { eigencam } from './eigencam';
import { eigengradcam } from './eigengradcam';
import { gradcam } from './gradcam';
import { gradcamElementwise } from './gradcam-elementwise';
import { gradcamPlusPlus } from './gradcam-plusplus';
import { guidedBackprop } from './guided-backprop';
import { guidedGradcam } from './guided-gradcam';
import { hirescam } from './hirescam';
import { layercam } from './layercam';
import { saliency } from './saliency';
import type { MethodDef, ReluRule } from './types';
import { xgradcam } from './xgradcam';

export type { CamRecipe, ChannelWeighting, MethodDef, ReluRule } from './types';
export { RELU_RULES } from './types';

const LIST = [
  gradcam, gradcamPlusPlus, xgradcam, hirescam, layercam, gradcamElementwise, eigencam, eigengradcam,
  saliency, deconvnet, guidedBackprop, guidedGradcam,
] as const satisfies readonly MethodDef[];

/** A method's name: 'gradcam' | 'gradcam++' | ... */
export type Method = (typeof LIST)[number]['name'];

export const METHODS: readonly MethodDef[] = LIST;
export const METHOD_NAMES: readonly Method[] = LIST.map((m) => m.name);
const BY_NAME = new Map<string, MethodDef>(LIST.map((m) => [m.name, m]));

/** The default method. */
export const DEFAULT_METHOD = gradcam.name;

/** The definition of a registered method, or undefined. */
export function findMethod(name: string): MethodDef | undefined {
  return BY_NAME.get(name);
}

/** The method whose CAM recipe a method uses (itself, or the CAM method a guided one builds on). */
export function camMethodOf(def: MethodDef): MethodDef {
  return def.guidedOf ? (BY_NAME.get(def.guidedOf) as MethodDef) : def;
}

/** The ReLU rule whose input gradient is used for the guided product. */
export const GUIDED_RULE = guidedBackprop.inputGradient;
/** The method whose pictures and arrays the guided product's input gradient is filed under. */
export const GUIDED_METHOD = guidedBackprop;

/** The input-gradient method whose gradient follows `rule` (saliency, deconvnet, guided-backprop). */
export function inputGradientMethodOf(rule: ReluRule): MethodDef {
  return METHODS.find((m) => !m.guidedOf && m.inputGradient === rule) as MethodDef;
}

/** What an explanation's arrays are called in files and titles: the stem of `<stem>.npy` and of each picture. */
export interface OutputNames {
  /** the CAM map (absent for the input-gradient methods) */
  map?: { stem: string; title: string };
  /** the raw input gradient */
  inputGradient?: { stem: string; title: string };
  /** map x guided backprop */
  guidedMap?: { stem: string; title: string };
}

/** Output names of a method run with or without the `guided` option. */
export function outputNamesOf(method: MethodDef, guided: boolean, rule?: ReluRule): OutputNames {
  const cam = camMethodOf(method);
  const names: OutputNames = {};
  if (cam.cam) names.map = { stem: cam.name, title: cam.title };
  const r = method.inputGradient ?? (guided || method.guidedOf ? GUIDED_RULE : rule);
  if (r) {
    const g = inputGradientMethodOf(r);
    names.inputGradient = { stem: g.name, title: g.title };
  }
  if (cam.cam && (guided || method.guidedOf)) {
    const named = METHODS.find((m) => m.guidedOf === cam.name);
    names.guidedMap = named ? { stem: named.name, title: named.title } : { stem: `guided-${cam.name}`, title: `Guided ${cam.title}` };
  }
  return names;
}

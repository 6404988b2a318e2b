/**
 * The picture kernels (applyColormap, showCamOnImage, deprocessImage, greyToRgb) on every device
 * against each other and against the lib/image functions as they were before the kernels
 * (test/helpers/legacy-pictures.ts), byte for byte: seeded random batches (n = 1..4, odd sizes,
 * both layouts, all three colormaps, NaN and out-of-range values), pytorch-grad-cam's own
 * deprocessed bytes, the Promise APIs, and the argument errors of validate.ts and of the addon.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

import sharp from 'sharp';

import {
  applyColormap,
  COLORMAPS,
  deprocessImage,
  encodePng,
  encodePngs,
  renderOverlay,
  renderOverlays,
  showCamOnImage,
  type ColormapName,
} from '../lib/image';
import { getKernels } from '../lib/kernels';
import { type NativeAddon, loadAddon } from '../lib/kernels/addon';
import { nativeStatus } from '../lib/kernels/native';
import { reference } from '../lib/kernels/reference';
import type { Layout, PictureKernelsSync } from '../lib/kernels/types';
import { validate } from '../lib/kernels/validate';
import { legacyApplyColormap, legacyDeprocessImage, legacyGreyToRgb, legacyShowCamOnImage } from './helpers/legacy-pictures';
import { rng } from './helpers/random';

const REF_DIRS = [path.resolve(__dirname, '../../../shared/reference'), path.resolve(__dirname, '../../shared/reference'), '/work/shared/reference'];
const refDir = REF_DIRS.find((d) => fs.existsSync(path.join(d, 'manifest.json')));

function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Maps in [0,1] with the edge cases of np.uint8(255 * v): exact k/255, 0, 1, just below, NaN, out of range. */
function randomMaps(r: () => number, length: number): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const u = r();
    if (u < 0.1) a[i] = Math.fround(int(r, 0, 255) / 255);
    else if (u < 0.12) a[i] = Math.fround(Math.fround(int(r, 1, 255) / 255) - 1e-7);
    else if (u < 0.13) a[i] = [0, 1, NaN, -0.25, 1.5][int(r, 0, 4)];
    else a[i] = r();
  }
  return a;
}

/** Float RGB in [0,1], with exact 0s and 1s. */
function randomImages(r: () => number, length: number): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const u = r();
    a[i] = u < 0.05 ? 0 : u < 0.1 ? 1 : r();
  }
  return a;
}

/** Guided outputs: gradients of varied scale and offset, sometimes constant. */
function randomGuided(r: () => number, length: number, kind: number): Float32Array {
  const a = new Float32Array(length);
  const scale = [1e-4, 0.05, 3, 1000][kind % 4];
  const offset = kind % 3 === 0 ? 0 : (r() - 0.5) * scale;
  for (let i = 0; i < length; i++) a[i] = kind % 7 === 6 ? 0.25 : offset + scale * (r() * 2 - 1) ** 3;
  return a;
}

interface Case {
  n: number;
  H: number;
  W: number;
}

/** Batches: n = 1..4, odd and tiny sizes, one 224 x 224 and one over numpy's 8192-value block. */
function pictureCases(seed: number, count: number): Case[] {
  const r = rng(seed);
  const cases: Case[] = [
    { n: 1, H: 1, W: 1 },
    { n: 4, H: 1, W: 7 },
    { n: 2, H: 3, W: 5 },
    { n: 1, H: 224, W: 224 },
    { n: 3, H: 61, W: 47 },
  ];
  while (cases.length < count) cases.push({ n: int(r, 1, 4), H: int(r, 1, 19) | 1, W: int(r, 1, 23) | 1 });
  return cases;
}

function legacyBatch(n: number, per: number, fn: (b: number) => Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let b = 0; b < n; b++) parts.push(fn(b));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  parts.forEach((p, b) => out.set(p, b * per));
  return out;
}

function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.ok(got instanceof Uint8Array, `${what}: not a Uint8Array`);
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) assert.fail(`${what}: byte ${i} is ${got[i]}, want ${want[i]}`);
}

/** RGB -> RGBA with alpha 255 (what format 'rgba' gives). */
function rgba(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgb.length / 3) * 4);
  for (let i = 0; i < rgb.length / 3; i++) out.set([rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2], 255], i * 4);
  return out;
}

/** Every picture kernel's expected bytes on random inputs, from the pre-kernel functions. */
interface Expected {
  name: string;
  run: (k: PictureKernelsSync) => Uint8Array;
  runAsync: (k: { [K in keyof PictureKernelsSync]: (...a: Parameters<PictureKernelsSync[K]>) => Promise<Uint8Array> }) => Promise<Uint8Array>;
  want: Uint8Array;
}

function expectations(seed: number, count: number): Expected[] {
  const r = rng(seed);
  const out: Expected[] = [];
  pictureCases(seed, count).forEach(({ n, H, W }, t) => {
    const hw = H * W;
    const maps = randomMaps(r, n * hw);
    const cm: ColormapName = COLORMAPS[t % 3];
    const tag = `case ${t} n=${n} ${H}x${W}`;
    out.push({
      name: `applyColormap ${cm} ${tag}`,
      run: (k) => k.applyColormap(maps, n, H, W, cm),
      runAsync: (k) => k.applyColormap(maps, n, H, W, cm),
      want: legacyApplyColormap(maps, cm),
    });
    const images = randomImages(r, n * hw * 3);
    // the last image all black with imageWeight 1: cam is all 0, cam / max = NaN -> 0
    const imageWeight = t % 5 === 4 ? 1 : [0.5, 0, 0.3, 0.7][t % 4];
    if (imageWeight === 1) images.fill(0, (n - 1) * hw * 3);
    const channels = t % 2 === 0 ? 3 : 4;
    const overlayWant = legacyBatch(n, hw * 3, (b) =>
      legacyShowCamOnImage(images.subarray(b * hw * 3, (b + 1) * hw * 3), maps.subarray(b * hw, (b + 1) * hw), imageWeight, cm),
    );
    const options = { colormap: cm, imageWeight, channels } as const;
    out.push({
      name: `showCamOnImage ${cm} w=${imageWeight} ch=${channels} ${tag}`,
      run: (k) => k.showCamOnImage(images, maps, n, H, W, options),
      runAsync: (k) => k.showCamOnImage(images, maps, n, H, W, options),
      want: channels === 3 ? overlayWant : rgba(overlayWant),
    });
    for (const layout of ['nchw', 'nhwc'] as Layout[]) {
      const c = t % 3 === 1 ? 1 : 3;
      const size = c * hw;
      const data = new Float32Array(n * size);
      for (let b = 0; b < n; b++) data.set(randomGuided(r, size, t + b), b * size);
      out.push({
        name: `deprocessImage ${layout} c=${c} ${tag}`,
        run: (k) => k.deprocessImage(data, n, c, H, W, layout),
        runAsync: (k) => k.deprocessImage(data, n, c, H, W, layout),
        want: legacyBatch(n, size, (b) => legacyDeprocessImage(data.subarray(b * size, (b + 1) * size), c, H, W, layout)),
      });
    }
    const grey = Uint8Array.from({ length: n * hw }, () => int(r, 0, 255));
    out.push({
      name: `greyToRgb ${tag}`,
      run: (k) => k.greyToRgb(grey, n, H, W),
      runAsync: (k) => k.greyToRgb(grey, n, H, W),
      want: legacyBatch(n, hw * 3, (b) => legacyGreyToRgb(grey.subarray(b * hw, (b + 1) * hw), W, H)),
    });
  });
  return out;
}

/** pytorch-grad-cam's guided outputs and their deprocessed bytes (uint8 [1,3,224,224]), when ../shared/reference is there. */
function referenceGuided(): { name: string; data: Float32Array; want: Uint8Array }[] {
  if (!refDir) return [];
  const list: { name: string; data: Float32Array; want: Uint8Array }[] = [];
  for (const model of ['smallvgg', 'mobilenet_v2']) {
    for (const cls of ['argmax', 'class3']) {
      for (const what of ['guided_backprop', 'guided_gradcam']) {
        const dir = path.join(refDir, 'outputs', model, 'b1', cls);
        const src = path.join(dir, `${what}.lib.bin`);
        if (!fs.existsSync(src)) continue;
        const b = fs.readFileSync(src);
        const data = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        const ref = fs.readFileSync(path.join(dir, `${what}.lib.deprocessed.bin`));
        const hw = 224 * 224;
        const want = new Uint8Array(hw * 3); // CHW -> HWC
        for (let ch = 0; ch < 3; ch++) for (let i = 0; i < hw; i++) want[i * 3 + ch] = ref[ch * hw + i];
        list.push({ name: `${model}/${cls}/${what}`, data, want });
      }
    }
  }
  return list;
}

const CASES = expectations(20261202, 24);

describe('picture kernels: TypeScript twins', () => {
  it('equal the pre-kernel lib/image functions on random batches (both layouts, n = 1..4, three colormaps)', () => {
    for (const e of CASES) assertBytes(e.run(reference), e.want, `js ${e.name}`);
  });

  it('lib/image applyColormap, showCamOnImage and deprocessImage still make the old bytes', () => {
    const r = rng(7);
    for (const cm of COLORMAPS) {
      const map = randomMaps(r, 5 * 7);
      assertBytes(applyColormap(map, cm), legacyApplyColormap(map, cm), `applyColormap ${cm}`);
      assertBytes(applyColormap(Array.from(map), cm), legacyApplyColormap(map, cm), `applyColormap ${cm} (array)`);
      const img = randomImages(r, 5 * 7 * 3);
      assertBytes(showCamOnImage(img, map, 7, 5, { colormap: cm, alpha: 0.35 }), legacyShowCamOnImage(img, map, 0.65, cm), `showCamOnImage ${cm}`);
    }
    for (const layout of ['nchw', 'nhwc'] as Layout[]) {
      const g = randomGuided(r, 3 * 9 * 11, 2);
      assertBytes(deprocessImage(g, 3, 9, 11, layout), legacyDeprocessImage(g, 3, 9, 11, layout), `deprocessImage ${layout}`);
    }
  });

  it('deprocessImage equals pytorch-grad-cam bytes on the reference guided outputs', function () {
    const refs = referenceGuided();
    if (refs.length === 0) this.skip();
    for (const { name, data, want } of refs) assertBytes(reference.deprocessImage(data, 1, 3, 224, 224, 'nchw'), want, name);
  });

  it("the 'js' device's Promise API runs them in workers with the same bytes", async () => {
    const js = getKernels('js');
    for (const e of CASES.filter((_, i) => i % 3 === 0)) assertBytes(await e.runAsync(js.async), e.want, `js async ${e.name}`);
  });
});

describe('picture kernels: native CPU', () => {
  let addon: NativeAddon;
  before(function () {
    const a = loadAddon().addon;
    if (!a) this.skip();
    addon = a as NativeAddon;
  });

  it('equal the TypeScript twins byte for byte (sync and Promise)', async () => {
    const cpu = getKernels('cpu');
    for (const e of CASES) {
      assertBytes(e.run(cpu.sync), e.want, `cpu ${e.name}`);
      assertBytes(await e.runAsync(cpu.async), e.want, `cpu async ${e.name}`);
    }
  });

  it('every colormap entry equals the TypeScript table (all 256 indices)', () => {
    const maps = Float32Array.from({ length: 256 }, (_, i) => Math.fround(i / 255));
    for (const cm of COLORMAPS) assertBytes(addon.applyColormap('cpu', maps, 1, 16, 16, cm), legacyApplyColormap(maps, cm), cm);
  });

  it('deprocessImage equals pytorch-grad-cam bytes on the reference guided outputs, one by one and batched', function () {
    const refs = referenceGuided();
    if (refs.length === 0) this.skip();
    for (const { name, data, want } of refs) assertBytes(addon.deprocessImage('cpu', data, 1, 3, 224, 224, 'nchw'), want, name);
    const all = new Float32Array(refs.length * refs[0].data.length);
    refs.forEach((x, b) => all.set(x.data, b * x.data.length));
    const got = addon.deprocessImage('cpu', all, refs.length, 3, 224, 224, 'nchw');
    refs.forEach((x, b) => assertBytes(got.subarray(b * x.want.length, (b + 1) * x.want.length), x.want, `batched ${x.name}`));
  });

  it('runs the Promise API off the main thread and keeps inputs alive', async () => {
    const { n, H, W } = { n: 4, H: 224, W: 224 };
    const r = rng(3);
    const p = addon.showCamOnImageAsync('cpu', randomImages(r, n * H * W * 3), randomMaps(r, n * H * W), n, H, W);
    if (global.gc) global.gc();
    const out = await p;
    assert.equal(out.length, n * H * W * 3);
  });
});

describe('picture kernels: CUDA', () => {
  const st = nativeStatus();
  const why = !st.loaded ? `native addon not loaded: ${st.error}` : !st.cuda.available ? st.cuda.reason : '';
  it(`equal the TypeScript twins byte for byte${why ? ` (skipped: ${why})` : ''}`, async function () {
    if (why) this.skip();
    const cuda = getKernels('cuda');
    for (const e of CASES) {
      assertBytes(e.run(cuda.sync), e.want, `cuda ${e.name}`);
      assertBytes(await e.runAsync(cuda.async), e.want, `cuda async ${e.name}`);
    }
    for (const { name, data, want } of referenceGuided()) assertBytes(cuda.sync.deprocessImage(data, 1, 3, 224, 224, 'nchw'), want, `cuda ${name}`);
  });

  it(`says why it cannot run where there is no GPU${st.cuda.available ? ' (skipped: CUDA available)' : ''}`, function () {
    const addon = loadAddon().addon;
    if (!addon || st.cuda.available) this.skip();
    assert.throws(() => addon.greyToRgb('cuda', new Uint8Array(4), 1, 2, 2), /^Error: CUDA is not available: /);
  });
});

describe('picture kernels: argument errors', () => {
  const f = (n: number) => new Float32Array(n);
  // [call, error name, message]: validate.ts and the addon throw the same
  const bad: [string, (k: PictureKernelsSync) => unknown, string, string][] = [
    ['maps type', (k) => k.applyColormap(new Float64Array(4) as never, 1, 2, 2, 'jet'), 'TypeError', 'Expected Float32Array for maps but received Float64Array(4)'],
    ['maps length', (k) => k.applyColormap(f(3), 1, 2, 2, 'jet'), 'RangeError', 'Expected Float32Array of length 4 for maps but received Float32Array(3)'],
    ['colormap', (k) => k.applyColormap(f(4), 1, 2, 2, 'hot' as never), 'RangeError', "Expected one of 'jet', 'turbo', 'viridis' for colormap but received 'hot' of type string"],
    ['H', (k) => k.applyColormap(f(4), 1, 2.5, 2, 'jet'), 'RangeError', 'Expected positive integer for H but received 2.5 of type number'],
    ['count', (k) => k.applyColormap(f(4), 65536, 65536, 1, 'jet'), 'RangeError', 'Expected at most 2147483647 elements for out but received 12884901888 of type number'],
    ['images length', (k) => k.showCamOnImage(f(5), f(2), 1, 1, 2, {}), 'RangeError', 'Expected Float32Array of length 6 for images but received Float32Array(5)'],
    ['imageWeight', (k) => k.showCamOnImage(f(6), f(2), 1, 1, 2, { imageWeight: 1.5 }), 'RangeError', 'Expected number between 0 and 1 for options.imageWeight but received 1.5 of type number'],
    ['imageWeight type', (k) => k.showCamOnImage(f(6), f(2), 1, 1, 2, { imageWeight: '1' as never }), 'TypeError', "Expected number between 0 and 1 for options.imageWeight but received '1' of type string"],
    ['channels', (k) => k.showCamOnImage(f(6), f(2), 1, 1, 2, { channels: 2 as never }), 'RangeError', 'Expected 3 or 4 for options.channels but received 2 of type number'],
    ['options colormap', (k) => k.showCamOnImage(f(6), f(2), 1, 1, 2, { colormap: 'JET' as never }), 'RangeError', "Expected one of 'jet', 'turbo', 'viridis' for options.colormap but received 'JET' of type string"],
    ['options type', (k) => k.showCamOnImage(f(6), f(2), 1, 1, 2, 3 as never), 'TypeError', 'Expected object for options but received 3 of type number'],
    ['image > 1', (k) => k.showCamOnImage(new Float32Array([0, 0, 0, 0, 1.5, 0]), f(2), 1, 1, 2), 'RangeError', 'Expected float RGB values in [0, 1] for images but received Float32Array(6)'],
    ['layout', (k) => k.deprocessImage(f(4), 1, 1, 2, 2, 'NCHW' as never), 'RangeError', "Expected one of 'nchw', 'nhwc' for layout but received 'NCHW' of type string"],
    ['data length', (k) => k.deprocessImage(f(5), 1, 1, 2, 2, 'nchw'), 'RangeError', 'Expected Float32Array of length 4 for data but received Float32Array(5)'],
    ['c', (k) => k.deprocessImage(f(4), 1, 0, 2, 2, 'nchw'), 'RangeError', 'Expected positive integer for c but received 0 of type number'],
    ['grey type', (k) => k.greyToRgb(f(4) as never, 1, 2, 2), 'TypeError', 'Expected Uint8Array for grey but received Float32Array(4)'],
    ['grey length', (k) => k.greyToRgb(new Uint8Array(3), 1, 2, 2), 'RangeError', 'Expected Uint8Array of length 4 for grey but received Uint8Array(3)'],
    ['n type', (k) => k.greyToRgb(new Uint8Array(4), '1' as never, 2, 2), 'TypeError', "Expected positive integer for n but received '1' of type string"],
  ];

  it('validate.ts (every device through getKernels) throws TypeError/RangeError with the house messages', async () => {
    const js = getKernels('js');
    for (const [what, call, name, message] of bad) {
      assert.throws(() => call(js.sync), { name, message }, what);
      assert.throws(() => call(validate as unknown as PictureKernelsSync), { name, message }, `validate ${what}`);
    }
    await assert.rejects(js.async.greyToRgb(new Uint8Array(3), 1, 2, 2), { name: 'RangeError', message: 'Expected Uint8Array of length 4 for grey but received Uint8Array(3)' });
  });

  it('the addon checks its own arguments with the same messages, and rejects the Promise', async function () {
    const addon = loadAddon().addon;
    if (!addon) this.skip();
    const a = addon as NativeAddon;
    const direct: PictureKernelsSync = {
      applyColormap: (...x) => a.applyColormap('cpu', ...x),
      showCamOnImage: (...x) => a.showCamOnImage('cpu', ...x),
      deprocessImage: (...x) => a.deprocessImage('cpu', ...x),
      greyToRgb: (...x) => a.greyToRgb('cpu', ...x),
    };
    for (const [what, call, name, message] of bad) assert.throws(() => call(direct), { name, message }, `addon ${what}`);
    await assert.rejects(a.deprocessImageAsync('cpu', f(5), 1, 1, 2, 2, 'nchw'), { name: 'RangeError', message: 'Expected Float32Array of length 4 for data but received Float32Array(5)' });
    assert.throws(() => a.greyToRgb('gpu' as never, new Uint8Array(4), 1, 2, 2), { name: 'RangeError', message: "Expected one of 'cpu', 'cuda' for device but received 'gpu' of type string" });
  });
});

describe('picture kernels: batched rendering and parallel PNGs', () => {
  const n = 3;
  const H = 5;
  const W = 7;
  const hw = H * W;
  const r = rng(11);
  const images = randomImages(r, n * hw * 3);
  const maps = randomMaps(r, n * hw);
  const devices: ('js' | 'cpu' | 'cuda')[] = ['js'];
  if (nativeStatus().loaded) devices.push('cpu');
  if (nativeStatus().cuda.available) devices.push('cuda');

  it('renderOverlays equals renderOverlay image by image (rgba and rgb bytes, PNG pixels) on every device', async () => {
    for (const device of devices) {
      for (const format of ['rgba', 'rgb', 'png'] as const) {
        const batch = await renderOverlays(images, maps, n, W, H, { format, device, colormap: 'viridis', alpha: 0.4 });
        assert.equal(batch.length, n);
        for (let b = 0; b < n; b++) {
          const one = await renderOverlay(images.subarray(b * hw * 3, (b + 1) * hw * 3), maps.subarray(b * hw, (b + 1) * hw), W, H, { format, colormap: 'viridis', alpha: 0.4 });
          if (format === 'png') {
            assert.deepEqual(batch[b].data, one.data, `${device} png ${b}`);
            const raw = await sharp(batch[b].data as Buffer).raw().toBuffer();
            assertBytes(new Uint8Array(raw), legacyShowCamOnImage(images.subarray(b * hw * 3, (b + 1) * hw * 3), maps.subarray(b * hw, (b + 1) * hw), 0.6, 'viridis'), `${device} png pixels ${b}`);
          } else {
            assertBytes(batch[b].data as Uint8Array, one.data as Uint8Array, `${device} ${format} ${b}`);
          }
        }
      }
    }
  });

  it('encodePngs makes the PNGs of encodePng, at any compression level, and checks the level', async () => {
    const rgb = legacyShowCamOnImage(images.subarray(0, hw * 3), maps.subarray(0, hw), 0.5, 'jet');
    const all = new Uint8Array(n * hw * 3);
    for (let b = 0; b < n; b++) all.set(rgb, b * hw * 3);
    for (const compressionLevel of [0, 1, 9]) {
      const pngs = await encodePngs(all, n, W, H, 3, { compressionLevel });
      const one = await encodePng(rgb, W, H, 3, { compressionLevel });
      for (const p of pngs) assert.deepEqual(p, one);
      assertBytes(new Uint8Array(await sharp(one).raw().toBuffer()), rgb, `level ${compressionLevel} pixels`);
    }
    await assert.rejects(encodePng(rgb, W, H, 3, { compressionLevel: 10 }), { name: 'RangeError', message: 'Expected integer between 0 and 9 for compressionLevel but received 10 of type number' });
    await assert.rejects(encodePngs(all, n + 1, W, H, 3), { name: 'RangeError', message: `Expected Uint8Array of length ${(n + 1) * hw * 3} for pixels but received Uint8Array(${n * hw * 3})` });
    await assert.rejects(renderOverlays(images, maps, n, W, H, { format: 'jpeg' as never }), { name: 'RangeError', message: "Expected one of 'png', 'rgb', 'rgba' for format but received 'jpeg' of type string" });
  });
});

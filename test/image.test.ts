/**
 * lib/image: colormaps against OpenCV's construction, show_cam_on_image and deprocess_image against
 * hand-computed pixels (and pytorch-grad-cam's own bytes in ../shared/reference), .npy round trips,
 * preprocessing layouts, PNG rendering.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import {
  applyColormap,
  batchImageToRgb,
  colormapLut,
  decodeImage,
  deprocessImage,
  encodeNpy,
  encodePng,
  parseNpy,
  preprocessImages,
  readNpy,
  renderGuided,
  renderHeatmap,
  renderOverlay,
  showCamOnImage,
  toUint8Index,
  writeNpy,
} from '../lib/image';
import { NO_REFERENCE, skipBecause } from './helpers/skip';
import { hasReference, referenceDir } from './helpers/reference-data';

const refDir = hasReference() ? referenceDir() : undefined;

function rgbAt(lut: Uint8Array, i: number): number[] {
  return [lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2]];
}

describe('image: colormaps', () => {
  it('jet equals OpenCV COLORMAP_JET (RGB) at hand-computed entries', () => {
    // OpenCV: base r,g,b = clamp(1.5 - |4t - {3,2,1}|), t = i/255, lut = cvRound(255 * base) (half to even).
    // i=0:   r 0, g 0, b 0.5 -> 127.5 -> 128
    // i=64:  4t = 1.00392: r 0, g 0.50392 (=128.5/255) -> 128.5 -> 128, b 1.496 -> 1 -> 255
    // i=128: 4t = 2.00784: r 0.50784 (=129.5/255) -> 130, g 1.49 -> 255, b 0.49216 (=125.5/255) -> 126
    // i=192: 4t = 3.01176: r 1.488 -> 255, g 0.48824 (=124.5/255) -> 124, b 0
    // i=255: r 0.5 -> 128, g 0, b 0
    const jet = colormapLut('jet');
    assert.deepEqual(rgbAt(jet, 0), [0, 0, 128]);
    assert.deepEqual(rgbAt(jet, 64), [0, 128, 255]);
    assert.deepEqual(rgbAt(jet, 128), [130, 255, 126]);
    assert.deepEqual(rgbAt(jet, 192), [255, 124, 0]);
    assert.deepEqual(rgbAt(jet, 255), [128, 0, 0]);
    // i=32: g = 1.5 - |128/255 - 2| = 0.5/255 -> 0.5 -> 0 (half to even); b = 1.5 - |128/255 - 1| -> 1 -> 255
    assert.deepEqual(rgbAt(jet, 32), [0, 0, 255]);
    // i=96: r = 1.5/255 -> 1.5 -> 2 (half to even)
    assert.equal(jet[96 * 3], 2);
  });

  it('jet equals the double-precision formula with half-to-even rounding at every entry', () => {
    const jet = colormapLut('jet');
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    const half = (v: number) => {
      const r = Math.round(v);
      return Math.abs(v % 1) === 0.5 && r % 2 === 1 ? r - 1 : r;
    };
    for (let i = 0; i < 256; i++) {
      const t4 = (4 * i) / 255;
      const want = [3, 2, 1].map((o) => half(255 * clamp(1.5 - Math.abs(t4 - o))));
      // a tie computed in double may land on either side in float32; allow only those entries to differ by 1
      const got = rgbAt(jet, i);
      for (let ch = 0; ch < 3; ch++) assert.ok(Math.abs(got[ch] - want[ch]) <= 1, `entry ${i} channel ${ch}: ${got[ch]} vs ${want[ch]}`);
    }
  });

  it('turbo and viridis end points equal OpenCV/matplotlib tables (rounded)', () => {
    const viridis = colormapLut('viridis');
    const turbo = colormapLut('turbo');
    // viridis[0] = (0.267004, 0.004874, 0.329415) * 255 = (68.09, 1.24, 84.0); viridis[255] = (0.993248, 0.906157, 0.143936) * 255
    assert.deepEqual(rgbAt(viridis, 0), [68, 1, 84]);
    assert.deepEqual(rgbAt(viridis, 255), [253, 231, 37]);
    // turbo[0] = (0.18995, 0.07176, 0.23217) * 255 = (48.4, 18.3, 59.2); turbo[255] = (0.4796, 0.01583, 0.01055) * 255
    assert.deepEqual(rgbAt(turbo, 0), [48, 18, 59]);
    assert.deepEqual(rgbAt(turbo, 255), [122, 4, 3]);
    for (const lut of [viridis, turbo, colormapLut('jet')]) assert.equal(lut.length, 768);
  });

  it('applyColormap indexes with np.uint8(255 * v) (truncation), clamps and maps NaN to 0', () => {
    assert.equal(toUint8Index(0.5), 127); // 127.5 truncated
    assert.equal(toUint8Index(1), 255);
    assert.equal(toUint8Index(1.7), 255);
    assert.equal(toUint8Index(-0.2), 0);
    assert.equal(toUint8Index(NaN), 0);
    const jet = colormapLut('jet');
    const out = applyColormap(new Float32Array([0, 0.5, 1]), 'jet');
    assert.deepEqual([...out], [...rgbAt(jet, 0), ...rgbAt(jet, 127), ...rgbAt(jet, 255)]);
  });

  it('rejects an unknown colormap with a RangeError naming it', () => {
    assert.throws(() => colormapLut('hot' as never), { name: 'RangeError', message: "Expected one of 'jet', 'turbo', 'viridis' for colormap but received 'hot' of type string" });
  });
});

describe('image: show_cam_on_image overlay', () => {
  it('matches hand-computed pixels (image_weight 0.5, jet)', () => {
    // pixel 0: img (0.2,0.4,0.6), map 0 -> jet[0] = (0,0,128)/255 -> cam = (0.1, 0.2, 0.55098)
    // pixel 1: img (1,1,1),       map 1 -> jet[255] = (128,0,0)/255 -> cam = (0.75098, 0.5, 0.5); max 0.75098
    // uint8(255 * cam / max): (33, 67, 187), (255, 169, 169)
    const img = new Float32Array([0.2, 0.4, 0.6, 1, 1, 1]);
    const out = showCamOnImage(img, new Float32Array([0, 1]), 2, 1);
    assert.deepEqual([...out], [33, 67, 187, 255, 169, 169]);
  });

  it('alpha is the heatmap weight (1 - image_weight)', () => {
    const img = new Float32Array([0.2, 0.4, 0.6, 1, 1, 1]);
    const map = new Float32Array([0, 1]);
    assert.deepEqual(showCamOnImage(img, map, 2, 1, { alpha: 0.3 }), showCamOnImage(img, map, 2, 1, { imageWeight: 0.7 }));
    // alpha 0: the image alone, scaled by its max (1): uint8(255*x)
    assert.deepEqual([...showCamOnImage(img, map, 2, 1, { alpha: 0 })], [51, 102, 153, 255, 255, 255]);
    // alpha 1: the heatmap alone divided by its max (128/255): (0,0,255), (255,0,0)
    assert.deepEqual([...showCamOnImage(img, map, 2, 1, { alpha: 1 })], [0, 0, 255, 255, 0, 0]);
  });

  it('rejects bad arguments with the house message shape', () => {
    const img = new Float32Array(6);
    assert.throws(() => showCamOnImage(img, new Float32Array(2), 2, 1, { alpha: 2 }), { name: 'RangeError', message: 'Expected number between 0 and 1 for alpha but received 2 of type number' });
    assert.throws(() => showCamOnImage(img, new Float32Array(3), 2, 1), { name: 'RangeError', message: /for map/ });
    assert.throws(() => showCamOnImage(new Float32Array([2, 0, 0, 0, 0, 0]), new Float32Array(2), 2, 1), { name: 'RangeError', message: /float RGB values in \[0, 1\] for image/ });
    assert.throws(() => showCamOnImage(img, new Float32Array(2), 1.5, 1), { name: 'RangeError', message: 'Expected positive integer for width but received 1.5 of type number' });
  });
});

describe('image: deprocess_image', () => {
  it('matches hand-computed bytes', () => {
    // [1,2,3,4]: mean 2.5, std sqrt(1.25) = 1.118034; ((x-2.5)/(std+1e-5))*0.1 + 0.5, *255, truncated
    // 1 -> 0.365836*255 = 93.29 ; 2 -> 116.09 ; 3 -> 138.9 ; 4 -> 161.7
    const out = deprocessImage(new Float32Array([1, 2, 3, 4]), 1, 2, 2, 'nhwc');
    assert.deepEqual([...out], [93, 116, 138, 161]);
    // nchw [c,H,W] comes out interleaved HWC
    const chw = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const a = deprocessImage(chw, 2, 2, 2, 'nchw');
    const hwc = new Float32Array([1, 5, 2, 6, 3, 7, 4, 8]);
    assert.deepEqual(a, deprocessImage(hwc, 2, 2, 2, 'nhwc'));
  });

  it('clips to 0..255 and keeps a constant image at 127', () => {
    // 99 zeros and one 1000: mean 10, std sqrt(9900) = 99.499; 1000 -> 0.5 + 0.1 * 9.95 = 1.495 -> 1 -> 255;
    // 0 -> 0.5 - 0.1 * 0.1005 = 0.48995 -> 124.9 -> 124
    const hi = new Float32Array(100);
    hi[99] = 1000;
    const a = deprocessImage(hi, 1, 10, 10, 'nhwc');
    assert.equal(a[99], 255);
    assert.equal(a[0], 124);
    const lo = new Float32Array(100);
    lo[99] = -1000;
    const b = deprocessImage(lo, 1, 10, 10, 'nhwc');
    assert.equal(b[99], 0);
    assert.equal(b[0], 130);
    // constant: std 0, (x - mean) / 1e-5 = 0 -> 0.5 -> 127.5 -> 127
    assert.deepEqual([...deprocessImage(new Float32Array(4).fill(3), 1, 2, 2)], [127, 127, 127, 127]);
  });

  it('equals pytorch-grad-cam bytes on the reference guided outputs', function () {
    if (!refDir) skipBecause(this, NO_REFERENCE);
    let compared = 0;
    for (const model of ['smallvgg', 'mobilenet_v2']) {
      for (const cls of ['argmax', 'class3']) {
        for (const what of ['guided_backprop', 'guided_gradcam']) {
          const dir = path.join(refDir as string, 'outputs', model, 'b1', cls);
          const src = path.join(dir, `${what}.lib.bin`);
          if (!fs.existsSync(src)) continue;
          const b = fs.readFileSync(src);
          const g = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
          const ref = fs.readFileSync(path.join(dir, `${what}.lib.deprocessed.bin`)); // uint8 [1,3,224,224]
          const ours = deprocessImage(g, 3, 224, 224, 'nchw'); // HWC
          const hw = 224 * 224;
          let diff = 0;
          for (let ch = 0; ch < 3; ch++) for (let i = 0; i < hw; i++) if (ours[i * 3 + ch] !== ref[ch * hw + i]) diff++;
          assert.equal(diff, 0, `${model}/${cls}/${what}: ${diff} bytes differ`);
          compared++;
        }
      }
    }
    assert.ok(compared >= 4);
  });
});

describe('image: .npy', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-npy-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('round-trips float32 with shape, 64-byte aligned header', () => {
    const data = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 0.5 - 3);
    const file = path.join(tmp, 'a.npy');
    writeNpy(file, data, [2, 3, 4]);
    const bytes = fs.readFileSync(file);
    assert.equal(bytes.subarray(0, 6).toString('latin1'), '\x93NUMPY');
    const headerLen = bytes.readUInt16LE(8);
    assert.equal((10 + headerLen) % 64, 0);
    assert.match(bytes.subarray(10, 10 + headerLen).toString('latin1'), /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3, 4\), \} *\n$/);
    const back = readNpy(file);
    assert.deepEqual(back.shape, [2, 3, 4]);
    assert.equal(back.dtype, '<f4');
    assert.deepEqual(back.data, data);
    assert.deepEqual(parseNpy(encodeNpy(new Float32Array([7]), [1])).shape, [1]);
  });

  it('reads float64, uint8 and big-endian arrays as float32', () => {
    const make = (descr: string, shape: string, body: Buffer) => {
      let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
      h += ' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64) + '\n';
      const head = Buffer.alloc(10);
      Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
      head.writeUInt16LE(h.length, 8);
      return Buffer.concat([head, Buffer.from(h, 'latin1'), body]);
    };
    const f8 = Buffer.alloc(16);
    f8.writeDoubleLE(1.25, 0);
    f8.writeDoubleLE(-2.5, 8);
    assert.deepEqual([...parseNpy(make('<f8', '(2,)', f8)).data], [1.25, -2.5]);
    assert.deepEqual([...parseNpy(make('|u1', '(1, 3)', Buffer.from([0, 128, 255]))).data], [0, 128, 255]);
    const be = Buffer.alloc(8);
    be.writeFloatBE(3.5, 0);
    be.writeFloatBE(-1, 4);
    assert.deepEqual([...parseNpy(make('>f4', '(2,)', be)).data], [3.5, -1]);
    assert.throws(() => parseNpy(make('<c8', '(1,)', Buffer.alloc(8))), /Unsupported \.npy dtype '<c8'/);
    assert.throws(() => parseNpy(Buffer.from('not numpy at all')), /Not a \.npy file/);
  });
});

describe('image: preprocessing', () => {
  let png: Buffer;
  before(async () => {
    // a 2x1 picture: red-ish and blue-ish
    png = await sharp(Buffer.from([255, 0, 51, 0, 102, 255]), { raw: { width: 2, height: 1, channels: 3 } }).png().toBuffer();
  });

  it('decodes without resampling at the same size, RGB in [0,1]', async () => {
    const d = await decodeImage(png, 2, 1);
    assert.deepEqual([...d.rgb].map((v) => Math.round(v * 255)), [255, 0, 51, 0, 102, 255]);
    assert.equal(d.originalWidth, 2);
  });

  it('lays out nchw and nhwc with mean/std per channel', async () => {
    const spec = { width: 2, height: 1, mean: [0.5, 0, 0.2], std: [0.5, 1, 0.4] };
    const nchw = await preprocessImages([png, png], { ...spec, layout: 'nchw' });
    const nhwc = await preprocessImages([png], { ...spec, layout: 'nhwc' });
    assert.deepEqual(nchw.batch.shape, [2, 3, 1, 2]);
    assert.deepEqual(nhwc.batch.shape, [1, 1, 2, 3]);
    const v = (x: number, m: number, s: number) => Math.fround((x / 255 - m) / s);
    // nchw image 0: R plane, G plane, B plane
    const want = [v(255, 0.5, 0.5), v(0, 0.5, 0.5), v(0, 0, 1), v(102, 0, 1), v(51, 0.2, 0.4), v(255, 0.2, 0.4)];
    [...nchw.batch.data.subarray(0, 6)].forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-6, `nchw ${i}`));
    const wantHwc = [want[0], want[2], want[4], want[1], want[3], want[5]];
    [...nhwc.batch.data].forEach((x, i) => assert.ok(Math.abs(x - wantHwc[i]) < 1e-6, `nhwc ${i}`));
    // and back for display
    const rgb = batchImageToRgb(nchw.batch, 1, spec);
    [...rgb].forEach((x, i) => assert.ok(Math.abs(x - [255, 0, 51, 0, 102, 255][i] / 255) < 1e-6));
  });

  it('grey input is the ITU-R 601 luma', async () => {
    const { batch } = await preprocessImages([png], { width: 2, height: 1, channels: 1, layout: 'nhwc' });
    assert.deepEqual(batch.shape, [1, 1, 2, 1]);
    assert.ok(Math.abs(batch.data[0] - (0.2989 * 255 + 0.114 * 51) / 255) < 1e-6);
  });

  it('resizes to the model size and rejects bad specs', async () => {
    const { batch, images } = await preprocessImages([png], { width: 5, height: 4 });
    assert.deepEqual(batch.shape, [1, 3, 4, 5]);
    assert.equal(images[0].rgb.length, 5 * 4 * 3);
    await assert.rejects(preprocessImages([png], { width: 0, height: 4 }), { name: 'RangeError', message: 'Expected positive integer for width but received 0 of type number' });
    await assert.rejects(preprocessImages([png], { width: 2, height: 2, mean: [1, 2] }), { name: 'RangeError', message: /for mean/ });
    await assert.rejects(preprocessImages([png], { width: 2, height: 2, layout: 'chw' as never }), { name: 'RangeError', message: /for layout/ });
  });
});

describe('image: PNG rendering', () => {
  it('encodes heatmaps, overlays and guided pictures as PNG or raw RGBA', async () => {
    const map = Float32Array.from({ length: 12 }, (_, i) => i / 11);
    const heat = await renderHeatmap(map, 4, 3);
    const meta = await sharp(heat.data as Buffer).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 4);
    assert.equal(meta.height, 3);
    const raw = await sharp(heat.data as Buffer).raw().toBuffer();
    assert.deepEqual([...raw], [...applyColormap(map)]);
    const rgba = await renderOverlay(new Float32Array(36).fill(0.5), map, 4, 3, { format: 'rgba', colormap: 'turbo' });
    assert.equal(rgba.data.length, 48);
    assert.equal(rgba.data[3], 255);
    const g = await renderGuided(Float32Array.from({ length: 12 }, (_, i) => i - 6), 1, 3, 4, 'nchw', { format: 'rgb' });
    assert.equal(g.data.length, 36);
    assert.equal(g.data[0], g.data[1]);
    const png = await encodePng(new Uint8Array([1, 2, 3, 4]), 2, 2, 1);
    assert.equal((await sharp(png).metadata()).channels, 1);
    await assert.rejects(encodePng(new Uint8Array(3), 2, 2, 1), { name: 'RangeError', message: /for pixels/ });
  });
});

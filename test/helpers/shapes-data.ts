/**
 * Synthetic "shapes" images for the class-discrimination test (the paper's cat-and-dog figure made
 * measurable) and for bench/train-shapes.ts, which trains the small CNN committed in
 * test/fixtures/shapes-cnn. Pure TypeScript, no canvas, fully determined by a seed.
 *
 * An image: IMAGE_SIZE x IMAGE_SIZE RGB in [0,1], NHWC, on a background that is a linear colour
 * gradient in a random direction plus pixel noise; on it one or two filled shapes (disc, square,
 * triangle, plus) of random position, size, rotation and colour. The colour is drawn independently
 * of the class (only a minimum contrast to the background is enforced), so only the shape tells
 * the class. Shapes are rendered with 4x4 supersampling; an object's mask is its pixels with
 * coverage >= 0.5 and its box the tight bounding box of that mask.
 */

export const IMAGE_SIZE = 48;
export const SHAPE_CLASSES = ['disc', 'square', 'triangle', 'plus'] as const;
export const NUM_CLASSES = SHAPE_CLASSES.length;

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; same sequence on every platform. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** standard normal (Box-Muller) */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

export interface Box {
  x0: number;
  y0: number;
  /** inclusive */
  x1: number;
  y1: number;
}

export interface ShapeObject {
  cls: number;
  cx: number;
  cy: number;
  /** half extent of the shape's bounding square before rotation, pixels */
  radius: number;
  angle: number;
  color: [number, number, number];
  /** [H*W] 1 where the shape covers at least half of the pixel */
  mask: Uint8Array;
  box: Box;
}

export interface ShapeImage {
  /** [H, W, 3] in [0, 1] */
  pixels: Float32Array;
  objects: ShapeObject[];
}

/** Is the point (u, v), in the shape's own frame scaled to [-1, 1]^2, inside the shape? */
function inside(cls: number, u: number, v: number): boolean {
  switch (cls) {
    case 0: // disc
      return u * u + v * v <= 1;
    case 1: // square, a bit smaller than the frame so its area is close to the disc's
      return Math.abs(u) <= 0.88 && Math.abs(v) <= 0.88;
    case 2: {
      // upright triangle with apex at v = -1 and base at v = 0.8
      if (v < -1 || v > 0.8) return false;
      const halfWidth = ((v + 1) / 1.8) * 1.0;
      return Math.abs(u) <= halfWidth;
    }
    case 3: // plus: two bars of width 0.7
      return (Math.abs(u) <= 0.35 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.35 && Math.abs(u) <= 1);
    default:
      throw new RangeError(`unknown shape class ${cls}`);
  }
}

const SUPERSAMPLE = 4;

/**
 * Appearance parameters (the committed model was trained with these values). Stronger gradients
 * and noise (0.7 / 0.08, contrast 0.25) left the network on its initial loss plateau for well
 * over 1000 steps: the background then dominates the global average of every feature.
 */
export const STYLE = { gradient: 0.35, noiseMin: 0.02, noiseMax: 0.05, minContrast: 0.3, texture: 0.03 };

function drawBackground(rng: Rng, size: number): Float32Array {
  const px = new Float32Array(size * size * 3);
  const c0 = [rng.next(), rng.next(), rng.next()];
  const c1 = [rng.next(), rng.next(), rng.next()];
  const theta = rng.uniform(0, 2 * Math.PI);
  const dx = Math.cos(theta);
  const dy = Math.sin(theta);
  const noise = rng.uniform(STYLE.noiseMin, STYLE.noiseMax);
  const half = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // t in [0,1] along the gradient direction
      const t = 0.5 + (((x - half) * dx + (y - half) * dy) / size) * STYLE.gradient;
      for (let c = 0; c < 3; c++) {
        px[(y * size + x) * 3 + c] = c0[c] + (c1[c] - c0[c]) * t + noise * rng.normal();
      }
    }
  }
  return px;
}

/** Mean RGB of the background under a box (used to pick a contrasting object colour). */
function meanColor(px: Float32Array, size: number, box: Box): number[] {
  const m = [0, 0, 0];
  let n = 0;
  for (let y = Math.max(0, box.y0); y <= Math.min(size - 1, box.y1); y++) {
    for (let x = Math.max(0, box.x0); x <= Math.min(size - 1, box.x1); x++) {
      for (let c = 0; c < 3; c++) m[c] += px[(y * size + x) * 3 + c];
      n++;
    }
  }
  return m.map((v) => v / Math.max(1, n));
}

/** Paints one shape into px and returns its description. */
function drawShape(rng: Rng, px: Float32Array, size: number, cls: number, cx: number, cy: number, radius: number): ShapeObject {
  const angle = cls === 0 ? 0 : rng.uniform(-Math.PI / 9, Math.PI / 9);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const reach = Math.ceil(radius * 1.45) + 1;
  const approxBox = { x0: Math.floor(cx - radius), y0: Math.floor(cy - radius), x1: Math.ceil(cx + radius), y1: Math.ceil(cy + radius) };
  const bg = meanColor(px, size, approxBox);
  let color: [number, number, number];
  for (;;) {
    color = [rng.next(), rng.next(), rng.next()];
    const contrast = (Math.abs(color[0] - bg[0]) + Math.abs(color[1] - bg[1]) + Math.abs(color[2] - bg[2])) / 3;
    if (contrast >= STYLE.minContrast) break;
  }
  const texture = rng.uniform(0.0, STYLE.texture);
  const mask = new Uint8Array(size * size);
  const box: Box = { x0: size, y0: size, x1: -1, y1: -1 };
  const y0 = Math.max(0, Math.floor(cy - reach));
  const y1 = Math.min(size - 1, Math.ceil(cy + reach));
  const x0 = Math.max(0, Math.floor(cx - reach));
  const x1 = Math.min(size - 1, Math.ceil(cx + reach));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let hits = 0;
      for (let sy = 0; sy < SUPERSAMPLE; sy++) {
        for (let sx = 0; sx < SUPERSAMPLE; sx++) {
          // pixel (x, y) covers [x, x+1) x [y, y+1)
          const ox = x + (sx + 0.5) / SUPERSAMPLE - cx;
          const oy = y + (sy + 0.5) / SUPERSAMPLE - cy;
          const u = (cos * ox + sin * oy) / radius;
          const v = (-sin * ox + cos * oy) / radius;
          if (inside(cls, u, v)) hits++;
        }
      }
      if (hits === 0) continue;
      const a = hits / (SUPERSAMPLE * SUPERSAMPLE);
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) px[o + c] = (1 - a) * px[o + c] + a * (color[c] + texture * rng.normal());
      if (a >= 0.5) {
        mask[y * size + x] = 1;
        if (x < box.x0) box.x0 = x;
        if (y < box.y0) box.y0 = y;
        if (x > box.x1) box.x1 = x;
        if (y > box.y1) box.y1 = y;
      }
    }
  }
  return { cls, cx, cy, radius, angle, color, mask, box };
}

function clamp01(px: Float32Array): void {
  for (let i = 0; i < px.length; i++) px[i] = px[i] < 0 ? 0 : px[i] > 1 ? 1 : px[i];
}

export const MIN_RADIUS = 5;
export const MAX_RADIUS = 9;
/** radius of each class's circumscribed circle, in units of the shape radius */
const CIRCUMSCRIBED = [1.0, 0.88 * Math.SQRT2, Math.hypot(1, 0.8), Math.hypot(1, 0.35)];

/**
 * One image holding the given classes (one object each), at random non-overlapping places: every
 * object lies wholly inside the image, and the objects' circumscribed circles (which hold the
 * shape at any rotation) keep a gap of at least 2 px between them.
 */
export function renderImage(rng: Rng, classes: readonly number[], size = IMAGE_SIZE): ShapeImage {
  const px = drawBackground(rng, size);
  const placed: Array<{ cx: number; cy: number; r: number }> = [];
  const objects: ShapeObject[] = [];
  for (const cls of classes) {
    let cx = 0;
    let cy = 0;
    let radius = 0;
    let circ = 0;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 10000) throw new Error('cannot place the objects without overlap');
      radius = rng.uniform(MIN_RADIUS, MAX_RADIUS);
      circ = radius * CIRCUMSCRIBED[cls];
      const margin = circ + 0.5;
      cx = rng.uniform(margin, size - margin);
      cy = rng.uniform(margin, size - margin);
      const ok = placed.every((p) => Math.hypot(p.cx - cx, p.cy - cy) >= p.r + circ + 2);
      if (ok) break;
    }
    placed.push({ cx, cy, r: circ });
    objects.push(drawShape(rng, px, size, cls, cx, cy, radius));
  }
  clamp01(px);
  return { pixels: px, objects };
}

/** Single-object images with uniformly drawn classes. */
export function makeSingles(seed: number, n: number, size = IMAGE_SIZE): ShapeImage[] {
  const rng = new Rng(seed);
  const out: ShapeImage[] = [];
  for (let i = 0; i < n; i++) out.push(renderImage(rng, [rng.int(0, NUM_CLASSES - 1)], size));
  return out;
}

/** Two-object images, one object of each of two different classes (the pair drawn uniformly). */
export function makeComposites(seed: number, n: number, size = IMAGE_SIZE): ShapeImage[] {
  const rng = new Rng(seed);
  const out: ShapeImage[] = [];
  for (let i = 0; i < n; i++) {
    const a = rng.int(0, NUM_CLASSES - 1);
    let b = rng.int(0, NUM_CLASSES - 2);
    if (b >= a) b++;
    out.push(renderImage(rng, [a, b], size));
  }
  return out;
}

/** Stacks images into one NHWC float32 batch of model inputs: the network sees 2 * pixel - 1, in [-1, 1]. */
export function toBatch(images: readonly ShapeImage[], size = IMAGE_SIZE): { data: Float32Array; shape: [number, number, number, number]; layout: 'nhwc' } {
  const per = size * size * 3;
  const data = new Float32Array(images.length * per);
  images.forEach((im, i) => {
    const o = i * per;
    for (let j = 0; j < per; j++) data[o + j] = 2 * im.pixels[j] - 1;
  });
  return { data, shape: [images.length, size, size, 3], layout: 'nhwc' };
}

/** Writes an image as a binary PPM (for looking at the data; no image library needed). */
export function toPpm(im: ShapeImage, size = IMAGE_SIZE): Buffer {
  const header = Buffer.from(`P6\n${size} ${size}\n255\n`, 'ascii');
  const body = Buffer.alloc(size * size * 3);
  for (let i = 0; i < body.length; i++) body[i] = Math.round(im.pixels[i] * 255);
  return Buffer.concat([header, body]);
}

/**
 * Class discrimination, the paper's cat-and-dog figure (Selvaraju et al., Fig. 1) made measurable.
 *
 * A small CNN (test/fixtures/shapes-cnn, trained by bench/train-shapes.ts on the synthetic images
 * of test/helpers/shapes-data.ts) sees 200 composites, each holding one object of each of two
 * shape classes at non-overlapping places. For each image and each of its two classes (400 cases):
 *  - pointing game: the maximum of the class's upsampled Grad-CAM map must fall inside that
 *    class's object, judged by its bounding box (the pointing game's usual rule, here without its
 *    customary 15 px tolerance), in at least 95% of the cases, and never (at most 1%) inside the
 *    other object's box. The stricter pixel-mask rate is printed and held above 85%: the evidence
 *    for a square or a plus sits on its corners and edges, and a 12x12 map upsampled to 48x48
 *    often peaks a pixel outside such a corner, inside the box but not on the shape.
 *  - counterfactual: the map of the negated score (the regions whose removal would raise the
 *    class's score) must point at the OTHER object, as in the paper's counterfactual figure
 *    (removing the cat makes "dog" more likely): its maximum falls inside the other object's box in
 *    at least 90% of the cases and inside the class's own box in at most 1%, and its mean over the
 *    other object's mask exceeds its mean over the own object's mask in at least 90%. Merely
 *    "avoiding" the own object would be met by a map lighting up background or an all-zero map,
 *    so an all-zero map counts as a failure.
 * The model's accuracy on single-object images must be at least 95%, so the maps explain a model
 * that actually knows the classes.
 *
 * Everything runs through the public tfjs adapter (loadTfjsModel, createTfjsExplainer) with the
 * explainer's default layer (the last convolution, conv4, 12x12x64), 50 images per explain call,
 * both classes of an image in the same call.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createTfjsExplainer, loadTfjsModel } from '../lib/tfjs';
import type { ExplainResult, Explainer } from '../lib/types';
import { repoRoot } from './helpers/reference-data';
import { IMAGE_SIZE, NUM_CLASSES, SHAPE_CLASSES, makeComposites, makeSingles, toBatch, type Box, type ShapeImage, type ShapeObject } from './helpers/shapes-data';

const TEST_SEED_COMPOSITES = 4242;
const TEST_SEED_SINGLES = 777;
const N_COMPOSITES = 200;
const N_SINGLES = 400;
const CHUNK = 50;

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function inBox(b: Box, x: number, y: number): boolean {
  return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
}

/** explain the composites chunk by chunk; both classes of every image in one call */
async function explainAll(explainer: Explainer, images: readonly ShapeImage[], counterfactual: boolean): Promise<ExplainResult[]> {
  const out: ExplainResult[] = [];
  for (let i = 0; i < images.length; i += CHUNK) {
    const part = images.slice(i, i + CHUNK);
    const targets = part.map((im) => im.objects.map((o) => o.cls));
    out.push(await explainer.explain(toBatch(part), { method: 'gradcam', targets, counterfactual }));
  }
  return out;
}

interface Case {
  image: number;
  own: ShapeObject;
  other: ShapeObject;
  map: Float32Array;
}

function casesOf(results: ExplainResult[], images: readonly ShapeImage[]): Case[] {
  const cases: Case[] = [];
  const seen = new Set<string>();
  results.forEach((r, chunk) => {
    assert.equal(r.explanations.length, 2 * Math.min(CHUNK, images.length - chunk * CHUNK));
    for (const e of r.explanations) {
      const image = chunk * CHUNK + e.image;
      const objs = images[image].objects;
      const own = objs.find((o) => o.cls === e.classIndex);
      assert.ok(own, `explanation of class ${e.classIndex} for image ${image} whose classes are ${objs.map((o) => o.cls)}`);
      const other = objs.find((o) => o !== own)!;
      const key = `${image}:${e.classIndex}`;
      assert.ok(!seen.has(key), `class ${e.classIndex} of image ${image} explained twice`);
      seen.add(key);
      assert.ok(e.map && e.map.length === IMAGE_SIZE * IMAGE_SIZE);
      cases.push({ image, own, other, map: e.map });
    }
  });
  return cases;
}

const pct = (k: number, n: number) => `${k}/${n} = ${((100 * k) / n).toFixed(1)}%`;

describe('tfjs: class discrimination on synthetic shapes (the paper\'s cat-and-dog figure)', function () {
  this.timeout(120000);
  let model: tf.LayersModel;
  let explainer: Explainer;
  let composites: ShapeImage[];
  let t0 = 0;

  before(async () => {
    t0 = Date.now();
    const loaded = await loadTfjsModel(path.join(repoRoot(), 'test', 'fixtures', 'shapes-cnn', 'model.json'));
    assert.ok(loaded instanceof tf.LayersModel, 'the shapes fixture is a LayersModel');
    model = loaded;
    explainer = await createTfjsExplainer(model);
    composites = makeComposites(TEST_SEED_COMPOSITES, N_COMPOSITES);
  });

  after(() => {
    explainer?.dispose();
    model?.dispose();
    console.log(`      (shapes test: ${((Date.now() - t0) / 1000).toFixed(1)} s on ${explainer?.engine})`);
  });

  it('the test composites hold two objects of different classes with disjoint masks', () => {
    const pairs = new Set<string>();
    for (const im of composites) {
      assert.equal(im.objects.length, 2);
      const [a, b] = im.objects;
      assert.notEqual(a.cls, b.cls);
      pairs.add(`${Math.min(a.cls, b.cls)}-${Math.max(a.cls, b.cls)}`);
      let overlap = 0;
      let areaA = 0;
      let areaB = 0;
      for (let i = 0; i < a.mask.length; i++) {
        overlap += a.mask[i] & b.mask[i];
        areaA += a.mask[i];
        areaB += b.mask[i];
      }
      assert.equal(overlap, 0);
      assert.ok(areaA >= 40 && areaB >= 40, `objects of ${areaA} and ${areaB} pixels`);
    }
    assert.equal(pairs.size, (NUM_CLASSES * (NUM_CLASSES - 1)) / 2, 'every pair of classes occurs');
  });

  it('classifies single-object images with at least 95% accuracy', () => {
    const singles = makeSingles(TEST_SEED_SINGLES, N_SINGLES);
    const b = toBatch(singles);
    const logits = tf.tidy(() => (model.predict(tf.tensor4d(b.data, b.shape)) as tf.Tensor).dataSync() as Float32Array);
    let correct = 0;
    const confusion = Array.from({ length: NUM_CLASSES }, () => new Array<number>(NUM_CLASSES).fill(0));
    singles.forEach((im, i) => {
      const predicted = argmax(logits.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES));
      confusion[im.objects[0].cls][predicted]++;
      if (predicted === im.objects[0].cls) correct++;
    });
    console.log(`      single-object accuracy ${pct(correct, N_SINGLES)}; confusion (rows: true ${SHAPE_CLASSES.join('/')}): ${JSON.stringify(confusion)}`);
    assert.ok(correct / N_SINGLES >= 0.95, `accuracy ${pct(correct, N_SINGLES)}`);
  });

  it('pointing game: each class\'s Grad-CAM maximum falls inside that class\'s object box in >= 95% of 400 cases', async () => {
    const before = tf.memory().numTensors;
    const results = await explainAll(explainer, composites, false);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    for (const r of results) {
      assert.equal(r.counterfactual, false);
      assert.equal(r.method, 'gradcam');
      assert.equal(r.layer, explainer.defaultLayer);
    }
    const cases = casesOf(results, composites);
    assert.equal(cases.length, 2 * N_COMPOSITES);
    let inMask = 0;
    let inOwnBox = 0;
    let inOtherBox = 0;
    let zero = 0;
    const perClass = new Array<number>(NUM_CLASSES).fill(0);
    const perClassN = new Array<number>(NUM_CLASSES).fill(0);
    for (const c of cases) {
      perClassN[c.own.cls]++;
      const at = argmax(c.map);
      if (c.map[at] <= 0) {
        zero++; // an all-zero map points nowhere: a miss
        continue;
      }
      const x = at % IMAGE_SIZE;
      const y = Math.floor(at / IMAGE_SIZE);
      if (c.own.mask[at]) inMask++;
      if (inBox(c.own.box, x, y)) {
        inOwnBox++;
        perClass[c.own.cls]++;
      }
      if (inBox(c.other.box, x, y)) inOtherBox++;
    }
    const n = cases.length;
    console.log(
      `      pointing game: max inside own box ${pct(inOwnBox, n)} (${SHAPE_CLASSES.map((k, i) => `${k} ${perClass[i]}/${perClassN[i]}`).join(', ')}), ` +
        `own mask ${pct(inMask, n)}, other object's box ${pct(inOtherBox, n)}, all-zero maps ${zero}`,
    );
    assert.ok(inOwnBox / n >= 0.95, `pointing game (box) ${pct(inOwnBox, n)}`);
    assert.ok(inMask / n >= 0.85, `pointing game (mask) ${pct(inMask, n)}`);
    // class discrimination proper: the two maps of one image point at different objects
    assert.ok(inOtherBox / n <= 0.01, `maps pointing at the other object: ${pct(inOtherBox, n)}`);
  });

  it('counterfactual: each class\'s counterfactual map points at the other object, not its own, in >= 90% of 400 cases', async () => {
    const before = tf.memory().numTensors;
    const results = await explainAll(explainer, composites, true);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    for (const r of results) assert.equal(r.counterfactual, true);
    const cases = casesOf(results, composites);
    let atOther = 0;
    let atOwn = 0;
    let zero = 0;
    let meanLower = 0;
    for (const c of cases) {
      const at = argmax(c.map);
      if (c.map[at] <= 0) {
        zero++;
        continue;
      }
      const x = at % IMAGE_SIZE;
      const y = Math.floor(at / IMAGE_SIZE);
      const hitsOwn = inBox(c.own.box, x, y);
      if (hitsOwn) atOwn++;
      if (!hitsOwn && inBox(c.other.box, x, y)) atOther++;
      // mean map value on the own object's mask vs. on the other's
      let sOwn = 0;
      let nOwn = 0;
      let sOther = 0;
      let nOther = 0;
      for (let i = 0; i < c.map.length; i++) {
        if (c.own.mask[i]) {
          sOwn += c.map[i];
          nOwn++;
        } else if (c.other.mask[i]) {
          sOther += c.map[i];
          nOther++;
        }
      }
      if (sOwn / nOwn < sOther / nOther) meanLower++;
    }
    const n = cases.length;
    console.log(
      `      counterfactual: max in other object's box ${pct(atOther, n)}, in own box ${pct(atOwn, n)}, all-zero maps ${pct(zero, n)}, ` +
        `mean on own mask < mean on other's mask ${pct(meanLower, n)}`,
    );
    assert.ok(atOther / n >= 0.9, `counterfactual maxima on the other object: ${pct(atOther, n)}`);
    assert.ok(atOwn / n <= 0.01, `counterfactual maxima on the own object: ${pct(atOwn, n)}`);
    assert.ok(meanLower / n >= 0.9, `counterfactual mean lower on the own object than on the other: ${pct(meanLower, n)}`);
  });
});

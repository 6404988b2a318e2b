/**
 * A self-contained HTML report: one section per image, a grid holding the image, the Grad-CAM
 * overlays of its top classes (class names, scores, probabilities) and, when present, Guided Grad-CAM.
 * Every picture is inlined as a data: URI, so the page opens offline and can be mailed as one file.
 */
import { invalidType } from '../errors';

export interface ReportPanel {
  /** caption, e.g. the class name */
  title: string;
  /** a second caption line, e.g. "logit 7.31 · p 0.92" */
  subtitle?: string;
  /** PNG bytes */
  png: Uint8Array;
}

export interface ReportImage {
  /** file name or label of the input */
  name: string;
  /** panels in display order: the image first, then overlays, then guided pictures */
  panels: ReportPanel[];
  /** optional table rows (class, score, probability) under the grid */
  classes?: Array<{ rank: number; classIndex: number; label: string; score: number; probability: number; explained: boolean }>;
}

export interface ReportMeta {
  title?: string;
  /** key/value lines shown in the header: model, method, layer, engine, device, timings */
  facts?: Array<[string, string]>;
}

function esc(s: string): string {
  return String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

function dataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 8px} h2{font-size:16px;margin:28px 0 10px;word-break:break-all}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;font-size:13px;color:#444;margin-bottom:8px}
.facts dt{font-weight:600} .facts dd{margin:0;font-family:ui-monospace,monospace}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
figure img{width:100%;height:auto;image-rendering:auto;display:block;border-radius:3px}
figcaption{margin-top:6px;font-size:13px} figcaption b{display:block} figcaption span{color:#666;font-size:12px;overflow-wrap:anywhere}
table{border-collapse:collapse;margin-top:10px;font-size:12px} td,th{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:right}
td:nth-child(3),th:nth-child(3){text-align:left} tr.explained{font-weight:600}
`;

/** The report as one HTML string. */
export function renderReport(images: readonly ReportImage[], meta: ReportMeta = {}): string {
  if (!Array.isArray(images as unknown)) throw invalidType('images', 'array of report images', images);
  const title = meta.title ?? 'Grad-CAM report';
  const facts = (meta.facts ?? []).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('');
  const sections = images.map((img, i) => {
    const figs = img.panels
      .map((p) => {
        const alt = `${img.name}: ${p.title}`;
        return `<figure><img src="${dataUri(p.png)}" alt="${esc(alt)}"><figcaption><b>${esc(p.title)}</b>${p.subtitle ? `<span>${esc(p.subtitle)}</span>` : ''}</figcaption></figure>`;
      })
      .join('\n');
    const table = img.classes && img.classes.length > 0
      ? `<table><tr><th>rank</th><th>class</th><th>label</th><th>logit</th><th>probability</th></tr>${img.classes
        .map((c) => `<tr${c.explained ? ' class="explained"' : ''}><td>${c.rank}</td><td>${c.classIndex}</td><td>${esc(c.label)}</td><td>${c.score.toFixed(4)}</td><td>${c.probability.toFixed(4)}</td></tr>`)
        .join('')}</table>`
      : '';
    return `<section id="image-${i}"><h2>${esc(img.name)}</h2><div class="grid">\n${figs}\n</div>${table}</section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body><h1>${esc(title)}</h1>${facts ? `<dl class="facts">${facts}</dl>` : ''}
${sections.join('\n')}
</body></html>
`;
}

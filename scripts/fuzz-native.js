#!/usr/bin/env node
/*
 * Seeded fuzzer of the native addon under AddressSanitizer + UndefinedBehaviorSanitizer
 * (npm run fuzz:native; not part of npm test).
 *
 *   node scripts/fuzz-native.js [--no-build] [--seed=1] [--rounds=4] [--calls=800]
 *
 * 1. Builds the addon with -fsanitize=address,undefined into build-asan/ (cmake-js; CUDA off).
 * 2. Runs `rounds` child processes (seeds seed, seed+1, ...), each making `calls` random calls
 *    to every kernel of the addon, sync and Promise, with LD_PRELOAD of libasan (node itself is
 *    not instrumented): valid calls (checked against the TypeScript twins), invalid ones (wrong
 *    types, lengths, sizes, counts over 2^31 - 1, overlapping `out`), and hostile ones (getters
 *    on shape/options objects that transfer or shrink an array, arrays detached before the call,
 *    inputs and `out` transferred or shrunk while a Promise call runs, SharedArrayBuffers).
 *    Arrays inside arrays and objects (camTail's grads[], combine.weights[]/lowres[],
 *    guide.inputGrads[]) and Uint8Arrays (the picture kernels) are mutated and disturbed too.
 * 3. Prints a summary: calls made, errors thrown (expected: TypeError/RangeError), wrong
 *    results, crashes (children killed or exiting non-zero) and sanitizer findings (reports in
 *    build-asan/fuzz-logs/). Exit status 1 when anything but expected errors turned up.
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const OUT_DIR = path.join(ROOT, 'build-asan');
const ADDON = path.join(OUT_DIR, 'Release', 'gradcam_native.node');
const LOGS = path.join(OUT_DIR, 'fuzz-logs');

function option(name, fallback) {
  const a = process.argv.find((s) => s.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : fallback;
}

// ---------------------------------------------------------------------------------------------
// parent: build, run the rounds, summarize

function build() {
  const flags = '-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g';
  const cmakeJs = path.join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  // CMAKE_CXX_FLAGS_RELEASE: cmake-js sets CMAKE_CXX_FLAGS itself (overriding ours)
  const args = [cmakeJs, 'compile', '--out', OUT_DIR, '--CDGRADCAM_CUDA=OFF',
    `--CDCMAKE_CXX_FLAGS_RELEASE=-O1 ${flags}`, `--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined`];
  console.log(`fuzz-native: building the sanitizer addon into ${path.relative(ROOT, OUT_DIR)}/ ...`);
  fs.rmSync(OUT_DIR, { recursive: true, force: true }); // a clean configure: the flags are cached
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const instrumented = r.status === 0 && fs.existsSync(ADDON) && fs.readFileSync(ADDON).includes('__asan_report_load4');
  if (!instrumented) {
    console.error(r.stdout.slice(-4000), r.stderr.slice(-4000));
    console.error(`fuzz-native: the sanitizer build failed${r.status === 0 ? ' (built, but not instrumented)' : ''}`);
    process.exit(2);
  }
}

function sanitizerRuntime() {
  // the ASan runtime the compiler links against (gcc: libasan.so, clang: libclang_rt.asan)
  for (const cc of [process.env.CXX, 'g++', 'gcc', 'c++'].filter(Boolean)) {
    const r = spawnSync(cc, ['-print-file-name=libasan.so'], { encoding: 'utf8' });
    const p = (r.stdout || '').trim();
    if (r.status === 0 && p && path.isAbsolute(p) && fs.existsSync(p)) return p;
  }
  return undefined;
}

function parent() {
  const seed = option('seed', 1);
  // --quick: one round of 400 calls (the reliability script's sanitizer part)
  const quick = process.argv.includes('--quick');
  const rounds = option('rounds', quick ? 1 : 4);
  const calls = option('calls', quick ? 400 : 800);
  if (!process.argv.includes('--no-build') || !fs.existsSync(ADDON)) build();
  const libasan = sanitizerRuntime();
  if (!libasan) {
    console.error('fuzz-native: libasan.so not found (g++ -print-file-name=libasan.so)');
    process.exit(2);
  }
  fs.rmSync(LOGS, { recursive: true, force: true });
  fs.mkdirSync(LOGS, { recursive: true });
  const total = { calls: 0, ok: 0, checked: 0, wrong: 0, errors: {}, unexpected: [], crashes: [], perKernel: {} };
  const started = Date.now();
  for (let i = 0; i < rounds; i++) {
    const s = seed + i;
    const env = {
      ...process.env,
      LD_PRELOAD: libasan,
      ASAN_OPTIONS: `detect_leaks=0:log_path=${path.join(LOGS, `asan.${s}`)}:handle_segv=1:allow_user_segv_handler=0`,
      UBSAN_OPTIONS: `print_stacktrace=1:log_path=${path.join(LOGS, `ubsan.${s}`)}`,
      GRADCAM_NATIVE_PATH: ADDON,
      GRADCAM_QUIET: '1',
      GRADCAM_THREADS: '2',
    };
    const r = spawnSync(process.execPath, [__filename, '--child', `--seed=${s}`, `--calls=${calls}`], {
      env, encoding: 'utf8', timeout: 600000, maxBuffer: 64 << 20,
    });
    const line = (r.stdout || '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
    if (r.status !== 0 || !line) {
      total.crashes.push(`seed ${s}: ${r.signal ? `signal ${r.signal}` : `exit ${r.status}`} ${(r.stderr || '').slice(-600)}`);
    }
    if (line) {
      const c = JSON.parse(line);
      total.calls += c.calls;
      total.ok += c.ok;
      total.checked += c.checked;
      total.wrong += c.wrong;
      for (const [k, v] of Object.entries(c.errors)) total.errors[k] = (total.errors[k] || 0) + v;
      for (const [k, [n, checked]] of Object.entries(c.perKernel)) {
        const t = (total.perKernel[k] ??= [0, 0]);
        t[0] += n;
        t[1] += checked;
      }
      total.unexpected.push(...c.unexpected.map((u) => `seed ${s}: ${u}`));
      console.log(`fuzz-native: seed ${s}: ${c.calls} calls, ${c.ok} returned (${c.checked} checked, ${c.wrong} wrong), ${c.calls - c.ok} threw`);
    }
  }
  // sanitizer reports: one file per process that found something
  const findings = [];
  for (const f of fs.readdirSync(LOGS)) {
    const text = fs.readFileSync(path.join(LOGS, f), 'utf8');
    const n = (text.match(/ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer/g) || []).length;
    if (n > 0) findings.push(`${f}: ${n} report(s), first: ${text.split('\n').find((l) => /ERROR|runtime error/.test(l))}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log('');
  console.log(`fuzz-native summary (seeds ${seed}..${seed + rounds - 1}, ${seconds} s, ASan+UBSan addon ${path.relative(ROOT, ADDON)})`);
  console.log(`  calls made:           ${total.calls}`);
  console.log(`  returned a result:    ${total.ok} (${total.checked} compared with the TypeScript twins, ${total.wrong} wrong)`);
  console.log(`  per kernel (calls/checked): ${Object.entries(total.perKernel).map(([k, [n, c]]) => `${k} ${n}/${c}`).join(', ')}`);
  console.log(`  errors thrown:        ${Object.values(total.errors).reduce((a, b) => a + b, 0)} (expected) ${JSON.stringify(total.errors)}`);
  console.log(`  unexpected errors:    ${total.unexpected.length}${total.unexpected.length ? '\n    ' + total.unexpected.slice(0, 10).join('\n    ') : ''}`);
  console.log(`  crashes:              ${total.crashes.length}${total.crashes.length ? '\n    ' + total.crashes.join('\n    ') : ''}`);
  console.log(`  sanitizer findings:   ${findings.length}${findings.length ? '\n    ' + findings.join('\n    ') : ''}`);
  const bad = total.wrong + total.unexpected.length + total.crashes.length + findings.length;
  // the same summary as one JSON line, last, for scripts (npm run reliability)
  console.log(JSON.stringify({
    type: 'fuzz-native', calls: total.calls, ok: total.ok, checked: total.checked, wrong: total.wrong,
    unexpected: total.unexpected.length, crashes: total.crashes.length, findings: findings.length,
  }));
  process.exit(bad ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// child: the random calls

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

async function child() {
  const seed = option('seed', 1);
  const calls = option('calls', 800);
  const r = rng(seed * 7919 + 17);
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = (a) => a[Math.floor(r() * a.length)];
  const { loadAddon } = require(path.join(ROOT, 'dist', 'lib', 'kernels', 'addon.js'));
  const { reference } = require(path.join(ROOT, 'dist', 'lib', 'kernels', 'reference.js'));
  const load = loadAddon();
  if (!load.addon) throw new Error(`addon not loaded: ${load.error}`);
  const addon = load.addon;

  const transfer = (a) => {
    try {
      if (!(a.buffer instanceof SharedArrayBuffer) && a.buffer.byteLength > 0) structuredClone(a.buffer, { transfer: [a.buffer] });
    } catch {
      /* already detached */
    }
  };
  const shrink = (a) => {
    try {
      if (a.buffer.resizable) a.buffer.resize(int(0, 1) * 4);
    } catch {
      /* detached */
    }
  };
  // an array of `length` random floats (in [lo, 1)) or bytes on a plain, shared or resizable buffer
  const typed = (Type, fill) => (length, where = 'plain') => {
    const bytes = length * Type.BYTES_PER_ELEMENT;
    const buf = where === 'shared' ? new SharedArrayBuffer(bytes)
      : where === 'resizable' ? new ArrayBuffer(bytes, { maxByteLength: bytes + 64 })
      : new ArrayBuffer(bytes);
    const a = where === 'resizable' && r() < 0.5 ? new Type(buf) : new Type(buf, 0, length);
    for (let i = 0; i < length; i++) a[i] = fill();
    return a;
  };
  const array = typed(Float32Array, () => r() * 2 - 1);
  const unitArray = typed(Float32Array, () => r()); // images of showCamOnImage: at most 1
  const byteArray = typed(Uint8Array, () => int(0, 255));
  const shape = () => ({ n: int(1, 3), k: int(1, 9), h: int(1, 12), w: int(1, 12), layout: pick(['nchw', 'nhwc']) });
  const count = (s) => s.n * s.k * s.h * s.w;

  // each kernel: random valid arguments; `arrays` are the positions of the caller's arrays
  const kernels = {
    channelMean: (where) => { const s = shape(); return { args: [array(count(s), where), s], arrays: [0], objects: [1] }; },
    channelSums: (where) => { const s = shape(); return { args: [array(count(s), where), array(count(s), where), s], arrays: [0, 1], objects: [2] }; },
    weightedChannelSum: (where) => {
      const s = shape();
      return { args: [array(s.n * s.k, where), array(count(s), where), s, r() < 0.5], arrays: [0, 1], objects: [2] };
    },
    elementwiseChannelSum: (where) => {
      const s = shape();
      return { args: [array(count(s), where), array(count(s), where), s, pick(['grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act']), r() < 0.5], arrays: [0, 1], objects: [2] };
    },
    resizeBilinear: (where) => {
      const [n, h, w, H, W] = [int(1, 3), int(1, 20), int(1, 20), int(1, 40), int(1, 40)];
      const withOut = r() < 0.5;
      return {
        args: [array(n * h * w, where), n, h, w, H, W, r() < 0.5 ? undefined : { alignCorners: r() < 0.5 }, withOut ? array(n * H * W, where) : undefined],
        arrays: withOut ? [0, 7] : [0], objects: [6], sizes: [1, 2, 3, 4, 5], out: withOut ? 7 : undefined,
      };
    },
    minMaxNormalize: (where) => { const [n, size] = [int(1, 4), int(1, 300)]; return { args: [array(n * size, where), n, size], arrays: [0], sizes: [1, 2] }; },
    guidedProduct: (where) => {
      const [n, c, H, W] = [int(1, 3), int(1, 4), int(1, 24), int(1, 24)];
      const withOut = r() < 0.5;
      return {
        args: [array(n * c * H * W, where), array(n * H * W, where), n, c, H, W, pick(['nchw', 'nhwc']), withOut ? array(n * c * H * W, where) : undefined],
        arrays: withOut ? [0, 1, 7] : [0, 1], sizes: [2, 3, 4, 5], out: withOut ? 7 : undefined,
      };
    },
    gradcamTail: (where) => {
      const s = shape();
      return { args: [array(count(s), where), array(count(s), where), s, { outH: int(1, 30), outW: int(1, 30), relu: r() < 0.7 }], arrays: [0, 1], objects: [2, 3] };
    },
    // camTail(a, grads, shape, combine, options, guide?): arrays inside arrays (slots: [container, key])
    camTail: (where) => {
      const s = shape();
      const R = int(1, 3);
      const rounds = (length) => Array.from({ length: R }, () => array(length, where));
      const [outH, outW] = [int(1, 24), int(1, 24)];
      const kind = pick(['weights', 'given-weights', 'elementwise', 'given-lowres']);
      const combine = kind === 'weights' ? { kind, weighting: pick(['grad-mean', 'grad-pp', 'grad-pp-normalized', 'grad-act-ratio']), ...(r() < 0.3 ? { eps: r() * 1e-3 } : {}) }
        : kind === 'elementwise' ? { kind, op: pick(['grad-times-act', 'relu-grad-times-act', 'relu-of-grad-times-act']) }
        : kind === 'given-weights' ? { kind, weights: rounds(s.n * s.k) }
        : { kind, lowres: rounds(s.n * s.h * s.w) };
      const grads = kind === 'weights' || kind === 'elementwise' ? rounds(count(s)) : null;
      const c = int(1, 3);
      const guide = r() < 0.5 ? { inputGrads: rounds(s.n * c * outH * outW), c, layout: pick(['nchw', 'nhwc']) } : undefined;
      const args = [array(count(s), where), grads, s, combine, { outH, outW, relu: r() < 0.7, alignCorners: r() < 0.3 }, guide];
      const slots = [[args, 0]];
      for (const list of [grads, combine.weights, combine.lowres, guide && guide.inputGrads]) {
        if (list) for (let i = 0; i < list.length; i++) slots.push([list, i]);
      }
      return { args, arrays: [0], slots, objects: guide ? [2, 3, 4, 5] : [2, 3, 4] };
    },
    // the picture kernels: Float32Array or Uint8Array in, a fresh Uint8Array out
    applyColormap: (where) => {
      const [n, H, W] = [int(1, 3), int(1, 24), int(1, 24)];
      return { args: [array(n * H * W, where), n, H, W, pick(['jet', 'turbo', 'viridis'])], arrays: [0], sizes: [1, 2, 3] };
    },
    showCamOnImage: (where) => {
      const [n, H, W] = [int(1, 3), int(1, 24), int(1, 24)];
      const options = r() < 0.3 ? undefined
        : { colormap: pick(['jet', 'turbo', 'viridis']), imageWeight: r(), channels: pick([3, 4]) };
      return { args: [unitArray(n * H * W * 3, where), array(n * H * W, where), n, H, W, options], arrays: [0, 1], sizes: [2, 3, 4], objects: [5] };
    },
    deprocessImage: (where) => {
      const [n, c, H, W] = [int(1, 3), int(1, 4), int(1, 24), int(1, 24)];
      return { args: [array(n * c * H * W, where), n, c, H, W, pick(['nchw', 'nhwc'])], arrays: [0], sizes: [1, 2, 3, 4] };
    },
    greyToRgb: (where) => {
      const [n, H, W] = [int(1, 3), int(1, 24), int(1, 24)];
      return { args: [byteArray(n * H * W, where), n, H, W], arrays: [0], sizes: [1, 2, 3] };
    },
  };
  const names = Object.keys(kernels);
  const BAD_SIZES = [0, -1, 1.5, NaN, Infinity, '3', null, undefined, 2 ** 40, 65536];

  // a mutation of valid arguments; returns whether the call is still valid (result checked)
  function mutate(c, name) {
    const kind = pick(['none', 'none', 'none', 'shared', 'resizable', 'wrongLength', 'wrongType', 'badSize', 'detached',
      'getterDetach', 'getterShrink', 'proxyThrows', 'overlap', 'badDevice', 'valueAboveOne']);
    // an array of the call: [container, key] (camTail: also those inside grads[], combine, guide)
    const [box, at] = pick(c.slots || c.arrays.map((i) => [c.args, i]));
    switch (kind) {
      case 'wrongLength': box[at] = new box[at].constructor(Math.max(0, box[at].length + pick([-1, 1, 7]))); break;
      case 'wrongType':
        box[at] = pick([new Float64Array(box[at].length), box[at] instanceof Uint8Array ? new Float32Array(box[at].length) : new Uint8Array(box[at].length),
          [1, 2], 3, null, {}, 'x', box[at].buffer]);
        break;
      case 'valueAboveOne':
        if (!(box[at] instanceof Float32Array) || box[at].length === 0) return { kind: 'none', valid: true };
        box[at][int(0, box[at].length - 1)] = 1.5; // showCamOnImage's images: RangeError; elsewhere a valid value
        return { kind, valid: !(name === 'showCamOnImage' && box === c.args && at === 0) };
      case 'badSize': {
        if (c.sizes && r() < 0.6) c.args[pick(c.sizes)] = pick(BAD_SIZES);
        else if (c.objects) {
          const o = c.args[pick(c.objects)];
          if (o) {
            o[pick(['n', 'k', 'h', 'w', 'outH', 'outW', 'layout', 'relu', 'alignCorners', 'kind', 'weighting', 'eps', 'op', 'weights',
              'lowres', 'c', 'inputGrads', 'colormap', 'imageWeight', 'channels'])] = pick([...BAD_SIZES, 'NCHW', 1, [], [new Float32Array(1)]]);
          }
        }
        break;
      }
      case 'detached': transfer(box[at]); break;
      case 'getterDetach':
      case 'getterShrink':
      case 'proxyThrows': {
        if (!c.objects) return { kind: 'none', valid: true };
        const oi = pick(c.objects);
        const target = c.args[oi] || {};
        const victim = box[at];
        c.args[oi] = new Proxy(target, {
          get(t, p) {
            if (kind === 'proxyThrows' && r() < 0.3) throw new RangeError('hostile getter');
            if (kind === 'getterDetach') transfer(victim);
            if (kind === 'getterShrink') shrink(victim);
            return t[p];
          },
        });
        break;
      }
      case 'overlap': {
        if (c.out === undefined) return { kind: 'none', valid: true };
        const src = c.args[pick(c.arrays.filter((i) => i !== c.out))];
        if (!(src instanceof Float32Array)) break;
        const o = c.args[c.out];
        if (src.buffer.byteLength >= o.length * 4) c.args[c.out] = new Float32Array(src.buffer, 0, o.length);
        break;
      }
      case 'badDevice': return { kind, valid: false, device: pick(['gpu', 1, undefined]) };
      default: break;
    }
    return { kind, valid: kind === 'none' || kind === 'shared' || kind === 'resizable' };
  }

  const stats = { calls: 0, ok: 0, checked: 0, wrong: 0, errors: {}, unexpected: [], perKernel: {} };
  const count1 = (name, i) => { (stats.perKernel[name] ??= [0, 0])[i]++; };
  const churn = () => { for (let i = 0; i < 2; i++) new Float32Array(int(1, 1 << 16)).fill(1); };

  function compare(name, got, want) {
    if (want instanceof Uint8Array) {
      // bytes: the same, or 1 apart (float32 rounding at a .5 boundary)
      if (!(got instanceof Uint8Array) || got.length !== want.length) return false;
      for (let i = 0; i < want.length; i++) if (Math.abs(got[i] - want[i]) > 1) return false;
      return true;
    }
    if (ArrayBuffer.isView(got) && !(got instanceof Float32Array)) return false;
    const keys = got instanceof Float32Array ? [] : [...new Set([...Object.keys(want), ...Object.keys(got)])];
    for (const k of keys) {
      if (typeof want[k] === 'number' && got[k] !== want[k]) return false; // camTail's rounds
      if (want[k] === undefined && got[k] !== undefined) return false;
    }
    const pairs = got instanceof Float32Array ? [[got, want]] : keys.filter((k) => want[k] instanceof Float32Array).map((k) => [got[k], want[k]]);
    for (const [g, w] of pairs) {
      if (!(g instanceof Float32Array) || g.length !== w.length) return false;
      let scale = 0;
      for (let i = 0; i < w.length; i++) scale = Math.max(scale, Math.abs(w[i]));
      for (let i = 0; i < w.length; i++) if (!(Math.abs(g[i] - w[i]) <= 1e-4 * Math.abs(w[i]) + 1e-5 * scale)) return false;
    }
    return true;
  }

  function expectedError(e, m) {
    const key = e && e.name ? `${e.name}` : typeof e;
    stats.errors[key] = (stats.errors[key] || 0) + 1;
    const fine = e instanceof TypeError || e instanceof RangeError || (e instanceof Error && e.message === 'hostile getter');
    if (!fine) stats.unexpected.push(`${m}: ${e && e.stack ? e.stack.split('\n')[0] : String(e)}`);
  }

  let pending = [];
  for (let i = 0; i < calls; i++) {
    const name = pick(names);
    const where = pick(['plain', 'plain', 'shared', 'resizable']);
    const c = kernels[name](where);
    const m = mutate(c, name);
    const isAsync = r() < 0.5;
    // the expected numbers, from copies made before the call
    const clone = (a) => (ArrayBuffer.isView(a) ? a.slice() : Array.isArray(a) ? a.map(clone)
      : a && typeof a === 'object' ? Object.fromEntries(Object.entries(a).map(([k, v]) => [k, clone(v)])) : a);
    const want = m.valid ? reference[name](...c.args.map(clone)) : undefined;
    const outBefore = c.out !== undefined ? c.args[c.out] : undefined;
    const device = m.device !== undefined || m.kind === 'badDevice' ? m.device : 'cpu';
    const what = `${name}${isAsync ? 'Async' : ''} (${m.kind}, ${where})`;
    stats.calls++;
    count1(name, 0);
    if (!isAsync) {
      try {
        const got = addon[name](device, ...c.args);
        stats.ok++;
        if (want) {
          stats.checked++;
          count1(name, 1);
          if (!compare(name, got, want) || (outBefore && got !== outBefore)) {
            stats.wrong++;
            stats.unexpected.push(`${what}: wrong result`);
          }
        }
      } catch (e) {
        expectedError(e, what);
      }
      continue;
    }
    let p;
    try {
      p = addon[`${name}Async`](device, ...c.args);
    } catch (e) {
      stats.unexpected.push(`${what}: threw instead of rejecting: ${e}`);
      continue;
    }
    // while it runs: transfer or shrink one of the caller's arrays, or write into a shared one
    let disturbed = false;
    const act = r();
    const [vbox, vat] = pick(c.slots || c.arrays.map((i) => [c.args, i]));
    const victim = vbox[vat];
    if (ArrayBuffer.isView(victim)) {
      if (act < 0.25) { transfer(victim); disturbed = true; }
      else if (act < 0.4) { shrink(victim); disturbed = true; }
      else if (act < 0.5 && victim.buffer instanceof SharedArrayBuffer) { victim.fill(0); disturbed = true; }
    }
    churn();
    pending.push(p.then(
      (got) => {
        stats.ok++;
        // a disturbed input on a SharedArrayBuffer may legitimately give other numbers
        const sharedTouched = disturbed && victim.buffer instanceof SharedArrayBuffer;
        if (want && !sharedTouched) {
          stats.checked++;
          count1(name, 1);
          if (!compare(name, got, want) || (outBefore && got !== outBefore)) {
            stats.wrong++;
            stats.unexpected.push(`${what}: wrong result${disturbed ? ' (disturbed mid-call)' : ''}`);
          }
        }
      },
      (e) => expectedError(e, what),
    ));
    if (pending.length >= 8) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  console.log(JSON.stringify(stats));
}

if (process.argv.includes('--child')) {
  child().catch((e) => {
    console.error(e);
    process.exit(3);
  });
} else {
  parent();
}

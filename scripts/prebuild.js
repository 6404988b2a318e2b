#!/usr/bin/env node
'use strict';
/**
 * Builds the addon for this platform and places it at prebuilds/<platform>-<arch>/gradcam_native.node
 * (gitignored), to ship in the npm package: run by `prepack`.
 *   node scripts/prebuild.js           cmake-js compile (incremental) with GRADCAM_CUDA=AUTO: CUDA
 *                                      kernels when nvcc exists, cudart linked statically
 *   node scripts/prebuild.js --reuse   take build/Release as it is when it is newer than every
 *                                      source and CMakeLists.txt (the tarball test: no second compile)
 * The copy is checked: it loads, its CUDA kernels are there exactly when nvcc is, and it does not
 * need libcudart.so (ldd).
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const c = require('./native-common');

function newestSource() {
  let newest = fs.statSync(path.join(c.ROOT, 'CMakeLists.txt')).mtimeMs;
  const dir = path.join(c.ROOT, 'native');
  for (const f of fs.readdirSync(dir)) {
    if (/\.(cc|cu|h|cuh)$/.test(f)) newest = Math.max(newest, fs.statSync(path.join(dir, f)).mtimeMs);
  }
  return newest;
}

function fail(msg) {
  console.error(`prebuild: ${msg}`);
  process.exit(1);
}

function main() {
  const reuse = process.argv.includes('--reuse');
  const built = c.localBuildPath();
  const fresh = fs.existsSync(built) && fs.statSync(built).mtimeMs >= newestSource();
  if (!(reuse && fresh)) {
    // a build folder configured earlier with GRADCAM_CUDA=OFF keeps that in its cache: start afresh
    const cache = path.join(c.ROOT, 'build', 'CMakeCache.txt');
    const cudaOff = fs.existsSync(cache) && /^GRADCAM_CUDA:STRING=OFF$/m.test(fs.readFileSync(cache, 'utf8'));
    const r = c.runCmakeJs(cudaOff ? 'rebuild' : 'compile');
    if (!r.ok) fail(r.error);
  }
  const load = c.tryLoad(built);
  if (!load.addon) fail(`the built addon does not load: ${load.error}`);
  if (c.nvccFound() && !load.addon.cudaInfo().compiled) {
    fail('build/Release has no CUDA kernels but nvcc is here: run `node scripts/prebuild.js` without --reuse (or `npx cmake-js rebuild`)');
  }
  const ldd = spawnSync('ldd', [built], { encoding: 'utf8' });
  if (ldd.status === 0 && /libcudart\.so/.test(ldd.stdout)) fail('the addon links libcudart.so dynamically (expected the static CUDA runtime)');
  const dest = c.prebuiltPath();
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(built, dest);
  const kb = Math.round(fs.statSync(dest).size / 1024);
  console.log(`prebuild: ${path.relative(c.ROOT, dest)} (${kb} KiB${reuse && fresh ? ', reused build/Release' : ''}): ${c.describeAddon(load.addon)}`);
}

main();

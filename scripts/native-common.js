'use strict';
/**
 * Shared by scripts/install.js (run at `npm install`, shipped) and scripts/prebuild.js (run by
 * `prepack`): where the addon lives, how to name the prebuilt for a platform, how to run
 * cmake-js, and the one-line description of a loaded addon. Plain Node, no dependencies:
 * install.js runs before anything is built.
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const ADDON_FILE = 'gradcam_native.node';

/** `linux-x64`, `linux-x64-musl`, `darwin-arm64`...: as prebuildTag() in lib/kernels/addon.ts. */
function prebuildTag() {
  let musl = false;
  if (process.platform === 'linux') {
    const header = process.report && process.report.getReport().header;
    musl = !(header && header.glibcVersionRuntime);
  }
  return `${process.platform}-${process.arch}${musl ? '-musl' : ''}`;
}

const prebuiltPath = (root = ROOT) => path.join(root, 'prebuilds', prebuildTag(), ADDON_FILE);
const localBuildPath = (root = ROOT) => path.join(root, 'build', 'Release', ADDON_FILE);

/** Loads an addon file and checks it is ours: { addon } or { error } (one line). */
function tryLoad(file) {
  if (!fs.existsSync(file)) return { error: `${path.relative(ROOT, file) || file} not found` };
  try {
    const addon = require(file);
    if (typeof addon.gradcamTail !== 'function' || typeof addon.cudaInfo !== 'function') {
      return { error: `${file} is not the gradcam-node addon` };
    }
    return { addon };
  } catch (e) {
    return { error: String((e && e.message) || e).split('\n')[0] };
  }
}

/** "CUDA kernels compiled (device: NVIDIA H200) / CUDA kernels compiled, no usable device (why) / no CUDA kernels; 16 CPU threads" */
function describeAddon(addon) {
  let cuda;
  try {
    const info = addon.cudaInfo();
    if (!info.compiled) cuda = 'no CUDA kernels (built without nvcc)';
    else if (info.available) cuda = `CUDA kernels compiled, device: ${info.deviceName || info.reason}`;
    else cuda = `CUDA kernels compiled, no usable CUDA device here (${info.reason})`;
  } catch (e) {
    cuda = `CUDA probe failed (${String((e && e.message) || e).split('\n')[0]})`;
  }
  return `${cuda}; ${addon.cpuThreads()} CPU threads`;
}

/** nvcc on PATH, in $CUDACXX or in /usr/local/cuda: what GRADCAM_CUDA=AUTO will find. */
function nvccFound() {
  if (process.env.CUDACXX && fs.existsSync(process.env.CUDACXX)) return true;
  if (fs.existsSync('/usr/local/cuda/bin/nvcc')) return true;
  return spawnSync('nvcc', ['--version'], { stdio: 'ignore' }).status === 0;
}

function cmakeFound() {
  const r = spawnSync('cmake', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Runs `cmake-js <command> --CDGRADCAM_CUDA=AUTO` in `root`; returns { ok, error }. */
function runCmakeJs(command, root = ROOT, stdio = 'inherit') {
  let bin;
  try {
    bin = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return { ok: false, error: 'cmake-js is not installed' };
  }
  const r = spawnSync(process.execPath, [bin, command, '--CDGRADCAM_CUDA=AUTO'], { cwd: root, stdio });
  if (r.error) return { ok: false, error: r.error.message };
  if (r.status !== 0) return { ok: false, error: `cmake-js ${command} exited with ${r.status}` };
  return { ok: true };
}

module.exports = { ROOT, ADDON_FILE, prebuildTag, prebuiltPath, localBuildPath, tryLoad, describeAddon, nvccFound, cmakeFound, runCmakeJs };

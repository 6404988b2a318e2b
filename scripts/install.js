#!/usr/bin/env node
'use strict';
/**
 * The package's `install` script. Uses the prebuilt addon shipped for this platform
 * (prebuilds/<platform>-<arch>) when it loads; compiles from source with cmake-js only where
 * none fits (or GRADCAM_BUILD_FROM_SOURCE=1); never fails the install: without an addon the
 * TypeScript kernels run (same numbers, slower). Prints one line saying which.
 * (npm shows install-script output only with --foreground-scripts or `npm rebuild --foreground-scripts`.)
 */
const fs = require('fs');
const path = require('path');
const c = require('./native-common');

function say(line) {
  console.log(`gradcam-node: ${line}`);
}

function advice() {
  return `to build it later: install CMake and a C++17 compiler (nvcc for CUDA), then run \`npm rebuild gradcam-node\` ` +
    `(or \`npx cmake-js compile\` in ${c.ROOT})`;
}

function main() {
  const tag = c.prebuildTag();
  const fromSource = process.env.GRADCAM_BUILD_FROM_SOURCE === '1';
  let prebuiltWhy = 'GRADCAM_BUILD_FROM_SOURCE=1';
  if (!fromSource) {
    const pre = c.tryLoad(c.prebuiltPath());
    if (pre.addon) {
      say(`using the prebuilt native addon (prebuilds/${tag}): ${c.describeAddon(pre.addon)}`);
      return;
    }
    prebuiltWhy = fs.existsSync(c.prebuiltPath()) ? `the prebuilt for ${tag} did not load: ${pre.error}` : `no prebuilt addon for ${tag}`;
  }
  if (!fs.existsSync(path.join(c.ROOT, 'CMakeLists.txt')) || !fs.existsSync(path.join(c.ROOT, 'native'))) {
    say(`${prebuiltWhy} and no sources to compile; the TypeScript kernels will be used`);
    return;
  }
  if (!c.cmakeFound()) {
    say(`${prebuiltWhy}, and CMake is not installed to compile one; the TypeScript kernels will be used (${advice()})`);
    return;
  }
  say(`${prebuiltWhy}: compiling the native addon from source with cmake-js (CUDA kernels ${c.nvccFound() ? 'included: nvcc found' : 'skipped: no nvcc'})`);
  const r = c.runCmakeJs('compile');
  const built = r.ok ? c.tryLoad(c.localBuildPath()) : { error: r.error };
  if (built.addon) {
    say(`built the native addon from source (build/Release): ${c.describeAddon(built.addon)}`);
  } else {
    say(`native addon not built (${built.error}); the TypeScript kernels will be used (${advice()})`);
  }
}

try {
  main();
} catch (e) {
  say(`native addon check failed (${String((e && e.message) || e).split('\n')[0]}); the TypeScript kernels will be used (${advice()})`);
}
process.exitCode = 0;

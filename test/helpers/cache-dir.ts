/**
 * Loaded by mocha before the tests (.mocharc.json "require"): the ONNX model cache of this test run
 * (and of the CLI processes it starts) goes to a temporary folder, removed at the end, not to the
 * user's cache folder. A GRADCAM_CACHE_DIR set by the caller is kept.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const own = process.env.GRADCAM_CACHE_DIR ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'gradcam-test-cache-'));
if (own) process.env.GRADCAM_CACHE_DIR = own;

export const mochaHooks = {
  afterAll(): void {
    if (own) fs.rmSync(own, { recursive: true, force: true });
  },
};

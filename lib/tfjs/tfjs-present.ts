/**
 * Imported first by lib/tfjs/index.ts (the entry of every tfjs code path): a missing
 * @tensorflow/tfjs (an optional peer) becomes GradcamError ENOENGINE naming the packages to
 * install, before the plain `import * as tf` of the adapters would throw MODULE_NOT_FOUND.
 */
import { requireEngine } from '../engines';

requireEngine('@tensorflow/tfjs');

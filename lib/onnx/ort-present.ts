/**
 * Imported first by every module of lib/onnx that loads onnxruntime-node (an optional peer):
 * a missing package becomes GradcamError ENOENGINE ("npm install onnxruntime-node") before the
 * plain `import * as ort` that follows it would throw MODULE_NOT_FOUND.
 */
import { requireEngine } from '../engines';

requireEngine('onnxruntime-node');

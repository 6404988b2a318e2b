/**
 * The model engines are optional peer dependencies: an ONNX user installs onnxruntime-node, a
 * TensorFlow.js user @tensorflow/tfjs (+ @tensorflow/tfjs-backend-wasm), neither pays for the
 * other. Asking for an engine that is not installed is a GradcamError with code 'ENOENGINE'
 * that names the package to install, never a bare MODULE_NOT_FOUND.
 */
import { GradcamError } from './errors';

/** The optional peers: what each is for and the command that installs it (package.json peerDependencies). */
export const ENGINE_PACKAGES = {
  'onnxruntime-node': {
    range: '^1.30.0',
    usedFor: 'ONNX models',
    install: 'npm install onnxruntime-node',
    note: ' (ONNXRUNTIME_NODE_INSTALL=skip skips its postinstall download of the CUDA provider where there is no network)',
  },
  '@tensorflow/tfjs': {
    range: '^4.22.0',
    usedFor: 'TensorFlow.js models',
    install: 'npm install @tensorflow/tfjs @tensorflow/tfjs-backend-wasm',
    note: '',
  },
  '@tensorflow/tfjs-backend-wasm': {
    range: '^4.22.0',
    usedFor: "the 'wasm' gradient engine of TensorFlow.js models",
    install: 'npm install @tensorflow/tfjs-backend-wasm',
    note: '',
  },
  '@tensorflow/tfjs-node': {
    range: '^4.22.0',
    usedFor: "the 'tfjs-node' gradient engine of TensorFlow.js models",
    install: 'npm install @tensorflow/tfjs-node',
    note: ' (where its prebuilt libtensorflow exists for your platform)',
  },
} as const;

export type EnginePackage = keyof typeof ENGINE_PACKAGES;

/** The ENOENGINE error for a package that is not installed. */
export function missingEngine(pkg: EnginePackage): GradcamError {
  const e = ENGINE_PACKAGES[pkg];
  return new GradcamError(
    `${e.usedFor} need the package ${pkg}, which is not installed (an optional peer dependency of gradcam-node): ` +
      `run \`${e.install}\`${e.note}`,
    'ENOENGINE',
  );
}

/** Whether `e` is Node's "Cannot find module '<name>'" for `name` itself (not for a file inside it). */
function isMissingModule(e: unknown, name: string): boolean {
  const err = e as NodeJS.ErrnoException;
  return err?.code === 'MODULE_NOT_FOUND' && typeof err.message === 'string' && err.message.startsWith(`Cannot find module '${name}'`);
}

/**
 * require(pkg), turning a missing package into ENOENGINE and a package that is there but does not
 * load (a missing dependency of its own, a native binding that fails) into one EENGINE line.
 */
export function requireEngine<T = unknown>(pkg: EnginePackage): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require(pkg) as T;
  } catch (e) {
    if (isMissingModule(e, pkg)) throw missingEngine(pkg);
    const first = String((e as Error)?.message ?? e).split('\n')[0];
    throw new GradcamError(`${pkg} is installed but did not load: ${first}; reinstall it (\`${ENGINE_PACKAGES[pkg].install}\`)`, 'EENGINE');
  }
}

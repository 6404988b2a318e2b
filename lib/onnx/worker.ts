/**
 * Worker-thread side of WorkerRunner (runtime.ts): holds one ORT session, runs feeds posted to
 * it and transfers the output buffers back.
 */
import { parentPort, workerData } from 'worker_threads';
import * as ort from 'onnxruntime-node';
import { ExecutionProviderRequest, ModelSource, OrtLoadOptions, TensorData, createOrtSession, ownedFeed } from './runtime';

interface Init { bytes: ModelSource; ep: ExecutionProviderRequest; threads: number; load?: OrtLoadOptions }

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  let init = workerData as Init;
  // started ahead of its model (runtime.ts WorkerSession.create): the bytes come as the first message
  if (!init.bytes) init = { ...init, ...(await new Promise<Partial<Init>>((resolve) => port.once('message', resolve))) };
  let session: ort.InferenceSession;
  try {
    const s = await createOrtSession(init.bytes, init.ep, init.threads, init.load);
    session = s.session;
    port.postMessage({ ready: true, executionProvider: s.executionProvider, reason: s.reason });
  } catch (e) {
    port.postMessage({ error: (e as Error).message });
    return;
  }
  // the ordinary memory that shared input arrays are copied into (ORT refuses a SharedArrayBuffer), reused
  const free: ArrayBuffer[] = [];
  const keep = (buffers: ArrayBuffer[]) => {
    free.push(...buffers);
    while (free.length > 2) free.shift();
  };
  port.on('message', async (m: { id: number; feeds: Record<string, TensorData> }) => {
    const taken: ArrayBuffer[] = [];
    try {
      const t: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(m.feeds)) {
        const { data, buffer } = ownedFeed(v, free);
        if (buffer) taken.push(buffer);
        t[k] = new ort.Tensor(v.type as 'float32', data as Float32Array, v.dims);
      }
      const out = await session.run(t);
      const outputs: Record<string, TensorData> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [k, v] of Object.entries(out)) {
        const tv = v as ort.Tensor;
        const data = tv.data as Float32Array;
        outputs[k] = { type: tv.type, data, dims: tv.dims };
        if (data.buffer instanceof ArrayBuffer && !transfer.includes(data.buffer)) transfer.push(data.buffer);
      }
      // an input buffer that is also an output's goes back with it, not to the free list
      keep(taken.filter((b) => !transfer.includes(b)));
      taken.length = 0;
      try {
        port.postMessage({ id: m.id, outputs }, transfer);
      } catch {
        port.postMessage({ id: m.id, outputs }); // a buffer that cannot be detached is copied
      }
    } catch (e) {
      keep(taken);
      port.postMessage({ id: m.id, error: (e as Error).message });
    }
  });
}

void main();

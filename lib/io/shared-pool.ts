/** Reused shared memory for the input batches posted to worker threads (ONNX and tfjs adapters). */
/**
 * Reusable SharedArrayBuffer memory for input batches posted to worker threads: a Float32Array over
 * a SharedArrayBuffer crosses postMessage shared, not copied, and memory used before costs no fresh
 * page faults (dear where memory is first touched slowly, as in VMs). A few free buffers are kept.
 */
export class SharedInputPool {
  private free: SharedArrayBuffer[] = [];

  /** keeps at most `keep` free buffers, each of at most `maxBytes` */
  constructor(private readonly keep = 2, private readonly maxBytes = 256 * 2 ** 20) {}

  /** `length` floats of shared memory (its content is whatever it held), with its release */
  acquire(length: number): { data: Float32Array; release(): void } {
    const bytes = length * 4;
    const i = this.free.findIndex((b) => b.byteLength === bytes);
    const buffer = i >= 0 ? this.free.splice(i, 1)[0] : new SharedArrayBuffer(bytes);
    let released = false;
    return {
      data: new Float32Array(buffer, 0, length),
      release: () => {
        if (released) return;
        released = true;
        if (bytes > this.maxBytes || this.keep === 0) return;
        this.free.push(buffer);
        if (this.free.length > this.keep) this.free.shift();
      },
    };
  }

  /** forgets the free buffers */
  clear(): void {
    this.free = [];
  }
}

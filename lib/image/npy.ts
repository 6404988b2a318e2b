/**
 * NumPy .npy files (format versions 1.0, 2.0, 3.0), C order only:
 * read float32 / float64 / float16-free integer and uint8 arrays into a Float32Array, write float32.
 */
import * as fs from 'fs';
import { GradcamError, checkFloat32Array, invalidRange, invalidType } from '../errors';
import { tempPathFor, writeFileAtomic, writeFileAtomicSync } from '../io/atomic';

export interface NpyArray {
  data: Float32Array;
  shape: number[];
  /** the dtype stored in the file, e.g. '<f4' */
  dtype: string;
}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function parseHeader(header: string, file: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) {
    throw new GradcamError(`Cannot parse the .npy header of ${file}: ${header.trim()}`, 'ENPY');
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new GradcamError(`Bad shape in the .npy header of ${file}: (${shapeText})`, 'ENPY');
  }
  return { descr, fortran: fortran === 'True', shape };
}

/** Parse .npy bytes. Supported dtypes: f4, f8, u1, i1, u2, i2, i4, u4 (little or big endian), converted to float32. */
export function parseNpy(bytes: Uint8Array, file = '<buffer>'): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) {
    throw new GradcamError(`Not a .npy file (no \\x93NUMPY magic): ${file}`, 'ENPY');
  }
  const major = buf[6];
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else {
    throw new GradcamError(`Unsupported .npy format version ${major} in ${file}`, 'ENPY');
  }
  const header = buf.subarray(offset, offset + headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortran, shape } = parseHeader(header, file);
  if (fortran) throw new GradcamError(`Fortran-order .npy arrays are not supported: ${file}`, 'ENPY');
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = offset + headerLen;
  const order = descr[0];
  const kind = descr.slice(1);
  const little = order === '<' || order === '|' || order === '=';
  const sizes: Record<string, number> = { f4: 4, f8: 8, u1: 1, i1: 1, u2: 2, i2: 2, u4: 4, i4: 4 };
  const size = sizes[kind];
  if (size === undefined || !['<', '>', '|', '='].includes(order)) {
    throw new GradcamError(`Unsupported .npy dtype '${descr}' in ${file}: expected float32, float64 or an integer type`, 'ENPY');
  }
  if (buf.length < dataStart + count * size) {
    throw new GradcamError(`Truncated .npy file ${file}: expected ${count * size} data bytes`, 'ENPY');
  }
  const data = new Float32Array(count);
  const dv = new DataView(buf.buffer, buf.byteOffset + dataStart, count * size);
  for (let i = 0; i < count; i++) {
    const o = i * size;
    switch (kind) {
      case 'f4': data[i] = dv.getFloat32(o, little); break;
      case 'f8': data[i] = dv.getFloat64(o, little); break;
      case 'u1': data[i] = dv.getUint8(o); break;
      case 'i1': data[i] = dv.getInt8(o); break;
      case 'u2': data[i] = dv.getUint16(o, little); break;
      case 'i2': data[i] = dv.getInt16(o, little); break;
      case 'u4': data[i] = dv.getUint32(o, little); break;
      case 'i4': data[i] = dv.getInt32(o, little); break;
    }
  }
  return { data, shape, dtype: descr };
}

export function readNpy(file: string): NpyArray {
  if (typeof file !== 'string') throw invalidType('file', 'string', file);
  return parseNpy(fs.readFileSync(file), file);
}

/**
 * The .npy header (version 1.0, '<f4', C order) for `shape`: magic, lengths, padded dict. With
 * `length`, the dict is padded with spaces to exactly that many bytes in all (a header written
 * before the row count is known, patched in place later: NpyAppender).
 */
export function encodeNpyHeader(shape: readonly number[], length?: number): Buffer {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw invalidType('shape', 'array of non-negative integers', shape);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // pad with spaces so that magic + lengths + header + '\n' is a multiple of 64 (numpy's alignment)
  const total = 10 + header.length + 1;
  const pad = length === undefined ? (64 - (total % 64)) % 64 : length - total;
  if (pad < 0 || pad + header.length + 1 > 0xffff) throw invalidRange('length', `at least ${total} bytes for shape [${shape.join(',')}]`, length);
  header += ' '.repeat(pad) + '\n';
  const out = Buffer.alloc(10 + header.length);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  return out;
}

/** Encode a float32 array as .npy (version 1.0, '<f4', C order). */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  checkFloat32Array('data', data);
  const head = encodeNpyHeader(shape);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw invalidRange('data', `Float32Array of length ${count} (shape [${shape.join(',')}])`, data);
  const out = Buffer.alloc(head.length + data.length * 4);
  head.copy(out, 0);
  const body = new Float32Array(out.buffer, out.byteOffset + head.length, data.length);
  // little-endian hosts (all Node targets); DataView would be needed on big-endian
  body.set(data);
  return out;
}

/** Bytes of a Float32Array as stored (little-endian hosts), without a copy. */
function bytesOf(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/** Write a float32 .npy file atomically (a reader or a killed run never sees a partial file). */
export function writeNpy(file: string, data: Float32Array, shape: readonly number[]): void {
  writeFileAtomicSync(file, encodeNpy(data, shape));
}

/**
 * Write a float32 .npy file from row chunks, atomically and without concatenating them first
 * (the chunks, in order, must hold exactly the elements of `shape`).
 */
export async function writeNpyChunks(file: string, chunks: readonly Float32Array[], shape: readonly number[]): Promise<void> {
  chunks.forEach((c, i) => checkFloat32Array(`chunks[${i}]`, c));
  const head = encodeNpyHeader(shape);
  const count = shape.reduce((a, b) => a * b, 1);
  const have = chunks.reduce((a, c) => a + c.length, 0);
  if (have !== count) throw invalidRange('chunks', `${count} elements in all (shape [${shape.join(',')}])`, `${have} elements`);
  await writeFileAtomic(file, [head, ...chunks.map(bytesOf)]);
}

/** Header room for any row count up to 2^53 (16 digits), a multiple of 64 bytes. */
function headerRoom(rowShape: readonly number[]): number {
  const longest = encodeNpyHeader([2 ** 53, ...rowShape]).length;
  return Math.ceil((longest + 16) / 64) * 64;
}

/**
 * A float32 .npy file written row by row as rows arrive, never held in memory: the rows go to a
 * hidden temporary next to `file` behind a header with room for any row count; finish() writes the
 * real count into the header, flushes and renames, so the final name appears only when the file is
 * complete (as writeFileAtomic). discard() removes the temporary. A temporary left by a killed
 * process is what lib/io/atomic's removeStaleTemps removes.
 */
export class NpyAppender {
  private handle: fs.promises.FileHandle | undefined;
  private readonly tmp: string;
  private readonly room: number;
  private offset: number;
  private count = 0;
  private readonly rowLength: number;
  private opening: Promise<fs.promises.FileHandle> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly file: string, readonly rowShape: readonly number[]) {
    this.rowLength = rowShape.reduce((a, b) => a * b, 1);
    this.tmp = tempPathFor(file);
    this.room = headerRoom(rowShape);
    this.offset = this.room;
  }

  /** rows written so far */
  get rows(): number {
    return this.count;
  }

  private open(): Promise<fs.promises.FileHandle> {
    this.opening ??= (async () => {
      const h = await fs.promises.open(this.tmp, 'wx', 0o666);
      this.handle = h;
      await writeAll(h, encodeNpyHeader([0, ...this.rowShape], this.room), 0);
      return h;
    })();
    return this.opening;
  }

  /** Appends rows (a whole number of rows of rowShape); appends run in call order. */
  append(rows: Float32Array): Promise<void> {
    checkFloat32Array('rows', rows);
    if (rows.length % Math.max(1, this.rowLength) !== 0) throw invalidRange('rows', `a multiple of ${this.rowLength} values (rows of [${this.rowShape.join(',')}])`, rows);
    const at = this.offset;
    this.offset += rows.byteLength;
    this.count += this.rowLength === 0 ? 0 : rows.length / this.rowLength;
    const next = this.chain.then(async () => writeAll(await this.open(), bytesOf(rows), at));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Writes the row count into the header, flushes, renames to the final name; returns the shape. */
  async finish(): Promise<number[]> {
    await this.chain;
    const h = await this.open();
    const shape = [this.count, ...this.rowShape];
    await writeAll(h, encodeNpyHeader(shape, this.room), 0);
    await h.sync();
    await h.close();
    this.handle = undefined;
    await fs.promises.rename(this.tmp, this.file);
    return shape;
  }

  /** Removes the temporary (after a failure); the final name is never created. */
  async discard(): Promise<void> {
    await this.chain;
    if (this.handle) await this.handle.close().catch(() => undefined);
    this.handle = undefined;
    await fs.promises.unlink(this.tmp).catch(() => undefined);
  }
}

async function writeAll(h: fs.promises.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) {
    const { bytesWritten } = await h.write(bytes, off, bytes.byteLength - off, position + off);
    off += bytesWritten;
  }
}

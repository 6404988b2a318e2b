/**
 * CRC-32 (IEEE, as zlib's) of bytes and of files, for the model cache's self-checking entries.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';

let crcTable: Int32Array | undefined;

/** CRC-32 continuing from `prev`: zlib.crc32 where node has it (20.15+), a table otherwise. */
export function crc32(data: Uint8Array, prev = 0): number {
  const native = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
  if (native) return native(data, prev);
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~prev;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** A file as a cache entry recorded it: its size and CRC-32. */
export interface FileCheck {
  path: string;
  bytes: number;
  crc: number;
}

const CHUNK = 4 << 20;

/**
 * Size and CRC-32 of a file, read in 4 MiB steps into one buffer: a file of any size costs 4 MiB of
 * memory (a whole-file buffer of a 90 MB model is fresh memory, slow to fault in on some VMs).
 * Synchronous reads: in the thread that loads a model (libuv's pool may be busy decoding pictures),
 * and once per built model in the cache's adopt (as building it, synchronous work).
 */
export function fileCrc32(file: string): { bytes: number; crc: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let crc = 0;
    let bytes = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, bytes);
      if (n === 0) break;
      crc = crc32(buf.subarray(0, n), crc);
      bytes += n;
    }
    return { bytes, crc };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The first file that is missing or differs from its check (undefined: all as recorded). Reads
 * synchronously: it runs in the thread that loads the model (an ORT worker's).
 */
export function firstMismatch(checks: readonly FileCheck[]): string | undefined {
  for (const c of checks) {
    try {
      const st = fs.statSync(c.path);
      if (st.size !== c.bytes) return `${c.path}: ${st.size} bytes, ${c.bytes} recorded`;
      const got = fileCrc32(c.path);
      if (got.bytes !== c.bytes || got.crc !== c.crc) return `${c.path}: crc32 ${got.crc}, ${c.crc} recorded`;
    } catch (e) {
      return `${c.path}: ${(e as Error).message}`;
    }
  }
  return undefined;
}

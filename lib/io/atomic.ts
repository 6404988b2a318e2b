/**
 * Atomic output files: every file the library and the CLI write goes through here. The bytes go to a
 * hidden temporary file in the same folder (`.<name>.<pid>-<random>.tmp`), are flushed to disk, and
 * the temporary is renamed over the final name. A reader (or a run killed at any moment) therefore
 * sees either the previous file, or no file, or the complete new one: never a truncated PNG, .npy
 * or report. A temporary left by a killed process keeps its hidden .tmp name; removeStaleTemps
 * deletes those whose process is gone.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

export type AtomicData = string | Uint8Array | Iterable<Uint8Array>;

export interface AtomicWriteOptions {
  /** flush the data to disk before the rename (default true: the file survives a power cut too) */
  fsync?: boolean;
  /** file mode of a new file (default 0o666, less the umask, as fs.writeFile) */
  mode?: number;
}

/** `.name.<pid>-<8 hex>.tmp`: hidden, never ending in the final name's extension. */
const TEMP_RE = /^\.(.+)\.(\d+)-[0-9a-f]{8}\.tmp$/;

/** The temporary name used for `file`: same folder, hidden, unique to this process and call. */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

/** True for a name tempPathFor makes (a base name, not a path). */
export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}

function chunksOf(data: AtomicData): Iterable<Uint8Array> {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  if (data instanceof Uint8Array) return [data];
  return data;
}

/** Write `data` (text, bytes, or chunks written in order) to `file` atomically. */
export async function writeFileAtomic(file: string, data: AtomicData | AsyncIterable<Uint8Array>, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(file);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(tmp, 'wx', options.mode ?? 0o666);
    const source = typeof data === 'object' && data !== null && Symbol.asyncIterator in data ? (data as AsyncIterable<Uint8Array>) : chunksOf(data as AtomicData);
    for await (const chunk of source) {
      let off = 0;
      while (off < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
        off += bytesWritten;
      }
    }
    if (options.fsync ?? true) await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(tmp, file);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** writeFileAtomic, synchronously. */
export function writeFileAtomicSync(file: string, data: AtomicData, options: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(file);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', options.mode ?? 0o666);
    for (const chunk of chunksOf(data)) {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
    }
    if (options.fsync ?? true) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the temporaries in `dir` left by processes that no longer run (a run killed mid-write);
 * returns their names. Temporaries of live processes (another run writing there now) are kept.
 */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      /* not ours to fight over */
    }
  }
  return removed;
}

import {
  closeSync,
  createReadStream,
  createWriteStream,
  fstatSync,
  mkdirSync,
  openSync,
  readFile as readFileCallback,
  readSync,
  rename as renameCallback,
  renameSync,
  statSync,
  writeFile as writeFileCallback,
  writeFileSync,
} from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { assertValidKey, assertValidRange, type ByteRange, type MultipartWriter, type ObjectInfo, type ObjectStore, type WrittenPart } from './object-store';

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** A node-style callback call as a promise (callback fs: see LocalObjectStore.get). */
function callback<T>(call: (done: (e: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => call((e, value) => (e ? reject(e) : resolve(value as T))));
}

/**
 * A buffer of its own (not a slice of Node's pool), as readFile returns: source tiles are viewed as
 * Uint16Array/Float32Array in place, which needs byteOffset 0.
 */
function ownBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

/**
 * Objects up to this size are read and written with synchronous calls on the calling thread. A
 * cold tile reads 3 source tiles (131 KB each) and writes one 2 KB JPEG: through the thread pool
 * that was 4 round trips per read (open, fstat, read, close) and 4 per write (open, write, close,
 * rename), each a queue hand-off, a wake-up and a completion callback. Measured on the project VM
 * (page cache warm, 4 in flight): a 131 KB read costs 20-30 us of CPU synchronously against 55-120
 * us through the pool, a 2 KB write + rename 45-97 us against 90-370 us, a stat 5 us against 17.
 * The bound keeps the event loop's worst stall small (a 512 KB copy from the page cache is tens of
 * microseconds); anything larger keeps the asynchronous path. A read that must wait for the disk
 * blocks the thread for that wait: acceptable for tiles, whose working set is in the page cache.
 */
const SYNC_IO_MAX_BYTES = 512 * 1024;

/** The embedded default: objects are files under `root`; writes go to a temp file and are renamed into place (atomic). */
export class LocalObjectStore implements ObjectStore, MultipartWriter {
  readonly kind = 'local';
  /**
   * Temp file names: a random prefix per store and a counter, unique among every writer of the
   * directory like a random name per write, without a random draw per tile written (~6 us each).
   */
  private readonly tempPrefix = randomBytes(6).toString('hex');
  private tempSerial = 0;
  private readonly syncReadMaxBytes: number;

  /**
   * `syncReadMaxBytes`: reads up to this size take the synchronous path (default SYNC_IO_MAX_BYTES),
   * for a store whose objects are consumed on the calling thread as soon as they are read anyway
   * (Zarr chunks, decoded at once: see zarrPlaceResolver).
   */
  constructor(
    private readonly root: string,
    options: { syncReadMaxBytes?: number } = {},
  ) {
    this.syncReadMaxBytes = options.syncReadMaxBytes ?? SYNC_IO_MAX_BYTES;
  }

  private tempName(): string {
    return `${this.tempPrefix}${(this.tempSerial++).toString(36)}`;
  }

  private path(key: string): string {
    assertValidKey(key);
    return join(this.root, key);
  }

  async put(key: string, body: Buffer): Promise<void> {
    const target = this.path(key);
    const temp = `${target}.${this.tempName()}.tmp`;
    // Write first and create the directory only if it is missing: a render worker writes one tile
    // per job into directories that mostly exist already, and the recursive mkdir was a third of
    // the write's thread-pool trips.
    if (body.length <= SYNC_IO_MAX_BYTES) {
      // Synchronous, see SYNC_IO_MAX_BYTES.
      try {
        writeFileSync(temp, body);
      } catch (e) {
        if (!isNotFound(e)) throw e;
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(temp, body);
      }
      renameSync(temp, target);
      return;
    }
    // Callback fs for the reason given at get().
    try {
      await callback<void>((done) => writeFileCallback(temp, body, done));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await mkdir(dirname(target), { recursive: true });
      await callback<void>((done) => writeFileCallback(temp, body, done));
    }
    await callback<void>((done) => renameCallback(temp, target, done));
  }

  async get(key: string): Promise<Buffer | undefined> {
    return this.getInto(key, ownBuffer);
  }

  async getInto(key: string, allocate: (size: number) => Buffer): Promise<Buffer | undefined> {
    const path = this.path(key); // an invalid key rejects, as in every adapter
    const small = this.readSmall(path, allocate);
    if (small !== 'large') return small;
    // The callback readFile, not fs/promises': on Node 20 it reads a source tile in fewer thread
    // pool round trips (measured about 1.6x the reads per second), and workers read three per tile.
    return new Promise<Buffer | undefined>((resolve, reject) => {
      readFileCallback(path, (e, body) => {
        if (!e) resolve(body);
        else if (isNotFound(e)) resolve(undefined);
        else reject(e);
      });
    });
  }

  /**
   * A regular file of at most syncReadMaxBytes read synchronously (open, fstat, read, close with
   * no thread-pool trip); `undefined` when missing; 'large' for anything else (bigger, or not a
   * regular file), which get() reads as before. The file is read through one descriptor, so a
   * rename replacing it meanwhile is seen whole or not at all, as with readFile.
   */
  private readSmall(path: string, allocate: (size: number) => Buffer): Buffer | undefined | 'large' {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    try {
      const s = fstatSync(fd);
      if (!s.isFile() || s.size > this.syncReadMaxBytes) return 'large';
      const body = allocate(s.size);
      if (body.length !== s.size) throw new RangeError(`allocate(${s.size}) gave ${body.length} bytes`);
      let done = 0;
      while (done < body.length) {
        const n = readSync(fd, body, done, body.length - done, done);
        if (n === 0) break;
        done += n;
      }
      return done === body.length ? body : body.subarray(0, done);
    } finally {
      closeSync(fd);
    }
  }

  async getRange(key: string, range: ByteRange): Promise<Buffer | undefined> {
    const path = this.path(key);
    assertValidRange(range);
    let file;
    try {
      file = await open(path, 'r');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    try {
      const size = (await file.stat()).size;
      const start = 'suffixLength' in range ? Math.max(0, size - range.suffixLength) : Math.min(range.offset, size);
      const end = 'suffixLength' in range ? size : Math.min(size, range.offset + range.length);
      const body = Buffer.alloc(end - start);
      let done = 0;
      while (done < body.length) {
        const { bytesRead } = await file.read(body, done, body.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === body.length ? body : body.subarray(0, done);
    } finally {
      await file.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.path(key);
    try {
      // Synchronous: one stat is cheaper than its thread-pool trip (see SYNC_IO_MAX_BYTES). A
      // missing object answers undefined instead of throwing: a gateway checks every tile it is
      // asked for, and for cold tiles building the ENOENT error (message, stack) cost more than the stat.
      const s = statSync(path, { throwIfNoEntry: false });
      return s?.isFile() ? { size: s.size } : undefined;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<string> {
    // Walk only the directory the prefix names, then filter by the remaining partial segment.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const start = dirKey === '' ? this.root : this.path(dirKey);
    const found: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (isNotFound(e)) return;
        throw e;
      }
      for (const entry of entries) {
        const key = keyPrefix === '' ? entry.name : `${keyPrefix}/${entry.name}`;
        if (entry.isDirectory()) await walk(join(dir, entry.name), key);
        else if (entry.isFile() && !entry.name.endsWith('.tmp') && key.startsWith(prefix)) found.push(key);
      }
    };
    await walk(start, dirKey);
    found.sort();
    yield* found;
  }

  /** Parts of a multipart write live in `<key>.parts/<token>/`, beside the object they become. */
  private partsDir(key: string, token: string): string {
    if (!/^[0-9a-f]{24}$/.test(token)) throw new Error('invalid multipart token');
    return `${this.path(key)}.parts/${token}`;
  }

  async beginMultipart(key: string): Promise<string> {
    const token = randomBytes(12).toString('hex');
    await mkdir(this.partsDir(key, token), { recursive: true });
    return token;
  }

  async putPart(key: string, token: string, partNumber: number, body: Buffer): Promise<string> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new RangeError(`invalid part number ${partNumber}`);
    const dir = this.partsDir(key, token);
    const temp = join(dir, `${partNumber}.${this.tempName()}.tmp`);
    await callback<void>((done) => writeFileCallback(temp, body, done));
    await rename(temp, join(dir, String(partNumber)));
    return `${body.length}`;
  }

  async completeMultipart(key: string, token: string, parts: WrittenPart[]): Promise<void> {
    const dir = this.partsDir(key, token);
    const target = this.path(key);
    const temp = `${target}.${this.tempName()}.tmp`;
    const out = createWriteStream(temp);
    try {
      for (const p of [...parts].sort((a, b) => a.partNumber - b.partNumber)) await pipeline(createReadStream(join(dir, String(p.partNumber))), out, { end: false });
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      await rename(temp, target);
    } catch (e) {
      out.destroy();
      await rm(temp, { force: true });
      throw e;
    }
    await rm(dir, { recursive: true, force: true });
    await rmdir(`${this.path(key)}.parts`).catch(() => undefined); // only if no other write to this key is under way
  }

  async abortMultipart(key: string, token: string): Promise<void> {
    await rm(this.partsDir(key, token), { recursive: true, force: true });
    await rmdir(`${this.path(key)}.parts`).catch(() => undefined); // only if no other write to this key is under way
  }

  async downloadTo(key: string, path: string): Promise<number | undefined> {
    const source = this.path(key);
    try {
      await copyFile(source, `${path}.part`);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    await rename(`${path}.part`, path);
    return (await stat(path)).size;
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await stat(this.root);
  }
}

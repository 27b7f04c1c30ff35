import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Decoded chunks that the worker processes of one machine hand each other. Why: a render job goes
 * to whichever worker is free, so a viewer stepping through the z slices of a 64³-chunked Zarr
 * has its tiles at z and z + 1 rendered by different workers, and each decoded the same Blosc
 * blocks for itself: with 2 workers, bench:zarr's plane-by-plane rounds decoded every chunk
 * window 2-3 times. A window decoded by one worker is written here; the others read it back
 * (a copy from memory) instead of reading and decoding it again.
 */
export interface SharedChunks {
  /** Fills `into` with the chunk kept under `key`; false when none is kept (or one of another size). */
  read(key: string, into: Uint8Array): boolean;
  /**
   * 'mine': decode it (and write, then release); 'theirs': another process is decoding it, or has
   * just written it: read it back soon.
   */
  claim(key: string): 'mine' | 'theirs';
  write(key: string, bytes: Uint8Array): void;
  release(key: string): void;
}

export interface SharedChunkStats {
  /** Chunks read back from another process's (or this one's) decode. */
  hits: number;
  /** Chunks this process claimed and decoded itself. */
  misses: number;
  writes: number;
  /** Writes that failed (the file system full, say): the chunk is simply not shared. */
  failedWrites: number;
  /** Bytes of chunks this process has written and not yet removed. */
  bytes: number;
}

export interface SharedChunkFilesOptions {
  /** A directory of memory-backed files (tmpfs: /dev/shm) that only this user may enter. */
  dir: string;
  /** Bytes of chunks this process keeps there; its oldest go first. */
  maxBytes: number;
  /** Keeps apart deployments that share the directory (their dataset ids may coincide). */
  namespace: string;
  /** Files older than this are removed by anyone (left by a process that died). Default 5 min. */
  staleMs?: number;
}

/** A claim older than this is taken over: its holder died or hung while decoding. */
export const CLAIM_STALE_MS = 1000;
const SWEEP_EVERY_MS = 60_000;

/** Where a worker keeps shared chunks unless told: memory-backed /dev/shm where there is one. */
export function defaultSharedChunksDir(): string {
  const user = process.getuid?.() ?? 'user';
  return join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `tilefarm-chunks-${user}`);
}

const errorCode = (e: unknown) => (e as NodeJS.ErrnoException).code;

/**
 * SharedChunks as files in one directory, one file per chunk, named by a hash of the key: written
 * to a temporary name and renamed, so a reader sees a whole chunk or none. A claim is a file created
 * exclusively beside it. Each process removes what it wrote beyond its budget (oldest first) and all
 * of it when it closes; files older than `staleMs` are swept by whoever finds them.
 */
export class SharedChunkFiles implements SharedChunks {
  private readonly written: { name: string; bytes: number }[] = [];
  private readonly counts: SharedChunkStats = { hits: 0, misses: 0, writes: 0, failedWrites: 0, bytes: 0 };
  private readonly sweeper: NodeJS.Timeout;
  private nextTemp = 0;
  private readonly staleMs: number;

  private constructor(private readonly options: SharedChunkFilesOptions) {
    this.staleMs = options.staleMs ?? 5 * 60_000;
    this.sweep();
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS).unref();
  }

  /**
   * Opens (creating it, mode 0700) a directory that must be a real directory of this user's that
   * nobody else may enter: anyone who can write there could hand the workers pixels of their own.
   */
  static open(options: SharedChunkFilesOptions): SharedChunkFiles {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    const info = lstatSync(options.dir);
    if (!info.isDirectory()) throw new Error(`${options.dir} is not a directory`);
    const uid = process.getuid?.();
    if (uid !== undefined && info.uid !== uid) throw new Error(`${options.dir} belongs to user ${info.uid}, not to this process's user ${uid}`);
    if ((info.mode & 0o077) !== 0) throw new Error(`${options.dir} may be entered by other users (mode ${(info.mode & 0o777).toString(8)}); make it 0700`);
    return new SharedChunkFiles(options);
  }

  private path(key: string): string {
    return join(this.options.dir, createHash('sha1').update(`${this.options.namespace}\n${key}`).digest('hex'));
  }

  read(key: string, into: Uint8Array): boolean {
    let fd: number;
    try {
      fd = openSync(this.path(key), 'r');
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return false;
      throw e;
    }
    try {
      if (fstatSync(fd).size !== into.byteLength) return false;
      for (let at = 0; at < into.byteLength; ) {
        const n = readSync(fd, into, at, into.byteLength - at, at);
        if (n === 0) return false;
        at += n;
      }
      this.counts.hits++;
      return true;
    } finally {
      closeSync(fd);
    }
  }

  claim(key: string): 'mine' | 'theirs' {
    const path = this.path(key);
    const claim = `${path}.claim`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        closeSync(openSync(claim, 'wx', 0o600));
        // Written between the caller's read and this claim: read it instead.
        if (existsSync(path)) {
          this.release(key);
          return 'theirs';
        }
        this.counts.misses++;
        return 'mine';
      } catch (e) {
        if (errorCode(e) !== 'EEXIST') throw e;
        if (!this.removeIfOlder(claim, CLAIM_STALE_MS)) return 'theirs';
      }
    }
    return 'theirs';
  }

  release(key: string): void {
    this.unlink(`${this.path(key)}.claim`);
  }

  write(key: string, bytes: Uint8Array): void {
    // One chunk may not take over the budget: it would push out everything else at once.
    if (bytes.byteLength > this.options.maxBytes / 4) return;
    const path = this.path(key);
    const temp = `${path}.${process.pid}.${this.nextTemp++}.tmp`;
    try {
      writeFileSync(temp, bytes, { mode: 0o600 });
      renameSync(temp, path);
    } catch {
      this.unlink(temp);
      this.counts.failedWrites++;
      return;
    }
    this.counts.writes++;
    this.written.push({ name: path, bytes: bytes.byteLength });
    this.counts.bytes += bytes.byteLength;
    while (this.counts.bytes > this.options.maxBytes) {
      const oldest = this.written.shift()!;
      this.unlink(oldest.name);
      this.counts.bytes -= oldest.bytes;
    }
  }

  stats(): SharedChunkStats {
    return { ...this.counts };
  }

  /** Removes every chunk this process wrote. */
  close(): void {
    clearInterval(this.sweeper);
    for (const { name } of this.written.splice(0)) this.unlink(name);
    this.counts.bytes = 0;
  }

  /** Files left by processes that died (or chunks nobody wrote again for long) go. */
  private sweep(): void {
    let names: string[];
    try {
      names = readdirSync(this.options.dir);
    } catch {
      return;
    }
    for (const name of names) this.removeIfOlder(join(this.options.dir, name), this.staleMs);
  }

  private removeIfOlder(path: string, ms: number): boolean {
    try {
      if (Date.now() - statSync(path).mtimeMs < ms) return false;
    } catch (e) {
      return errorCode(e) === 'ENOENT';
    }
    this.unlink(path);
    return true;
  }

  /** Gone already, or not ours to remove: either way nothing a render should fail for. */
  private unlink(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // ignored
    }
  }
}

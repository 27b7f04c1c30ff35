import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, futimesSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, readlinkSync, readvSync, renameSync, symlinkSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Decoded chunks that the worker processes of one machine hand each other. Why: a render job goes
 * to whichever worker is free, so a viewer stepping through the z slices of a 64³-chunked Zarr
 * has its tiles at z and z + 1 rendered by different workers, and each decoded the same Blosc
 * blocks for itself: with 2 workers, bench:zarr's plane-by-plane rounds decoded every chunk
 * window 2-3 times. The planes a worker decodes for a tile are written here (one entry per tile,
 * channel and window of planes: the tile's stack, or its windows of chunks that reach into other
 * tiles, chunked-tile-reader.ts); the others read them back (a copy from memory) instead of reading
 * and decoding them again.
 */
export interface SharedChunks {
  /**
   * Fills `into` with what is kept under `key` (parts: one after the other, as written); false when
   * nothing is kept, or something of another size.
   */
  read(key: string, into: Uint8Array | readonly Uint8Array[]): boolean;
  /**
   * Fills `into` from byte `offset` of what is kept under `key`, which must be `entryBytes` in all:
   * one plane of a tile's stack. False as for `read`.
   */
  readPart(key: string, into: Uint8Array, offset: number, entryBytes: number): boolean;
  /**
   * 'mine': decode it (and write, then release); 'theirs': another process is decoding it, or has
   * just written it: read it back soon.
   */
  claim(key: string): 'mine' | 'theirs';
  /** Keeps `bytes` (parts: one after the other) under `key`. */
  write(key: string, bytes: Uint8Array | readonly Uint8Array[]): void;
  release(key: string): void;
}

/** Counted in entries: what is kept under one key (the reader keeps a tile's planes of one channel and window under one). */
export interface SharedChunkStats {
  /** Entries read back from another process's (or this one's) decode. */
  hits: number;
  /** Parts of entries read back (readPart: a plane of a tile's stack). */
  partHits: number;
  /** Entries this process claimed and decoded itself. */
  misses: number;
  writes: number;
  /** Writes that failed (the file system full, say): the chunk is simply not shared. */
  failedWrites: number;
  /** Bytes of its arena holding chunks this process has written and not yet overwritten. */
  bytes: number;
}

export interface SharedChunkFilesOptions {
  /** A directory of memory-backed files (tmpfs: /dev/shm) that only this user may enter. */
  dir: string;
  /** Bytes of chunks this process keeps there (its arena); its oldest are overwritten first. */
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

/** An entry's bytes as parts (one after the other), and their total. */
function partsOf(bytes: Uint8Array | readonly Uint8Array[]): { parts: readonly Uint8Array[]; size: number } {
  const parts = Array.isArray(bytes) ? (bytes as readonly Uint8Array[]) : [bytes as Uint8Array];
  return { parts, size: parts.reduce((sum, p) => sum + p.byteLength, 0) };
}

/** Each entry in an arena: magic, sequence number, 16 bytes of the key's hash, the samples' size. */
const HEADER_BYTES = 32;
const MAGIC = 0x6b686374; // "tchk"
/** Entries start on page boundaries: a write of one never touches its neighbours' pages. */
const ENTRY_ALIGN = 4096;

interface Written {
  link: string;
  from: number;
  to: number;
}

/**
 * SharedChunks in one directory. Each process writes the chunks it decodes into an arena of its own
 * (one file of `maxBytes`, a ring: its oldest chunks are overwritten first), and names each one by
 * a symbolic link from a hash of its key to "arena:offset:size:sequence". Why not a file per chunk:
 * creating one allocates fresh memory-backed pages, which on this project's VM cost 87 µs per
 * 128 KB file alone and 0.2 ms under load (a third of what sharing saved); overwriting an arena's
 * pages costs 16 µs, and a short link's target lives in its inode. Each entry carries a header
 * with the key's hash and the link's sequence number, written invalid before its samples and valid
 * after: a reader reads header, samples, header, and takes the samples only if both headers are
 * the ones its link named, so a chunk overwritten while it is read is never taken for another. A
 * claim is a file created exclusively beside the link. Files older than `staleMs` (those of a
 * process that died) are swept by whoever finds them; a live process keeps its arena's time fresh.
 */
export class SharedChunkFiles implements SharedChunks {
  private readonly written: Written[] = [];
  private readonly counts: SharedChunkStats = { hits: 0, partHits: 0, misses: 0, writes: 0, failedWrites: 0, bytes: 0 };
  private readonly sweeper: NodeJS.Timeout;
  private readonly staleMs: number;
  private readonly arenaName = `arena-${process.pid}-${randomBytes(6).toString('hex')}`;
  private arena: number | undefined;
  private next = 0;
  private sequence = 0;
  /** Other processes' arenas, open while read from (closed at each sweep: a removed arena's memory is freed once nobody holds it). */
  private readonly opened = new Map<string, number>();
  private readonly header = Buffer.alloc(HEADER_BYTES);

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

  /** Hashes of the keys lately asked for: a decoded window's key is read, claimed, written and released. */
  private readonly hashes = new Map<string, Buffer>();

  private hashOf(key: string): Buffer {
    let hash = this.hashes.get(key);
    if (!hash) {
      if (this.hashes.size >= 4096) this.hashes.clear();
      hash = createHash('sha1').update(`${this.options.namespace}\n${key}`).digest();
      this.hashes.set(key, hash);
    }
    return hash;
  }

  private linkOf(hash: Buffer): string {
    return join(this.options.dir, hash.toString('hex'));
  }

  /** Never throws: a shared chunk that cannot be read is decoded instead. */
  read(key: string, into: Uint8Array | readonly Uint8Array[]): boolean {
    const { parts, size } = partsOf(into);
    if (!this.readAt(key, parts, size, 0, size)) return false;
    this.counts.hits++;
    return true;
  }

  readPart(key: string, into: Uint8Array, offset: number, entryBytes: number): boolean {
    if (offset < 0 || offset + into.byteLength > entryBytes || !this.readAt(key, [into], into.byteLength, offset, entryBytes)) return false;
    this.counts.partHits++;
    return true;
  }

  /** `parts` (`wanted` bytes) filled from byte `from` of the entry under `key`, if it is `bytes` in all. */
  private readAt(key: string, parts: readonly Uint8Array[], wanted: number, from: number, bytes: number): boolean {
    const hash = this.hashOf(key);
    const target = this.targetOf(this.linkOf(hash));
    if (target === undefined) return false;
    const [arena, offset, size, sequence] = target.split(':');
    if (Number(size) !== bytes || !/^arena-[0-9]+-[0-9a-f]+$/.test(arena ?? '')) return false;
    const fd = this.arenaFd(arena!);
    if (fd === undefined) return false;
    const at = Number(offset);
    const valid = () => readSync(fd, this.header, 0, HEADER_BYTES, at) === HEADER_BYTES && this.header.readUInt32LE(0) === MAGIC && this.header.readUInt32LE(4) === Number(sequence) && this.header.subarray(8, 24).equals(hash.subarray(0, 16)) && this.header.readUInt32LE(24) === bytes;
    try {
      // Every part in one call (a tile's windows of 64³ chunks reaching into other tiles are 16 parts); a short read, which a
      // memory-backed file does not give, is taken for a miss. Valid after as before, else it was
      // overwritten while read (its owner's ring came round): not this chunk any more.
      if (!valid() || readvSync(fd, parts, at + HEADER_BYTES + from) !== wanted || !valid()) return false;
    } catch {
      return false; // an I/O error: decoded instead
    }
    return true;
  }

  private arenaFd(name: string): number | undefined {
    if (name === this.arenaName) return this.arena;
    let fd = this.opened.get(name);
    if (fd === undefined) {
      try {
        fd = openSync(join(this.options.dir, name), 'r');
      } catch {
        return undefined;
      }
      this.opened.set(name, fd);
    }
    return fd;
  }

  claim(key: string): 'mine' | 'theirs' {
    const link = this.linkOf(this.hashOf(key));
    const claim = `${link}.claim`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        closeSync(openSync(claim, 'wx', 0o600));
        // Written between the caller's read and this claim: read it instead.
        if (this.exists(link)) {
          this.release(key);
          return 'theirs';
        }
        this.counts.misses++;
        return 'mine';
      } catch (e) {
        // No claim can be made here (the directory gone, the file system full): decode it alone.
        if (errorCode(e) !== 'EEXIST') return 'mine';
        if (!this.removeIfOlder(claim, CLAIM_STALE_MS)) return 'theirs';
      }
    }
    return 'theirs';
  }

  release(key: string): void {
    this.unlink(`${this.linkOf(this.hashOf(key))}.claim`);
  }

  write(key: string, bytes: Uint8Array | readonly Uint8Array[]): void {
    const { parts, size } = partsOf(bytes);
    const total = Math.ceil((HEADER_BYTES + size) / ENTRY_ALIGN) * ENTRY_ALIGN;
    // One chunk may not take over the budget: it would push out everything else at once.
    if (total > this.options.maxBytes / 4) return;
    const hash = this.hashOf(key);
    try {
      this.arena ??= openSync(join(this.options.dir, this.arenaName), 'w+', 0o600);
      if (this.next + total > this.options.maxBytes) this.next = 0;
      const from = this.next;
      this.forget(from, from + total);
      this.sequence = (this.sequence % 0xffffffff) + 1;
      // Invalid while the samples are written; valid, with this link's sequence, once they are.
      const header = Buffer.alloc(HEADER_BYTES);
      writeSync(this.arena, header, 0, HEADER_BYTES, from);
      if (writevSync(this.arena, parts, from + HEADER_BYTES) !== size) throw new Error('short write');
      header.writeUInt32LE(MAGIC, 0);
      header.writeUInt32LE(this.sequence, 4);
      hash.copy(header, 8, 0, 16);
      header.writeUInt32LE(size, 24);
      writeSync(this.arena, header, 0, HEADER_BYTES, from);
      const link = this.linkOf(hash);
      const temp = `${link}.${process.pid}.${this.sequence}.tmp`;
      symlinkSync(`${this.arenaName}:${from}:${size}:${this.sequence}`, temp);
      renameSync(temp, link);
      this.next = from + total;
      this.written.push({ link, from, to: from + total });
      this.counts.bytes += total;
    } catch {
      this.counts.failedWrites++;
      return;
    }
    this.counts.writes++;
  }

  /** Links to entries in [from, to) of this arena go: their samples are about to be overwritten. */
  private forget(from: number, to: number): void {
    while (this.written.length > 0 && this.written[0]!.from < to && this.written[0]!.to > from) {
      const old = this.written.shift()!;
      this.counts.bytes -= old.to - old.from;
      // Only if it still names this arena's entry (another process may have linked the key since).
      if (this.linkedHere(old.link, old.from)) this.unlink(old.link);
    }
  }

  private linkedHere(link: string, from: number): boolean {
    return this.targetOf(link)?.startsWith(`${this.arenaName}:${from}:`) ?? false;
  }

  stats(): SharedChunkStats {
    return { ...this.counts };
  }

  /** Removes every chunk this process wrote, and its arena. */
  close(): void {
    clearInterval(this.sweeper);
    for (const { link, from } of this.written.splice(0)) if (this.linkedHere(link, from)) this.unlink(link);
    this.counts.bytes = 0;
    this.closeOthers();
    if (this.arena !== undefined) closeSync(this.arena);
    this.arena = undefined;
    this.unlink(join(this.options.dir, this.arenaName));
  }

  private closeOthers(): void {
    for (const fd of this.opened.values()) closeSync(fd);
    this.opened.clear();
  }

  /** Files left by processes that died (or chunks nobody wrote again for long) go; this process's arena stays fresh. */
  private sweep(): void {
    this.closeOthers();
    if (this.arena !== undefined) futimesSync(this.arena, new Date(), new Date());
    let names: string[];
    try {
      names = readdirSync(this.options.dir);
    } catch {
      return;
    }
    for (const name of names) this.removeIfOlder(join(this.options.dir, name), this.staleMs);
  }

  /** Where a link points; undefined for none, or anything not a link (nothing of ours). */
  private targetOf(link: string): string | undefined {
    try {
      // Looked at first: a miss is the common case, and readlink throws (slowly) for it.
      return lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(link) : undefined;
    } catch {
      return undefined;
    }
  }

  private exists(path: string): boolean {
    try {
      return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  }

  /** Whether `path` is gone now (removed here, or already). */
  private removeIfOlder(path: string, ms: number): boolean {
    let info;
    try {
      info = lstatSync(path, { throwIfNoEntry: false });
    } catch {
      return false;
    }
    if (info && Date.now() - info.mtimeMs < ms) return false;
    if (info) this.unlink(path);
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

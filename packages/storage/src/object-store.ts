/** Metadata of a stored object. */
export interface ObjectInfo {
  size: number;
  etag?: string;
}

/** Part of an object: `length` bytes from `offset`, or the last `suffixLength` bytes (a Zarr shard's index). */
export type ByteRange = { offset: number; length: number } | { suffixLength: number };

export interface PutOptions {
  contentType?: string;
  cacheControl?: string;
}

/**
 * The one object-store interface: sources, manifests, specs and rendered tiles all live here.
 * Every adapter passes the same behaviour suite (packages/storage/test/object-store-contract.ts):
 * a put is atomic (a reader sees the whole old object, the whole new one, or none), and a get
 * after a resolved put sees it.
 */
export interface ObjectStore {
  readonly kind: string;
  put(key: string, body: Buffer, options?: PutOptions): Promise<void>;
  /** `undefined` when the key does not exist. */
  get(key: string): Promise<Buffer | undefined>;
  /**
   * As get, but a small object's bytes go into memory the caller gives: `allocate(size)` returns a
   * buffer of exactly `size` bytes (the worker reuses source-tile buffers: a fresh one per read cost
   * more than the read). An adapter may answer with a buffer of its own instead (a large object);
   * adapters that cannot read into given memory leave it out and callers use get.
   */
  getInto?(key: string, allocate: (size: number) => Buffer): Promise<Buffer | undefined>;
  /**
   * Part of an object, `undefined` when the key does not exist. A range reaching past the end is
   * cut at the end (as HTTP and S3 do); one starting at or past the end is empty.
   */
  getRange(key: string, range: ByteRange): Promise<Buffer | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  delete(key: string): Promise<void>;
  /** Keys under a prefix, in lexicographic order. */
  list(prefix: string): AsyncIterable<string>;
  /** Throws if the store cannot be reached (readiness checks). */
  ping(): Promise<void>;
  close?(): Promise<void>;
}

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._\-/]*$/;

/** Keys are relative, slash-separated, without "." or ".." segments: the same rule for every adapter. */
export function assertValidKey(key: string): void {
  if (key.length > 900 || !SAFE_KEY.test(key) || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid object key: ${JSON.stringify(key.slice(0, 100))}`);
  }
}

/** Checks a range's numbers (the same for every adapter): non-negative safe integers. */
export function assertValidRange(range: ByteRange): void {
  const nums = 'suffixLength' in range ? [range.suffixLength] : [range.offset, range.length];
  if (!nums.every((n) => Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`invalid byte range: ${JSON.stringify(range)}`);
}

/** One stored part of a multipart write: its number (1-based, in object order) and the store's tag for it. */
export interface WrittenPart {
  partNumber: number;
  etag: string;
}

/**
 * Large objects written in parts that arrive separately (browser uploads, resumable): S3's
 * multipart upload on S3, part files beside the object on local disk. Nothing of a write is
 * visible at `key` before `completeMultipart`; `abortMultipart` removes every part stored so far.
 */
export interface MultipartWriter {
  /** Starts a write to `key`; returns the store's token for it. */
  beginMultipart(key: string): Promise<string>;
  /** Stores part `partNumber` (1..10000); a part sent again replaces the earlier one. Returns its tag. */
  putPart(key: string, token: string, partNumber: number, body: Buffer): Promise<string>;
  /** Joins the parts, in part-number order, into the object at `key`. */
  completeMultipart(key: string, token: string, parts: WrittenPart[]): Promise<void>;
  abortMultipart(key: string, token: string): Promise<void>;
  /**
   * Copies the object at `key` to a local file, streaming (whatever its size), via `path.part`
   * renamed when whole; its size, or `undefined` if there is no such object.
   */
  downloadTo(key: string, path: string): Promise<number | undefined>;
}

/** The store's multipart writer: both adapters have one (a store without it cannot take uploads). */
export function multipartOf(store: ObjectStore): MultipartWriter {
  const m = store as Partial<MultipartWriter>;
  if (typeof m.beginMultipart !== 'function' || typeof m.putPart !== 'function' || typeof m.completeMultipart !== 'function' || typeof m.abortMultipart !== 'function' || typeof m.downloadTo !== 'function') {
    throw new Error(`the ${store.kind} object store cannot write in parts`);
  }
  return store as ObjectStore & MultipartWriter;
}

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

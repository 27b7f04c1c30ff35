import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertValidKey, assertValidRange, type ByteRange, type MultipartWriter, type ObjectInfo, type ObjectStore, type PutOptions, type WrittenPart } from './object-store';

export interface S3ObjectStoreOptions {
  bucket: string;
  region: string;
  /** For MinIO, s3rver or any S3-protocol server; omit for AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Optional key prefix inside the bucket, e.g. "tilefarm/". */
  prefix?: string;
  /** Per-request timeout, so a hung store turns into an error instead of a stuck render. */
  requestTimeoutMs?: number;
}

function isNotFound(e: unknown): boolean {
  if (e instanceof S3ServiceException) {
    return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata.httpStatusCode === 404;
  }
  return false;
}

function clientFor(options: Omit<S3ObjectStoreOptions, 'bucket' | 'prefix'>): S3Client {
  const credentials =
    options.accessKeyId !== undefined && options.secretAccessKey !== undefined
      ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
      : undefined;
  return new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    credentials,
    maxAttempts: 3,
    // The connection timeout also runs while a request waits for a free socket: a burst of
    // existence checks queues there, so give it room and more sockets than the default 50.
    requestHandler: { requestTimeout: options.requestTimeoutMs ?? 10_000, connectionTimeout: 10_000, httpAgent: { maxSockets: 256 }, httpsAgent: { maxSockets: 256 } },
  });
}

/** Objects in an S3 bucket through @aws-sdk/client-s3 (AWS, MinIO, s3rver). */
export class S3ObjectStore implements ObjectStore, MultipartWriter {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    this.client = clientFor(options);
  }

  private objectKey(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  async put(key: string, body: Buffer, options: PutOptions = {}): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: body,
        ContentLength: body.length,
        ContentType: options.contentType,
        CacheControl: options.cacheControl,
      }),
    );
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async getRange(key: string, range: ByteRange): Promise<Buffer | undefined> {
    assertValidRange(range);
    // A suffix is turned into an explicit range after a HEAD: not every S3-protocol server honours
    // "bytes=-N" (s3rver answers the whole object), and shard indexes are read once and cached.
    if ('suffixLength' in range) {
      const info = await this.head(key);
      if (!info) return undefined;
      const offset = Math.max(0, info.size - range.suffixLength);
      range = { offset, length: info.size - offset };
    }
    // HTTP ranges are inclusive and cannot be empty: an empty request is answered without asking.
    if (range.length === 0) return (await this.head(key)) ? Buffer.alloc(0) : undefined;
    const header = `bytes=${range.offset}-${range.offset + range.length - 1}`;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: header }));
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (e) {
      if (isNotFound(e)) return undefined;
      // A range starting past the end: S3 answers 416; the port's answer is an empty buffer.
      if (e instanceof S3ServiceException && (e.$metadata.httpStatusCode === 416 || e.name === 'InvalidRange')) return Buffer.alloc(0);
      throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { size: out.ContentLength ?? 0, etag: out.ETag };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async *list(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }),
      );
      for (const item of out.Contents ?? []) {
        if (item.Key !== undefined) yield item.Key.slice(this.prefix.length);
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async beginMultipart(key: string): Promise<string> {
    const out = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    if (!out.UploadId) throw new Error('S3 started a multipart upload without an upload id');
    return out.UploadId;
  }

  async putPart(key: string, token: string, partNumber: number, body: Buffer): Promise<string> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new RangeError(`invalid part number ${partNumber}`);
    const out = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: token, PartNumber: partNumber, Body: body, ContentLength: body.length }));
    return out.ETag ?? '';
  }

  async completeMultipart(key: string, token: string, parts: WrittenPart[]): Promise<void> {
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber).map((p) => ({ PartNumber: p.partNumber, ETag: p.etag }));
    await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: token, MultipartUpload: { Parts: sorted } }));
  }

  async abortMultipart(key: string, token: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: token }));
    } catch (e) {
      // Already completed or aborted: nothing is left of it.
      if (!(e instanceof S3ServiceException && (e.name === 'NoSuchUpload' || e.$metadata.httpStatusCode === 404))) throw e;
    }
  }

  async downloadTo(key: string, path: string): Promise<number | undefined> {
    return downloadObject(this.client, this.bucket, this.objectKey(key), path);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** Streams one object to `path` (via `path.part`, renamed when whole); `undefined` if there is no such object. */
async function downloadObject(client: S3Client, bucket: string, key: string, path: string, signal?: AbortSignal): Promise<number | undefined> {
  let out;
  try {
    out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  const part = `${path}.part`;
  try {
    const body = out.Body;
    if (!(body instanceof Readable)) throw new Error(`s3://${bucket}/${key}: the SDK returned no Node stream`);
    await pipeline(body, createWriteStream(part), { signal });
    await rename(part, path);
  } catch (e) {
    await rm(part, { force: true });
    throw e;
  }
  return out.ContentLength ?? 0;
}

export type S3SourceFetcherOptions = Omit<S3ObjectStoreOptions, 'bucket' | 'prefix'>;

/**
 * Copies whole objects from any bucket the credentials can read to local files, streaming (memory
 * stays at a few socket buffers whatever the size): how a queued ingest of s3://bucket/key gets a
 * file its TIFF reader can seek in.
 */
export class S3SourceFetcher {
  private readonly client: S3Client;

  constructor(options: S3SourceFetcherOptions) {
    // Reads of multi-GB files: the timeout is per socket inactivity, not for the whole body.
    this.client = clientFor({ requestTimeoutMs: 60_000, ...options });
  }

  /**
   * Writes `s3://bucket/key` to `path` (via `path.part`, renamed when complete) and returns its
   * size, or `undefined` if there is no such object.
   */
  async downloadTo(bucket: string, key: string, path: string, signal?: AbortSignal): Promise<number | undefined> {
    return downloadObject(this.client, bucket, key, path, signal);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

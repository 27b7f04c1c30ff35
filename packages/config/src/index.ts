import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { z } from 'zod';

/** Thrown when the environment is invalid; `problems` names every bad variable at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses an environment against a zod object schema. Called once, in an app's main.ts; nothing else
 * in tilefarm reads process.env. Every problem is reported together, not the first one only.
 */
export function loadConfig<S extends z.ZodObject<z.ZodRawShape>>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  return parsed.data;
}

/**
 * The environment a composition root parses: the process environment over the values of an env
 * file (`.env` in the working directory, or the file `ENV_FILE` names; `ENV_FILE=` reads none).
 * A variable set in the environment wins over the file. Parsed with Node's own `.env` parser.
 */
export function environmentWithFile(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const file = env.ENV_FILE ?? '.env';
  if (file === '' || !existsSync(file)) return env;
  let values: Record<string, string | undefined>;
  try {
    values = parseEnv(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError([`ENV_FILE: cannot read "${file}": ${(e as Error).message}`]);
  }
  return { ...values, ...env };
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Shared variable groups; each app's config is built from these plus its own. */
export const RedisEnv = {
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  /** Namespaces every Redis key (BullMQ prefix too): several systems, or tests, share one Redis. */
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -').default('tilefarm'),
};

export const StorageEnv = {
  STORAGE: z.enum(['local', 's3']).default('local'),
  DATA_DIR: z.string().min(1).default('./.data'),
  S3_ENDPOINT: z.string().url().optional(),
  S3_BUCKET: z.string().min(3).optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_PREFIX: z.string().default(''),
  S3_FORCE_PATH_STYLE: bool.default(true),
};

export const LogEnv = {
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

const ACCESS_TOKEN_ENTRY = /^[A-Za-z0-9._~+/=-]{16,256}:[a-z0-9][a-z0-9_-]{0,63}$/;

/** Access control, shared by the API and the gateways (unset: an open system, as embedded). */
export const AccessEnv = {
  /** `token:tenant[,token:tenant...]`; tokens of 16+ characters. */
  ACCESS_TOKENS: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || v.split(',').every((e) => ACCESS_TOKEN_ENTRY.test(e.trim())), {
      message: 'must be token:tenant[,token:tenant...] with tokens of 16-256 characters of A-Z a-z 0-9 . _ ~ + / = - and tenants like dataset ids',
    }),
  /** HMAC keys for signed tile URLs, comma-separated; the first signs, all verify (rotation). */
  URL_SIGNING_KEYS: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || v.split(',').every((k) => k.trim().length >= 32), { message: 'each key must be at least 32 characters' }),
  /** Lifetime of signed tile URLs (seconds; an `exp` is signed into each); unset = they do not expire. */
  URL_SIGNATURE_TTL_S: int(60, 365 * 24 * 3600).optional(),
};

/** Where browsers reach the API (announced tile URLs) and the gateway: the API, gateways and launcher. */
export const PublicUrlEnv = {
  /** The API's HTTP port. */
  PORT: int(0, 65535).default(8080),
  /** The gateway's Socket.IO port. */
  GATEWAY_PORT: int(0, 65535).default(8081),
  /** Base of announced tile URLs: the API, or a CDN / cache in front of it; default http://localhost:PORT. */
  TILE_BASE_URL: z.string().url().optional(),
  /** Where browsers reach the gateway; default: the viewer page's own host at GATEWAY_PORT. */
  GATEWAY_PUBLIC_URL: z.string().url().optional(),
};

/** Announced tile URLs start with this: `TILE_BASE_URL`, else this machine's API port (never a request's Host header). */
export function tileBaseUrl(env: { PORT: number; TILE_BASE_URL?: string | undefined }): string {
  return (env.TILE_BASE_URL ?? `http://localhost:${env.PORT}`).replace(/\/$/, '');
}

const S3_SOURCE_ENTRY = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9!_.*'()/-]{0,512})?$/;

/** Where queued ingests (POST /v1/datasets) may read sources: the API and every worker, the same values. */
export const IngestSourceEnv = {
  /** Directory that server-side sources must lie in (a shared path on the API and every worker); unset: no server paths. */
  INGEST_ROOT: z.string().min(1).optional(),
  /** Allowed s3:// sources, comma-separated `bucket` or `bucket/prefix`; unset: no s3:// sources. */
  INGEST_S3_SOURCES: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || v.split(',').every((e) => S3_SOURCE_ENTRY.test(e.trim())), { message: 'must be bucket or bucket/prefix entries, comma-separated' })
    .transform((v) => (v ?? '').split(',').map((e) => e.trim()).filter((e) => e !== '')),
};

/** The per-tenant storage quota: workers (queued ingests, OME-Zarr copies) and the ingest CLI, every path that writes a dataset. */
export const TenantQuotaEnv = {
  /** Per-tenant storage quota in MB of bytes written to storage (public datasets not counted); unset: none. */
  TENANT_STORAGE_QUOTA_MB: z.coerce.number().int().min(1).optional(),
};

/** TENANT_STORAGE_QUOTA_MB in bytes, undefined when unset. */
export function tenantQuotaBytes(config: { TENANT_STORAGE_QUOTA_MB?: number | undefined }): number | undefined {
  return config.TENANT_STORAGE_QUOTA_MB === undefined ? undefined : config.TENANT_STORAGE_QUOTA_MB * 2 ** 20;
}

/** What happens to a dataset's objects once they are no longer current (API and workers). */
export const RetentionEnv = {
  /** Seconds a replaced or deleted version's objects are kept (tiles of it may be in flight) before workers delete them. */
  VERSION_GRACE_S: int(0, 30 * 24 * 3600).default(600),
};

/** Bounded work per request (API and gateways: every door resolves specs through the same planner). */
export const RenderCostEnv = {
  /**
   * Most sample operations one tile or region render may cost: output pixels × (source channels ×
   * z depth + formula nodes + channels); see packages/render/src/render-cost.ts. A spec over it is
   * refused with 400 spec_too_expensive. About 1-5 ns per operation on one core.
   */
  MAX_RENDER_COST: z.coerce.number().int().min(1_000_000).default(200_000_000),
  /**
   * Most tiles one render job carries (adjacent tiles of one request, one plane, one priority; see
   * packages/tile-requests/src/render-batches.ts): BullMQ's per-job Redis work is paid once per
   * batch. 1: one job per tile, keyed by the tile (as before batches). Set it alike on every API and
   * gateway; workers take both kinds of job.
   */
  RENDER_BATCH_TILES: int(1, 16).default(4),
};

export const envHelpers = { int, bool };

/** S3 needs a bucket: a cross-variable rule checked with the rest. */
export function requireS3Bucket(env: { STORAGE: string; S3_BUCKET?: string | undefined }, ctx: z.RefinementCtx): void {
  if (env.STORAGE === 's3' && !env.S3_BUCKET) {
    ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required when STORAGE=s3' });
  }
}

export interface StorageEnvValues {
  STORAGE: 'local' | 's3';
  DATA_DIR: string;
  S3_ENDPOINT?: string | undefined;
  S3_BUCKET?: string | undefined;
  S3_REGION: string;
  S3_ACCESS_KEY_ID?: string | undefined;
  S3_SECRET_ACCESS_KEY?: string | undefined;
  S3_PREFIX: string;
  S3_FORCE_PATH_STYLE: boolean;
}

/** The storage settings `openObjectStore` takes, from the parsed environment. */
export function storageSettings(env: StorageEnvValues) {
  if (env.STORAGE === 'local') return { kind: 'local' as const, dir: env.DATA_DIR };
  return {
    kind: 's3' as const,
    bucket: env.S3_BUCKET ?? '',
    region: env.S3_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    prefix: env.S3_PREFIX,
  };
}

/**
 * glibc's malloc settings for every tilefarm process, given to each by whoever starts it (the
 * launcher, the container image, the test system), all measured in docs/capacity.md:
 * - `hugetlb=1`: large allocations — the workers' pooled source tiles, sharp's buffers — are asked
 *   for as transparent huge pages where the kernel allows them (THP "madvise" mode, the usual
 *   default). On the project VM a fresh 4 KB page costs ~15 us to fault in; with this, bench:e2e
 *   used 11 % less CPU per cold tile in 4 alternated pairs.
 * - `mmap_threshold` 32 MB and `trim_threshold` 1 GB: memory a process frees stays in its heap for
 *   its next allocations instead of going back to the kernel. Buffers up to 32 MB (a worker's 2 MB
 *   stacks of 64³ Zarr planes among them) come from the heap, and the heap is not trimmed: on VMs
 *   that hand freed memory to the host (free page reporting) touching it again cost 1.1-1.3 ms per
 *   MB, and a linked plane-by-plane tile's workers spent 0.24 ms zeroing such pages (0.02 with
 *   this). A process's heap is bounded by its caches and pools; it stays at its peak.
 * A process started without them runs the same, a little slower. An operator's own GLIBC_TUNABLES wins.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824';

/**
 * Node flags for every tilefarm process (the API, the gateways, the workers, and the ingest CLI
 * through `npm run ingest`), given by whoever starts them (the launcher, the image's commands, the
 * test system). V8 then refuses to turn any string into code (eval, new Function): user formulas
 * are parsed and interpreted, never evaluated, and with this no dependency can generate code either
 * (zod's is off in @tilefarm/contracts; bull-board's page is rendered without ejs,
 * apps/api/src/dashboard-server-adapter.ts; linked Zarrs' Blosc, zstd and lz4 chunks are decoded by
 * their C libraries, not numcodecs' wasm glue, which builds functions from strings:
 * packages/zarr/src/zarr-library.ts).
 */
export const NODE_FLAGS: readonly string[] = ['--disallow-code-generation-from-strings'];

/**
 * NODE_FLAGS for an app process by its script: every app the same since the workers' Zarr decoders
 * stopped needing code generation (one place to differ per app, should one ever have to).
 */
export function nodeFlagsFor(_script: string): readonly string[] {
  return NODE_FLAGS;
}

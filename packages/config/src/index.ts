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

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { DatasetManifest } from '@tilefarm/contracts';
import type { DatasetAccess } from './tile-planner';

/** Datasets of this tenant are readable with any valid token (and by everyone in an open system). */
export const PUBLIC_TENANT = 'public';

/**
 * Who is asking: anyone (no tokens configured: the embedded default), the operator (the admin
 * token: sees everything, writes public datasets), or one tenant's token holder.
 */
export type Principal = { kind: 'open' } | { kind: 'operator' } | { kind: 'tenant'; tenant: string };

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Access tokens from `ACCESS_TOKENS`. Tokens are compared as SHA-256 digests with
 * `timingSafeEqual`, so neither their content nor their length leaks through timing.
 */
export class AccessTokens {
  private readonly entries: Array<{ digest: Buffer; tenant: string }>;
  private readonly operator: Buffer | undefined;

  private constructor(entries: Array<{ token: string; tenant: string }>, operatorToken: string | undefined) {
    this.entries = entries.map((e) => ({ digest: digest(e.token), tenant: e.tenant }));
    this.operator = operatorToken ? digest(operatorToken) : undefined;
  }

  /**
   * `token:tenant[,token:tenant...]` (syntax checked by the config schema); unset or empty: the
   * system is open. `operatorToken` (ADMIN_TOKEN) stands for the operator.
   */
  static parse(raw: string | undefined, operatorToken?: string): AccessTokens {
    const entries = (raw ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e.includes(':'))
      .map((e) => ({ token: e.slice(0, e.lastIndexOf(':')), tenant: e.slice(e.lastIndexOf(':') + 1) }))
      .filter((e) => e.token.length > 0 && e.tenant.length > 0);
    return new AccessTokens(entries, operatorToken);
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The principal a token stands for; `undefined` for a missing or unknown token when tokens are on. */
  authenticate(token: string | undefined): Principal | undefined {
    const usable = typeof token === 'string' && token !== '' && token.length <= 1024;
    const given = usable ? digest(token) : undefined;
    if (given && this.operator && timingSafeEqual(given, this.operator)) return { kind: 'operator' };
    if (!this.enabled) return { kind: 'open' };
    if (!given) return undefined;
    let found: string | undefined;
    // Every entry is compared, so the time taken does not tell which one matched.
    for (const e of this.entries) if (timingSafeEqual(given, e.digest) && found === undefined) found = e.tenant;
    return found === undefined ? undefined : { kind: 'tenant', tenant: found };
  }
}

/** Whether a principal may see a dataset: its own tenant's and public ones; everything when open or the operator. */
export function mayAccess(principal: Principal, manifest: Pick<DatasetManifest, 'tenant'>): boolean {
  if (principal.kind !== 'tenant') return true;
  const tenant = manifest.tenant ?? PUBLIC_TENANT;
  return tenant === principal.tenant || tenant === PUBLIC_TENANT;
}

/** The planner's access check for a principal (undefined = no check: an open system, or the operator). */
export function datasetAccessFor(principal: Principal): DatasetAccess | undefined {
  return principal.kind !== 'tenant' ? undefined : (m) => mayAccess(principal, m);
}

/** The tenant a principal's writes belong to: its own; the operator and an open system write public datasets. */
export function writerTenant(principal: Principal): string {
  return principal.kind === 'tenant' ? principal.tenant : PUBLIC_TENANT;
}

/**
 * Whether a principal may write (ingest into, re-ingest, delete) the dataset id owned by `owner`
 * (undefined: an id nobody has used). An id belongs to its first owner for good: public ones to
 * the operator (or anyone in an open system), a tenant's to that tenant.
 */
export function mayWrite(principal: Principal, owner: string | undefined): boolean {
  return owner === undefined || owner === writerTenant(principal);
}

/** Whether a principal may see an ingest job started for `jobTenant`: the same tenant's only (all when open or the operator). */
export function maySeeJob(principal: Principal, jobTenant: string | undefined): boolean {
  return principal.kind !== 'tenant' || principal.tenant === jobTenant;
}

/** The query parameters carrying a tile URL's signature and its optional expiry (Unix seconds). */
export const SIGNATURE_PARAM = 'sig';
export const EXPIRY_PARAM = 'exp';

const CANONICAL_SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
const EXPIRY = /^[1-9][0-9]{0,11}$/;

export interface TileUrlSignerOptions {
  /**
   * Lifetime of the URLs this signer issues; undefined = they do not expire. The expiry is rounded
   * up to a whole window of this length, so a URL stays the same for a while (caches keyed on the
   * whole URL keep hitting) and is valid between one and two lifetimes.
   */
  ttlSeconds?: number | undefined;
}

/**
 * Signed tile URLs: HMAC-SHA256 over the canonical path (the URL path as the API receives it,
 * e.g. `/tiles/ab/cells/v1/...png`) and, when the URL carries `exp`, its expiry: base64url.
 * Several keys allow rotation: the first signs, any verifies. A signature is accepted only in its
 * canonical spelling (decoding ignores the last character's low bits, so four spellings would
 * decode to the same bytes), then compared in constant time.
 */
export class TileUrlSigner {
  private readonly keys: Buffer[];
  private readonly ttlSeconds: number | undefined;

  constructor(keys: string[], options: TileUrlSignerOptions = {}) {
    this.keys = keys.filter((k) => k !== '').map((k) => Buffer.from(k, 'utf8'));
    this.ttlSeconds = options.ttlSeconds;
  }

  static parse(raw: string | undefined, options: TileUrlSignerOptions = {}): TileUrlSigner {
    return new TileUrlSigner((raw ?? '').split(',').map((k) => k.trim()), options);
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  private mac(key: Buffer, path: string, exp: string | undefined): Buffer {
    return createHmac('sha256', key).update(exp === undefined ? `tilefarm-v1\n${path}` : `tilefarm-v1\n${path}\n${exp}`).digest();
  }

  /** The signature of `path` (with `exp`, the expiry that goes beside it in the URL). */
  signature(path: string, exp?: string): string {
    const key = this.keys[0];
    if (!key) throw new Error('no URL signing key configured');
    return this.mac(key, path, exp).toString('base64url');
  }

  /** `base + path`, with `?sig=` (and `exp=` when URLs expire) appended when signing is on. */
  url(base: string, path: string, now = Date.now()): string {
    const p = path.startsWith('/') ? path : `/${path}`;
    if (!this.enabled) return `${base}${p}`;
    if (this.ttlSeconds === undefined) return `${base}${p}?${SIGNATURE_PARAM}=${this.signature(p)}`;
    const window = this.ttlSeconds;
    const exp = String((Math.floor(now / 1000 / window) + 2) * window);
    return `${base}${p}?${EXPIRY_PARAM}=${exp}&${SIGNATURE_PARAM}=${this.signature(p, exp)}`;
  }

  /** Whether `signature` (and `exp`, if the URL has one) are valid for `path` at `now`. */
  verify(path: string, signature: unknown, exp?: unknown, now = Date.now()): boolean {
    if (typeof signature !== 'string' || !CANONICAL_SIGNATURE.test(signature)) return false;
    if (exp !== undefined && (typeof exp !== 'string' || !EXPIRY.test(exp) || Number(exp) * 1000 <= now)) return false;
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== 32 || given.toString('base64url') !== signature) return false;
    let ok = false;
    for (const key of this.keys) if (timingSafeEqual(given, this.mac(key, path, exp as string | undefined))) ok = true;
    return ok;
  }
}

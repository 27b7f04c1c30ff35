import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { DatasetManifest } from '@tilefarm/contracts';
import type { DatasetAccess } from './tile-planner';

/** Datasets of this tenant are readable with any valid token (and by everyone in an open system). */
export const PUBLIC_TENANT = 'public';

/** Who is asking: anyone (no tokens configured: the embedded default), or one tenant's token holder. */
export type Principal = { kind: 'open' } | { kind: 'tenant'; tenant: string };

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Access tokens from `ACCESS_TOKENS`. Tokens are compared as SHA-256 digests with
 * `timingSafeEqual`, so neither their content nor their length leaks through timing.
 */
export class AccessTokens {
  private readonly entries: Array<{ digest: Buffer; tenant: string }>;

  private constructor(entries: Array<{ token: string; tenant: string }>) {
    this.entries = entries.map((e) => ({ digest: digest(e.token), tenant: e.tenant }));
  }

  /** `token:tenant[,token:tenant...]` (syntax checked by the config schema); unset or empty: the system is open. */
  static parse(raw: string | undefined): AccessTokens {
    const entries = (raw ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e.includes(':'))
      .map((e) => ({ token: e.slice(0, e.lastIndexOf(':')), tenant: e.slice(e.lastIndexOf(':') + 1) }))
      .filter((e) => e.token.length > 0 && e.tenant.length > 0);
    return new AccessTokens(entries);
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The principal a token stands for; `undefined` for a missing or unknown token when tokens are on. */
  authenticate(token: string | undefined): Principal | undefined {
    if (!this.enabled) return { kind: 'open' };
    if (typeof token !== 'string' || token === '' || token.length > 1024) return undefined;
    const given = digest(token);
    let found: string | undefined;
    // Every entry is compared, so the time taken does not tell which one matched.
    for (const e of this.entries) if (timingSafeEqual(given, e.digest) && found === undefined) found = e.tenant;
    return found === undefined ? undefined : { kind: 'tenant', tenant: found };
  }
}

/** Whether a principal may see a dataset: its own tenant's and public ones; everything when open. */
export function mayAccess(principal: Principal, manifest: Pick<DatasetManifest, 'tenant'>): boolean {
  if (principal.kind === 'open') return true;
  const tenant = manifest.tenant ?? PUBLIC_TENANT;
  return tenant === principal.tenant || tenant === PUBLIC_TENANT;
}

/** The planner's access check for a principal (undefined = no check, an open system). */
export function datasetAccessFor(principal: Principal): DatasetAccess | undefined {
  return principal.kind === 'open' ? undefined : (m) => mayAccess(principal, m);
}

/** The query parameter carrying a tile URL's signature. */
export const SIGNATURE_PARAM = 'sig';

/**
 * Signed tile URLs: HMAC-SHA256 over the canonical path (the URL path as the API receives it,
 * e.g. `/tiles/ab/cells/v1/...png`), base64url. Several keys allow rotation: the first signs,
 * any verifies. Comparison is constant-time.
 */
export class TileUrlSigner {
  private readonly keys: Buffer[];

  constructor(keys: string[]) {
    this.keys = keys.filter((k) => k !== '').map((k) => Buffer.from(k, 'utf8'));
  }

  static parse(raw: string | undefined): TileUrlSigner {
    return new TileUrlSigner((raw ?? '').split(',').map((k) => k.trim()));
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  private mac(key: Buffer, path: string): Buffer {
    return createHmac('sha256', key).update(`tilefarm-v1\n${path}`).digest();
  }

  signature(path: string): string {
    const key = this.keys[0];
    if (!key) throw new Error('no URL signing key configured');
    return this.mac(key, path).toString('base64url');
  }

  /** `base + path`, with `?sig=` appended when signing is on. */
  url(base: string, path: string): string {
    const p = path.startsWith('/') ? path : `/${path}`;
    return this.enabled ? `${base}${p}?${SIGNATURE_PARAM}=${this.signature(p)}` : `${base}${p}`;
  }

  verify(path: string, signature: unknown): boolean {
    if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(signature)) return false;
    const given = Buffer.from(signature, 'base64url');
    let ok = false;
    for (const key of this.keys) if (timingSafeEqual(given, this.mac(key, path))) ok = true;
    return ok;
  }
}

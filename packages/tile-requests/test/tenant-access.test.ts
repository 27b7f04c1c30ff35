import { AccessTokens, TileUrlSigner, datasetAccessFor, mayAccess, maySeeJob, mayWrite, writerTenant } from '@tilefarm/tile-requests';

describe('AccessTokens', () => {
  const tokens = AccessTokens.parse('alpha-token-0123456789:alpha, beta-token-0123456789ab:beta');

  it('maps each token to its tenant and refuses anything else', () => {
    expect(tokens.enabled).toBe(true);
    expect(tokens.authenticate('alpha-token-0123456789')).toEqual({ kind: 'tenant', tenant: 'alpha' });
    expect(tokens.authenticate('beta-token-0123456789ab')).toEqual({ kind: 'tenant', tenant: 'beta' });
    for (const bad of [undefined, '', 'alpha-token-012345678', 'alpha-token-0123456789 ', 'ALPHA-TOKEN-0123456789', 'x'.repeat(5000)]) expect(tokens.authenticate(bad)).toBeUndefined();
  });

  it('is open when unset: everyone, every dataset', () => {
    const open = AccessTokens.parse(undefined);
    expect(open.enabled).toBe(false);
    expect(open.authenticate(undefined)).toEqual({ kind: 'open' });
    expect(datasetAccessFor({ kind: 'open' })).toBeUndefined();
  });

  it('lets a tenant see its own and public datasets only', () => {
    const alpha = { kind: 'tenant' as const, tenant: 'alpha' };
    expect([mayAccess(alpha, { tenant: 'alpha' }), mayAccess(alpha, { tenant: 'public' }), mayAccess(alpha, { tenant: 'beta' })]).toEqual([true, true, false]);
  });
});

describe('TileUrlSigner', () => {
  const path = '/tiles/ab/cells/v1/s0123456789abcdef/l0-z0-t0-x1-y2.png';

  it('signs with the first key and verifies with any (rotation)', () => {
    const old = new TileUrlSigner(['old-key-0123456789abcdef0123456789']);
    const rotated = new TileUrlSigner(['new-key-0123456789abcdef0123456789', 'old-key-0123456789abcdef0123456789']);
    const retired = new TileUrlSigner(['new-key-0123456789abcdef0123456789']);
    const sig = old.signature(path);
    expect(sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated.verify(path, sig)).toBe(true);
    expect(retired.verify(path, sig)).toBe(false);
    expect(rotated.signature(path)).not.toBe(sig);
    expect(retired.verify(path, rotated.signature(path))).toBe(true);
  });

  it('binds the signature to the exact path', () => {
    const s = new TileUrlSigner(['key-0123456789abcdef0123456789abcd']);
    const sig = s.signature(path);
    expect(s.verify(path.replace('x1-y2', 'x1-y3'), sig)).toBe(false);
    expect(s.verify(path.toUpperCase(), sig)).toBe(false);
    for (const bad of [undefined, '', sig.slice(1), `${sig}A`, ['x'], sig.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))]) expect(s.verify(path, bad)).toBe(false);
    expect(s.url('https://cdn.example', path)).toBe(`https://cdn.example${path}?sig=${sig}`);
    expect(new TileUrlSigner([]).url('https://cdn.example', path.slice(1))).toBe(`https://cdn.example${path}`);
  });
});

describe('TileUrlSigner: one spelling per signature, optional expiry (issue 11)', () => {
  const path = '/tiles/ab/cells/v1/s0123456789abcdef/l0-z0-t0-x1-y2.png';
  const key = 'key-0123456789abcdef0123456789abcd';

  it('accepts only the canonical base64url spelling of a signature', () => {
    const s = new TileUrlSigner([key]);
    const sig = s.signature(path);
    // 43 characters carry 258 bits for 256: the last character's low 2 bits are ignored by a
    // lenient decoder, so 4 spellings decode to the same bytes. Only the canonical one may pass.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(sig.at(-1)!);
    const spellings = [0, 1, 2, 3].map((low) => sig.slice(0, -1) + alphabet[(last & ~3) | low]);
    expect(spellings).toContain(sig);
    for (const other of spellings) expect(Buffer.from(other, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
    expect(spellings.filter((x) => s.verify(path, x))).toEqual([sig]);
  });

  it('signs an expiry into the URL when a lifetime is set, and refuses it once passed or changed', () => {
    const s = new TileUrlSigner([key], { ttlSeconds: 600 });
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const url = new URL(s.url('https://cdn.example', path, now));
    const exp = url.searchParams.get('exp')!;
    const sig = url.searchParams.get('sig')!;
    expect(Number(exp) * 1000).toBeGreaterThanOrEqual(now + 600_000);
    expect(Number(exp) * 1000).toBeLessThanOrEqual(now + 1_200_000);
    // Stable within a window, so caches keyed on the whole URL keep hitting.
    expect(s.url('https://cdn.example', path, now + 1000)).toBe(url.toString());
    expect(s.verify(path, sig, exp, now)).toBe(true);
    expect(s.verify(path, sig, exp, Number(exp) * 1000 + 1)).toBe(false); // expired
    expect(s.verify(path, sig, String(Number(exp) + 3600), now)).toBe(false); // extended by hand
    expect(s.verify(path, sig, undefined, now)).toBe(false); // expiry removed
    for (const bad of ['', 'abc', '1e12', '-1', ['1']]) expect(s.verify(path, sig, bad, now)).toBe(false);
    // A signer without a lifetime still honours (and checks) an expiry it is given.
    const plain = new TileUrlSigner([key]);
    expect(plain.verify(path, sig, exp, now)).toBe(true);
    expect(plain.verify(path, plain.signature(path), undefined, now)).toBe(true);
  });
});

describe('dataset ownership (issue 11 items 3, 5)', () => {
  const alpha = { kind: 'tenant' as const, tenant: 'alpha' };
  const operator = { kind: 'operator' as const };
  const open = { kind: 'open' as const };

  it('recognises the operator token, with or without tenant tokens', () => {
    const tokens = AccessTokens.parse('alpha-token-0123456789:alpha', 'operator-token-0123456789');
    expect(tokens.authenticate('operator-token-0123456789')).toEqual(operator);
    expect(tokens.authenticate('alpha-token-0123456789')).toEqual(alpha);
    expect(tokens.authenticate('operator-token-012345678')).toBeUndefined();
    expect(AccessTokens.parse(undefined, 'operator-token-0123456789').authenticate('operator-token-0123456789')).toEqual(operator);
    expect(AccessTokens.parse(undefined, 'operator-token-0123456789').authenticate(undefined)).toEqual(open);
  });

  it('lets only the owner write an id; public ids are the operator\'s (or anyone\'s when open)', () => {
    expect([writerTenant(alpha), writerTenant(operator), writerTenant(open)]).toEqual(['alpha', 'public', 'public']);
    expect([mayWrite(alpha, undefined), mayWrite(alpha, 'alpha'), mayWrite(alpha, 'public'), mayWrite(alpha, 'beta')]).toEqual([true, true, false, false]);
    expect([mayWrite(operator, 'public'), mayWrite(operator, 'alpha'), mayWrite(open, 'public'), mayWrite(open, 'alpha')]).toEqual([true, false, true, false]);
    expect(mayAccess(operator, { tenant: 'beta' })).toBe(true);
    expect(datasetAccessFor(operator)).toBeUndefined();
  });

  it('shows an ingest job to its own tenant only', () => {
    expect([maySeeJob(alpha, 'alpha'), maySeeJob(alpha, 'beta'), maySeeJob(alpha, undefined), maySeeJob(alpha, 'public')]).toEqual([true, false, false, false]);
    expect([maySeeJob(operator, 'beta'), maySeeJob(open, 'beta')]).toEqual([true, true]);
  });
});

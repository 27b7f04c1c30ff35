import { AccessTokens, TileUrlSigner, datasetAccessFor, mayAccess } from '@tilefarm/tile-requests';

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
  const path = '/tiles/ab/cells/v1/s0123456789abcdef/0/0/0/1_2.png';

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
    expect(s.verify(path.replace('1_2', '1_3'), sig)).toBe(false);
    expect(s.verify(path.toUpperCase(), sig)).toBe(false);
    for (const bad of [undefined, '', sig.slice(1), `${sig}A`, ['x'], sig.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))]) expect(s.verify(path, bad)).toBe(false);
    expect(s.url('https://cdn.example', path)).toBe(`https://cdn.example${path}?sig=${sig}`);
    expect(new TileUrlSigner([]).url('https://cdn.example', path.slice(1))).toBe(`https://cdn.example${path}`);
  });
});

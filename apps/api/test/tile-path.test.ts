import { tileKey } from '@tilefarm/datasets';
import { TILE_PATH } from '../src/access';

describe('TILE_PATH: the shapes a stored tile path can have', () => {
  const tile = { level: 0, z: 1, t: 0, x: 2, y: 3, format: 'jpeg' as const };

  it('accepts the keys tileKey makes, spec and address in one name', () => {
    const key = tileKey('cells', 4, 's0123456789abcdef', tile);
    expect(key).toMatch(/\/v4\/s0123456789abcdef-l0-z1-t0-x2-y3\.jpeg$/);
    expect(TILE_PATH.test(`/${key}`)).toBe(true);
  });

  it('still accepts keys of the shape before session 8, the spec a directory (their files are still served)', () => {
    expect(TILE_PATH.test('/tiles/ab/cells/v1/s0123456789abcdef/l0-z0-t0-x1-y2.png')).toBe(true);
  });

  it('refuses anything else', () => {
    for (const path of [
      '/tiles/ab/cells/v1/s0123456789abcdef--l0-z0-t0-x1-y2.png',
      '/tiles/ab/cells/v1/s0123456789abcdef/-l0-z0-t0-x1-y2.png',
      '/tiles/ab/cells/v1/s0123456789abcdef/x/l0-z0-t0-x1-y2.png',
      '/tiles/ab/cells/v1/l0-z0-t0-x1-y2.png',
      '/tiles/ab/cells/v1/s0123456789abcde-l0-z0-t0-x1-y2.png',
      '/tiles/ab/cells/v1/s0123456789abcdef-l0-z0-t0-x1-y2.gif',
      '/tiles/ab/../cells/v1/s0123456789abcdef-l0-z0-t0-x1-y2.png',
    ]) {
      expect([path, TILE_PATH.test(path)]).toEqual([path, false]);
    }
  });
});

import fc from 'fast-check';
import { TileEvent, readTileEvent } from '../src';

// readTileEvent is the hand-written reading of TileEvent that gateways and the API run on every
// tile event: it must accept exactly what the schema accepts and return exactly what it returns.

const validTile = fc.record({
  level: fc.integer({ min: 0, max: 30 }),
  z: fc.integer({ min: 0, max: 1_000_000 }),
  t: fc.integer({ min: 0, max: 1_000_000 }),
  x: fc.integer({ min: 0, max: 1_000_000 }),
  y: fc.integer({ min: 0, max: 1_000_000 }),
  format: fc.constantFrom('jpeg', 'png', 'webp'),
});
const common = {
  key: fc.string(),
  dataset: fc.constantFrom('cells', 'a', 'x'.repeat(64), 'beta_cells-2', '0-9'),
  specId: fc.constantFrom('s0123456789abcdef', 'sffffffffffffffff'),
  tile: validTile,
};
/** Events as workers publish them, sometimes with fields a newer version might add. */
const valid = fc.oneof(
  fc.record({ type: fc.constant('ready'), ...common, renderMs: fc.double({ noNaN: true, noDefaultInfinity: true }), extra: fc.anything() }, { requiredKeys: ['type', 'key', 'dataset', 'specId', 'tile'] }),
  fc.record({ type: fc.constant('failed'), ...common, code: fc.string(), message: fc.string(), extra: fc.anything() }, { requiredKeys: ['type', 'key', 'dataset', 'specId', 'tile', 'code', 'message'] }),
);
/** Near misses: one field of a valid event (or of its tile) removed or set to an edge or random value. */
const edge = fc.oneof(fc.constantFrom(undefined, null, -1, -0, 0.5, 31, 1_000_001, NaN, Infinity, '', 'A-cells', '-x', 'x'.repeat(65), 's0123', 'gif', 'JPEG', 'queued', [], {}), fc.anything());
const fields = ['type', 'key', 'dataset', 'specId', 'tile', 'renderMs', 'code', 'message'];
const tileFields = ['level', 'z', 't', 'x', 'y', 'format'];
const nearMiss = fc.tuple(valid, fc.boolean(), fc.constantFrom(...fields), fc.constantFrom(...tileFields), fc.boolean(), edge).map(([e, inTile, field, tileField, remove, value]) => {
  const out: Record<string, unknown> = { ...e, tile: { ...e.tile } };
  const target = inTile ? (out.tile as Record<string, unknown>) : out;
  const name = inTile ? tileField : field;
  if (remove) delete target[name];
  else target[name] = value;
  return out;
});

describe('readTileEvent', () => {
  it('accepts exactly what TileEvent accepts and returns the same event (unknown fields dropped)', () => {
    fc.assert(
      fc.property(fc.oneof(valid, nearMiss, fc.anything()), (raw) => {
        const parsed = TileEvent.safeParse(raw);
        expect(readTileEvent(raw)).toStrictEqual(parsed.success ? parsed.data : undefined);
      }),
      { numRuns: 20_000 },
    );
  });

  it('reads the events workers publish', () => {
    const tileAt = { level: 0, z: 1, t: 0, x: 2, y: 3, format: 'jpeg' as const };
    const ready = { type: 'ready' as const, key: 'tiles/ab/cells/v1/s0123456789abcdef/l0-z1-t0-x2-y3.jpeg', dataset: 'cells', specId: 's0123456789abcdef', tile: tileAt, renderMs: 12.5 };
    expect(readTileEvent(JSON.parse(JSON.stringify(ready)))).toStrictEqual(ready);
    const failed = { ...ready, type: 'failed' as const, code: 'render_timeout', message: 'too slow' };
    const { renderMs: _renderMs, ...failedEvent } = failed;
    expect(readTileEvent(JSON.parse(JSON.stringify(failed)))).toStrictEqual(failedEvent);
  });
});

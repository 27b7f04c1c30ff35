import { TIER, jobPriority } from '@tilefarm/tile-requests';
import { createApiMetrics, createRegistry } from '@tilefarm/telemetry';
import { TileService, etagOf } from '../src/tile-service';
import { DATASET, buildCore, type Core } from '../../../packages/tile-requests/test/support/fakes';

// The API's adapter over the tile-request service, on in-memory fakes: answer shapes and counts.

const position = { level: 0, z: 0, t: 0, x: 0, y: 0, format: 'png' as const };

describe('TileService (HTTP tiles)', () => {
  let core: Core;
  let tiles: TileService;
  let metrics: ReturnType<typeof createApiMetrics>;
  const count = async (name: 'cacheHits' | 'enqueued') => (await metrics[name].get()).values[0]?.value ?? 0;

  beforeEach(async () => {
    core = await buildCore();
    metrics = createApiMetrics(createRegistry('api'));
    tiles = new TileService({ service: core.service, metrics, tileUrl: (key) => `https://cdn.example/${key}`, waitMs: 5000 });
  });
  afterEach(() => core.service.stop());

  it('answers a stored tile with its type, ETag and dataset version, counted as a cache hit', async () => {
    const key = (await core.service.planner.plan(DATASET.id, core.specId, [position])).tiles[0]!.key;
    await core.store.put(key, Buffer.from('png bytes'));
    const answer = await tiles.get(DATASET.id, core.specId, position, true);
    expect(answer).toEqual({ kind: 'image', key, body: Buffer.from('png bytes'), contentType: 'image/png', etag: etagOf(key), version: DATASET.version });
    expect(await count('cacheHits')).toBe(1);
    expect(await count('enqueued')).toBe(0);
  });

  it('without waiting answers pending with the URL the tile will have, at the HTTP tier', async () => {
    const answer = await tiles.get(DATASET.id, core.specId, position, false);
    expect(answer).toEqual({ kind: 'pending', key: answer.key, url: `https://cdn.example/${answer.key}` });
    expect(core.queue.jobs.get(answer.key)?.priority).toBe(TIER.http * 1000);
    expect(await count('enqueued')).toBe(1);
  });

  it('waiting, answers the rendered tile once the worker announces it', async () => {
    const waiting = tiles.get(DATASET.id, core.specId, position, true);
    await new Promise((r) => setImmediate(r));
    await core.render(core.queue.added[0]!);
    expect(await waiting).toMatchObject({ kind: 'image', contentType: 'image/png' });
    expect(await count('enqueued')).toBe(1);
  });

  it('passes the service errors on: unknown dataset, bad spec id', async () => {
    await expect(tiles.get('nope', core.specId, position, true)).rejects.toMatchObject({ code: 'dataset_not_found' });
    await expect(tiles.get(DATASET.id, 'not-a-spec-id', position, true)).rejects.toMatchObject({ code: 'invalid_spec' });
  });

  // Issue 11, fair share over HTTP: each HTTP request is its own listener, so without the tenant
  // one tenant's expensive HTTP tiles all queued at the front, however many it had pending.
  it("charges HTTP tiles to the request's tenant: its second expensive tile queues behind its first, another tenant's does not", async () => {
    const terms = Array.from({ length: 64 }, () => 'c0^c0').join('+');
    const expensive = { channels: Array.from({ length: 8 }, () => ({ formula: terms, window: [0, 1] as [number, number] })), format: 'png' as const };
    const at = (x: number) => ({ ...position, x });
    const first = await tiles.get(DATASET.id, expensive, at(0), false, { tenant: 'lab-a' });
    const second = await tiles.get(DATASET.id, expensive, at(1), false, { tenant: 'lab-a' });
    const other = await tiles.get(DATASET.id, expensive, at(2), false, { tenant: 'lab-b' });
    // Weight 68 (2,049 nodes × 256²): 67 extra places each, lab-a's second after its first's.
    expect(core.queue.priorityOf(first.key)).toBe(jobPriority(TIER.http, 67));
    expect(core.queue.priorityOf(second.key)).toBe(jobPriority(TIER.http, 67 + 67));
    expect(core.queue.priorityOf(other.key)).toBe(jobPriority(TIER.http, 67));
    expect(core.queue.order().indexOf(other.key)).toBeLessThan(core.queue.order().indexOf(second.key));
  });
});

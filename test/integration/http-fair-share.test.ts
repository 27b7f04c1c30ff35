import IORedis from 'ioredis';
import { TestSystem } from '../support/system';

// Issue 11, fair share over HTTP: /v1/tiles and the protocol doors charge a tile to the tenant of
// the request's token, so one tenant's expensive HTTP tiles queue behind its own pending weight
// (like its socket viewers'), and another tenant's do not. No worker runs: the jobs stay queued
// and their BullMQ priorities are read from Redis.

const TOKEN_A = 'alpha-token-0123456789abcdef';
const TOKEN_B = 'beta-token-0123456789abcdef0';
const DATASET = { id: 'fair', width: 768, height: 512, sizeZ: 1, tileSize: 256 as const };
/** 8 channels of 255 formula nodes + 3 sources: 2,051 per pixel, 134 M per 256² tile (weight 68: 67 extra places). */
const terms = Array.from({ length: 64 }, (_, i) => `c${i % 3}^c${(i + 1) % 3}`).join('+');
const EXPENSIVE = { channels: Array.from({ length: 8 }, () => ({ formula: terms, window: [0, 1] })), format: 'png' };
const HTTP_TIER_BASE = 2000; // priorities.ts: TIER.http × 1000

describe('fair share of HTTP tiles per tenant', () => {
  let system: TestSystem;
  let redis: IORedis;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 0, gateways: 1, datasets: [DATASET], env: { ACCESS_TOKENS: `${TOKEN_A}:lab-a,${TOKEN_B}:lab-b` } });
    redis = new IORedis(system.redisUrl);
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await system?.stop();
  });

  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  // A tile's job: its claim's owner with batch jobs (RENDER_BATCH_TILES > 1), else the job keyed by the tile.
  const jobIdOf = async (key: string) => (await redis.hget(`${system.prefix}:render-claims`, key)) ?? key;
  const priorityOfJob = async (id: string) => Number(await redis.hget(`${system.prefix}:render-heavy:${id}`, 'priority'));
  const priorityOf = async (key: string) => priorityOfJob(await jobIdOf(key));

  it("queues a tenant's second expensive HTTP tile behind its first (/v1/tiles and IIIF), another tenant's not", async () => {
    const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json', ...as(TOKEN_A) }, body: JSON.stringify(EXPENSIVE) });
    expect(res.status).toBe(201);
    const spec = ((await res.json()) as { id: string }).id;
    const pending = async (token: string, x: number) => {
      const r = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${spec}/0/0/0/${x}/0.png?wait=0`, { headers: as(token) });
      expect(r.status).toBe(202);
      return ((await r.json()) as { key: string }).key;
    };
    const first = await pending(TOKEN_A, 0);
    const second = await pending(TOKEN_A, 1);
    const other = await pending(TOKEN_B, 2);
    expect(await priorityOf(first)).toBe(HTTP_TIER_BASE + 67);
    expect(await priorityOf(second)).toBe(HTTP_TIER_BASE + 67 + 67);
    expect(await priorityOf(other)).toBe(HTTP_TIER_BASE + 67);

    // A protocol door waits for its image: lab-a's IIIF tile is queued behind both of lab-a's pending ones.
    const iiif = fetch(`${system.apiUrl}/iiif/3/${DATASET.id}~${spec}/0,256,256,256/256,/0/default.png`, { headers: as(TOKEN_A) }).then((r) => r.arrayBuffer());
    const deadline = Date.now() + 10_000;
    let third: number | undefined;
    while (Date.now() < deadline && third === undefined) {
      const keys = await redis.zrange(`${system.prefix}:render-heavy:prioritized`, 0, -1);
      const known = await Promise.all([first, second, other].map(jobIdOf));
      const fresh = keys.filter((k) => !known.includes(k));
      if (fresh.length > 0) third = await priorityOfJob(fresh[0]!);
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(third).toBe(HTTP_TIER_BASE + 3 * 67);
    void iiif.catch(() => undefined);
  }, 60_000);
});

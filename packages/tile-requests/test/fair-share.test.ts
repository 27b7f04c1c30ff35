import { TIER, jobPriority, type TilePlan } from '@tilefarm/tile-requests';
import { DATASET, buildCore, recorder, type Core } from './support/fakes';

// Issue 11 item 1, fair share: one viewer's (or one tenant's) expensive tiles cannot hold more than
// its share of the workers. An expensive tile weighs its cost in ordinary tiles and runs in the
// heavy lane; its owner's later tiles queue behind that weight, everyone else's do not.

const at = (x: number, y: number, z = 0) => ({ level: 0, z, t: 0, x, y });
/** 8 formula channels of 255 nodes on the one-channel dataset: 2,049 per pixel, 134 M per 256² tile (weight 68). */
const terms = Array.from({ length: 64 }, () => 'c0^c0').join('+');
const EXPENSIVE = { channels: Array.from({ length: 8 }, () => ({ formula: terms, window: [0, 1] as [number, number] })), format: 'png' as const };

describe('fair share of the workers', () => {
  let core: Core;
  beforeEach(async () => {
    core = await buildCore();
  });
  afterEach(() => core.service.stop());

  const expensive = (positions: ReturnType<typeof at>[]): Promise<TilePlan> => core.service.planner.plan(DATASET.id, EXPENSIVE, positions);
  const cheap = (positions: ReturnType<typeof at>[]): Promise<TilePlan> => core.service.planner.plan(DATASET.id, core.specId, positions);

  it('puts expensive tiles in the heavy lane and ordinary ones in the ordinary lane', async () => {
    const [e, c] = [await expensive([at(0, 0)]), await cheap([at(0, 0)])];
    expect(e.tiles[0]!.cost).toBe(2049 * 256 * 256);
    await core.service.request(e, e.tiles, TIER.visible, recorder().listener);
    await core.service.request(c, c.tiles, TIER.visible, recorder().listener);
    expect(core.queue.jobs.get(e.tiles[0]!.key)!.lane).toBe('heavy');
    expect(core.queue.jobs.get(c.tiles[0]!.key)!.lane).toBe('render');
  });

  it("a viewer's expensive tiles wait their weight: another viewer's ordinary tiles of the same tier go first", async () => {
    const [a, b] = [recorder(), recorder()];
    const e = await expensive([at(0, 0), at(1, 0)]);
    const c = await cheap([at(0, 0), at(1, 0), at(2, 0)]);
    await core.service.request(e, e.tiles, TIER.visible, a.listener); // asked first
    await core.service.request(c, c.tiles, TIER.visible, b.listener);
    expect(core.queue.order()).toEqual([...c.tiles.map((t) => t.key), ...e.tiles.map((t) => t.key)]);
    // Weight 68: the first expensive tile is 67 places back, the second 67 more behind it.
    expect(e.tiles.map((t) => core.queue.priorityOf(t.key))).toEqual([jobPriority(TIER.visible, 67), jobPriority(TIER.visible, 1 + 67 + 67)]);
  });

  it('a tenant shares one share across its viewers', async () => {
    const [a1, a2, b] = [recorder(), recorder(), recorder()];
    const first = await expensive([at(0, 0), at(1, 0)]);
    const second = await expensive([at(0, 0, 1)]);
    const other = await expensive([at(0, 0, 2)]);
    await core.service.request(first, first.tiles, TIER.visible, a1.listener, { tenant: 'lab-a' });
    await core.service.request(second, second.tiles, TIER.visible, a2.listener, { tenant: 'lab-a' });
    await core.service.request(other, other.tiles, TIER.visible, b.listener, { tenant: 'lab-b' });
    // lab-b's tile comes before lab-a's second viewer's, which queues behind its tenant's backlog.
    const order = core.queue.order();
    expect(order.indexOf(other.tiles[0]!.key)).toBeLessThan(order.indexOf(second.tiles[0]!.key));
    expect(order.indexOf(other.tiles[0]!.key)).toBeLessThan(order.indexOf(first.tiles[1]!.key));
  });

  it('the weight is given back once the tiles are done: the viewer starts again at the front', async () => {
    const a = recorder();
    const e = await expensive([at(0, 0)]);
    await core.service.request(e, e.tiles, TIER.visible, a.listener);
    await core.render(e.tiles[0]!.key);
    const c = await cheap([at(1, 1)]);
    await core.service.request(c, c.tiles, TIER.visible, a.listener);
    expect(core.queue.priorityOf(c.tiles[0]!.key)).toBe(jobPriority(TIER.visible, 0));
  });

  it("ordinary tiles keep today's round-robin between viewers", async () => {
    const [a, b] = [recorder(), recorder()];
    const pa = await cheap([at(0, 0), at(1, 0)]);
    const pb = await cheap([at(0, 1), at(1, 1)]);
    await core.service.request(pa, pa.tiles, TIER.visible, a.listener);
    await core.service.request(pb, pb.tiles, TIER.visible, b.listener);
    expect(core.queue.order()).toEqual([pa.tiles[0]!.key, pb.tiles[0]!.key, pa.tiles[1]!.key, pb.tiles[1]!.key]);
  });
});

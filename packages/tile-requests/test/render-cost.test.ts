import { TilefarmError } from '@tilefarm/contracts';
import { DatasetCatalog } from '@tilefarm/datasets';
import { SpecRegistry, TilePlanner } from '@tilefarm/tile-requests';
import { DATASET, MemoryObjectStore } from './support/fakes';

// The cost ceiling where a spec meets a dataset: every door (HTTP tiles, socket, IIIF, DZI,
// CATMAID, OMERO, regions) plans through TilePlanner, so a refusal here is a refusal everywhere.

const MANIFEST = { ...DATASET, id: 'deep', tileSize: 512 as const, width: 2048, height: 2048, sizeZ: 10, channels: ['A', 'B', 'C'].map((label) => ({ label, color: '#ffffff', window: [0, 4000] as [number, number] })) };
/** k terms `cA^cB` summed: 4k - 1 formula nodes. */
const powers = (k: number) => Array.from({ length: k }, (_, i) => `c${i % 3}^c${(i + 1) % 3}`).join('+');
/** The kind of spec: 64 formula channels of 255 nodes each (64 `^`), a mean over z 0–9. */
const STORM = { channels: Array.from({ length: 64 }, () => ({ formula: powers(64), window: [0, 1] as [number, number] })), projection: { type: 'mean' as const, z: [0, 9] as [number, number] } };

async function planner(maxRenderCost?: number): Promise<TilePlanner> {
  const store = new MemoryObjectStore();
  const catalog = new DatasetCatalog(store, 0);
  await catalog.publish(MANIFEST, { v: 1, dataset: MANIFEST.id, version: 1, planes: [] });
  return new TilePlanner(catalog, new SpecRegistry(store), maxRenderCost === undefined ? {} : { maxRenderCost });
}

async function refusal(p: Promise<unknown>): Promise<TilefarmError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(TilefarmError);
  return e as TilefarmError;
}

describe('TilePlanner: the render cost ceiling', () => {
  it('refuses the issue’s 38-second spec with spec_too_expensive (400), naming formula nodes', async () => {
    const p = await planner(200_000_000);
    const e = await refusal(p.resolve('deep', STORM));
    expect(e.code).toBe('spec_too_expensive');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/largest factor is formula nodes: 16320/);
    expect(e.message).toMatch(/MAX_RENDER_COST/);
  });

  it('names z depth when a deep projection is what costs', async () => {
    const p = await planner(5_000_000);
    const e = await refusal(p.resolve('deep', { channels: [{ index: 0 }, { index: 1 }, { index: 2 }], projection: { type: 'max', z: [0, 9] } }));
    expect(e.code).toBe('spec_too_expensive');
    expect(e.message).toMatch(/largest factor is z depth: 10 slices of 3 source channels/);
  });

  it('names channels when many plain channels are what costs', async () => {
    const p = await planner(5_000_000);
    const e = await refusal(p.resolve('deep', { channels: Array.from({ length: 30 }, (_, i) => ({ index: i % 3, color: '#ff0000' })) }));
    expect(e.message).toMatch(/largest factor is channels: 30 drawn/);
  });

  it('lets a spec just under the ceiling through and reports its cost per pixel', async () => {
    // 3 sources × 10 z + 39 formula nodes + 2 channels = 71 per pixel; a 512² tile costs 18,612,224.
    const spec = { channels: [{ formula: powers(10), window: [0, 1] as [number, number] }, { index: 1 }], projection: { type: 'mean' as const, z: [0, 9] as [number, number] } };
    const resolved = await (await planner(71 * 512 * 512)).resolve('deep', spec);
    expect(resolved.cost).toEqual({ channels: 2, sourceChannels: 3, formulaNodes: 39, zDepth: 10, perPixel: 71 });
    await expect((await planner(71 * 512 * 512 - 1)).resolve('deep', spec)).rejects.toMatchObject({ code: 'spec_too_expensive' });
  });

  it('bounds regions by their output pixels, naming the pixels when the spec itself is cheap', async () => {
    const p = await planner(5_000_000);
    const resolved = await p.resolve('deep', { channels: [{ index: 0 }] });
    const region = { x: 0, y: 0, width: 2048, height: 2048, level: 0, outWidth: 2048, outHeight: 2048 };
    let e: unknown;
    try {
      p.tiles(resolved, [{ level: 0, z: 0, t: 0, x: 0, y: 0, region }]);
    } catch (err) {
      e = err;
    }
    expect(e).toMatchObject({ code: 'spec_too_expensive' });
    expect((e as Error).message).toMatch(/largest factor is pixels: 4\.19e6 in a 2048x2048 region/);
    // The same spec over a small region passes.
    expect(p.tiles(resolved, [{ level: 0, z: 0, t: 0, x: 0, y: 0, region: { ...region, outWidth: 512, outHeight: 512 } }]).tiles).toHaveLength(1);
  });

  it('has no ceiling unless configured', async () => {
    await expect((await planner()).resolve('deep', STORM)).resolves.toMatchObject({ cost: { formulaNodes: 16320 } });
  });
});

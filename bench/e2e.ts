/**
 * bench:e2e — cold tiles per second end to end (issue 2): a viewer asks over its socket for tiles
 * nobody has rendered, and the clock stops when the last `tile:ready` has arrived and its URL has
 * been fetched. Baseline in the same run: the same renders done in one process with no queue,
 * no storage write and no network (the render work alone), so the ratio shows what the
 * distribution costs. Prints a markdown table.
 */
import { cpus } from 'node:os';
import { createTileRenderer, configureSharp } from '@tilefarm/render';
import { readSourceTile } from '@tilefarm/datasets';
import { RenderSpec, levelGrid, type TileAddress } from '@tilefarm/contracts';
import { TestSystem } from '../test/support/system';
import { TestViewer } from '../test/support/socket-client';

const SPEC = { channels: [{ index: 0, color: '#0080ff' }, { index: 1, color: '#00ff00' }, { index: 2, color: '#ff0000' }], format: 'jpeg' as const };
const DATASET = { id: 'bench', width: 2048, height: 2048, sizeZ: 6, tileSize: 256 as const };

function allTiles(sizeZ: number): TileAddress[] {
  const out: TileAddress[] = [];
  const m = { width: DATASET.width, height: DATASET.height, tileSize: DATASET.tileSize };
  for (let z = 0; z < sizeZ; z++) {
    const { cols, rows } = levelGrid(m, 0);
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) out.push({ level: 0, z, t: 0, x, y, format: 'jpeg' });
  }
  return out;
}

async function inProcess(system: TestSystem, tiles: TileAddress[], inFlight: number): Promise<number> {
  configureSharp({ cache: false, concurrency: 1 });
  const renderer = createTileRenderer();
  const spec = RenderSpec.parse(SPEC);
  const manifest = await system.catalog.getVersion(DATASET.id, 1);
  const stats = await system.catalog.getStats(DATASET.id, 1);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < tiles.length) {
        const tile = tiles[next++]!;
        await renderer.render({ manifest, stats, spec, tile, readSource: (c, z, t) => readSourceTile(system.store, DATASET.id, 1, { level: 0, x: tile.x, y: tile.y, c, z, t }) });
      }
    }),
  );
  return tiles.length / ((performance.now() - started) / 1000);
}

async function endToEnd(workers: number, tiles: TileAddress[], specSuffix: number): Promise<{ tilesPerSecond: number; system: TestSystem }> {
  const system = await TestSystem.start({ workers, datasets: [DATASET], env: { LOG_LEVEL: 'info', WORKER_CONCURRENCY: '4' } });
  // A distinct spec per run keeps every tile cold.
  const spec = { ...SPEC, quality: 80 + specSuffix };
  const viewer = new TestViewer(system.gatewayUrl());
  await viewer.connected();
  const started = performance.now();
  const keys: string[] = [];
  for (let i = 0; i < tiles.length; i += 256) {
    const ack = await viewer.request({ dataset: DATASET.id, spec, tiles: tiles.slice(i, i + 256) });
    if (!ack.ok) throw new Error(ack.error.message);
    keys.push(...ack.pending.map((p) => p.key), ...ack.ready.map((r) => r.key));
  }
  await viewer.waitFor(keys, 600_000);
  await Promise.all([...viewer.delivered.values()].slice(-50).map((u) => fetch(u).then((r) => r.arrayBuffer())));
  const seconds = (performance.now() - started) / 1000;
  viewer.close();
  return { tilesPerSecond: keys.length / seconds, system };
}

async function main(): Promise<void> {
  const tiles = allTiles(DATASET.sizeZ);
  console.log(`bench:e2e — ${tiles.length} cold 256x256 JPEG tiles from 3 uint16 channels, ${cpus().length} cores, node ${process.version}`);
  const rows: string[] = [];
  let baselineSystem: TestSystem | undefined;
  for (const [i, workers] of [1, 2, 3].entries()) {
    const { tilesPerSecond, system } = await endToEnd(workers, tiles, i);
    if (!baselineSystem) baselineSystem = system;
    else await system.stop();
    rows.push(`| end to end, ${workers} worker process${workers > 1 ? 'es' : ''} × concurrency 4 | ${tilesPerSecond.toFixed(0)} |`);
  }
  const base = await inProcess(baselineSystem!, tiles, 4);
  await baselineSystem!.stop();
  console.log('\n| path | tiles/s |\n|---|---|');
  console.log(`| baseline: render only, in one process, 4 in flight (no queue, no store, no socket) | ${base.toFixed(0)} |`);
  for (const r of rows) console.log(r);
  console.log(`\nratio best end-to-end / baseline: ${(Math.max(...rows.map((r) => Number(r.split('|')[2]))) / base).toFixed(2)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

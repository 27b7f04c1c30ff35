import sharp from 'sharp';
import { DatasetManifest } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';

// Long specs: a 40-channel dataset (Viv stops at 6, OMERO's URLs at ~35) rendered end to end from
// one POSTed spec whose id keeps the tile URL short, and from OMERO's c= with 40 entries.

const CHANNELS = 40;
const WIDTH = 300;
const HEIGHT = 200;
const TILE = 256;
const ID = 'many-channels';

/** Each channel is 0 or 1000 in a pattern of its own, so with window [0, 1000] every n is exactly 0 or 1. */
const on = (c: number, x: number, y: number) => ((x >> 3) + 3 * (y >> 3) + c) % 5 === 0;
/** A dim colour per channel, so 40 of them add up without all saturating. */
const colour = (c: number): [number, number, number] => [(c * 7) % 23, (c * 5) % 19, (c * 3) % 29];
const hex = (c: number) => colour(c).map((v) => v.toString(16).padStart(2, '0')).join('');

describe('specs with 40 channels', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, gateways: 1 });
    const manifest = DatasetManifest.parse({
      v: 1,
      id: ID,
      version: 1,
      width: WIDTH,
      height: HEIGHT,
      sizeZ: 1,
      sizeT: 1,
      tileSize: TILE,
      levels: 1,
      dtype: 'uint16',
      channels: Array.from({ length: CHANNELS }, (_, c) => ({ label: `ch${c}`, color: '#ffffff', window: [0, 65535] })),
      sourceEncoding: 'raw-deflate-v1',
      createdAt: new Date().toISOString(),
    });
    for (let c = 0; c < CHANNELS; c++) {
      for (const tx of [0, 1]) {
        const width = Math.min(TILE, WIDTH - tx * TILE);
        const data = new Uint16Array(width * HEIGHT);
        for (let y = 0; y < HEIGHT; y++) for (let x = 0; x < width; x++) data[y * width + x] = on(c, tx * TILE + x, y) ? 1000 : 0;
        await system.catalog.putSourceTile(ID, 1, { level: 0, c, z: 0, t: 0, x: tx, y: 0 }, { width, height: HEIGHT, dtype: 'uint16', data });
      }
    }
    await system.catalog.publish(manifest, { v: 1, dataset: ID, version: 1, planes: [] });
  }, 60_000);
  afterAll(() => system?.stop());

  function expected(tx: number, width: number): Uint8Array {
    const out = new Uint8Array(width * HEIGHT * 3);
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < width; x++) {
        const sum = [0, 0, 0];
        for (let c = 0; c < CHANNELS; c++) {
          if (!on(c, tx * TILE + x, y)) continue;
          colour(c).forEach((v, k) => (sum[k]! += v));
        }
        for (let k = 0; k < 3; k++) out[(y * width + x) * 3 + k] = Math.min(255, sum[k]!);
      }
    }
    return out;
  }

  async function pixels(url: string) {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
  }

  function maxDiff(a: Buffer, b: Uint8Array): number {
    let m = 0;
    for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    return m;
  }

  it('renders every one of 40 channels from a POSTed spec behind a short URL, and from OMERO c= with 40 entries', async () => {
    const spec = {
      channels: Array.from({ length: CHANNELS }, (_, c) => ({ index: c, color: `#${hex(c)}`, window: [0, 1000] })),
      format: 'png',
    };
    const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    for (const tx of [0, 1]) {
      const url = `${system.apiUrl}/v1/tiles/${ID}/${id}/0/0/0/${tx}/0.png`;
      expect(url.length).toBeLessThan(120);
      const { data, info } = await pixels(url);
      const width = Math.min(TILE, WIDTH - tx * TILE);
      expect([info.width, info.height, info.channels]).toEqual([width, HEIGHT, 3]);
      const want = expected(tx, width);
      expect(maxDiff(data, want)).toBe(0);
    }

    const c = Array.from({ length: CHANNELS }, (_, k) => `${k + 1}|0:1000$${hex(k)}`).join(',');
    const { data } = await pixels(`${system.apiUrl}/webgateway/render_image_region/${ID}/0/0/?tile=0,0,0,256,256&format=png&c=${encodeURIComponent(c)}`);
    expect(maxDiff(data, expected(0, TILE))).toBe(0);
  });

  it('the picture depends on the 40th channel (not silently capped)', async () => {
    const without = Array.from({ length: CHANNELS }, (_, k) => `${k === CHANNELS - 1 ? '-' : ''}${k + 1}|0:1000$${hex(k)}`).join(',');
    const { data } = await pixels(`${system.apiUrl}/webgateway/render_image_region/${ID}/0/0/?tile=0,0,0&format=png&c=${encodeURIComponent(without)}`);
    expect(maxDiff(data, expected(0, TILE))).toBeGreaterThan(0);
  });
});

import sharp from 'sharp';
import { DatasetManifest, RenderSpec } from '@tilefarm/contracts';
import { createTileRenderer, specIdOf } from '@tilefarm/render';

const manifest = DatasetManifest.parse({
  v: 1, id: 'd1', version: 1, width: 300, height: 300, sizeZ: 1, sizeT: 1, tileSize: 256, levels: 1, dtype: 'uint16',
  channels: [
    { label: 'DAPI', color: '#0000ff', window: [0, 1000] },
    { label: 'GFP', color: '#00ff00', window: [0, 1000] },
  ],
  sourceEncoding: 'raw-deflate-v1', createdAt: '2024-01-01T00:00:00Z',
});

describe('smoke', () => {
  it('renders an edge tile', async () => {
    const r = createTileRenderer();
    const spec = RenderSpec.parse({ channels: [{ index: 0 }, { label: 'GFP', color: '#ff0000', window: [0, 500] }], format: 'png' });
    expect(specIdOf(spec)).toMatch(/^s[0-9a-f]{16}$/);
    const out = await r.render({
      manifest, stats: undefined, spec, tile: { level: 0, z: 0, t: 0, x: 1, y: 0, format: 'png' },
      async readSource(c) {
        const data = new Uint16Array(44 * 256).fill(c === 0 ? 500 : 250);
        return { width: 44, height: 256, dtype: 'uint16', data };
      },
    });
    expect(out.contentType).toBe('image/png');
    const { data, info } = await sharp(out.body).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([44, 256, 3]);
    expect([...data.subarray(0, 3)]).toEqual([128, 0, 128]);
  });
});

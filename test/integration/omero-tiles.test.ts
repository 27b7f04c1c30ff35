import sharp from 'sharp';
import { TestSystem } from '../support/system';

// OMERO's webgateway URLs against the API as a real process: the same picture as the equivalent
// POSTed render spec, decoded pixel by pixel (a spec written differently gets its own render).

const DATASET = { id: 'omero-cells', width: 600, height: 300, sizeZ: 3, tileSize: 256 as const };

async function decode(body: Buffer) {
  return sharp(body).raw().toBuffer({ resolveWithObject: true });
}

async function postSpec(system: TestSystem, spec: unknown): Promise<string> {
  const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function get(url: string) {
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type'), key: res.headers.get('x-tile-key'), body };
}

describe('OMERO webgateway URLs', () => {
  let system: TestSystem;
  const omero = (path: string, query: Record<string, string>) => `${system.apiUrl}/webgateway/${path}/?${new URLSearchParams(query).toString()}`;
  const v1 = (specId: string, t: { level: number; z: number; x: number; y: number }, ext: string) =>
    `${system.apiUrl}/v1/tiles/${DATASET.id}/${specId}/${t.level}/${t.z}/0/${t.x}/${t.y}.${ext}`;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, gateways: 1, datasets: [DATASET] });
  }, 60_000);
  afterAll(() => system?.stop());

  it('render_image_region with c, maps and format=png gives the pixels of the same spec POSTed (edge tile included)', async () => {
    const query = {
      tile: '0,2,0,256,256', // column 2 of 600 px at 256: an 88-px-wide edge tile
      c: '1|100:1500$FF0000,-2|100:1200$00FF00,3|100:900$0000FF',
      maps: '[{"reverse":{"enabled":true}},null,{"reverse":{"enabled":false}}]',
      format: 'png',
    };
    // Written as a person would from OMERO's docs, inactive channel kept: a different spec id, rendered on its own.
    const posted = await postSpec(system, {
      channels: [
        { index: 0, color: '#FF0000', window: [100, 1500], invert: true },
        { index: 1, color: '#00FF00', window: [100, 1200], active: false },
        { index: 2, color: '#0000FF', window: [100, 900] },
      ],
      format: 'png',
    });
    const a = await get(omero(`render_image_region/${DATASET.id}/1/0`, query));
    expect([a.status, a.type]).toEqual([200, 'image/png']);
    const b = await get(v1(posted, { level: 0, z: 1, x: 2, y: 0 }, 'png'));
    expect(b.status).toBe(200);
    expect(a.key).not.toBe(b.key); // two renders, not one stored tile read twice
    const [pa, pb] = await Promise.all([decode(a.body), decode(b.body)]);
    expect([pa.info.width, pa.info.height]).toEqual([88, 256]);
    expect([pb.info.width, pb.info.height, pb.info.channels]).toEqual([pa.info.width, pa.info.height, pa.info.channels]);
    expect(pa.data.equals(pb.data)).toBe(true);
    // Not trivially equal: red is inverted (mostly bright), green is off, blue varies.
    let red = 0;
    let green = 0;
    for (let i = 0; i < pa.data.length; i += 3) {
      red += pa.data[i]!;
      green += pa.data[i + 1]!;
    }
    expect(red / (pa.data.length / 3)).toBeGreaterThan(128);
    expect(green).toBe(0);
  });

  it('m=g, p=intmax|0:2 and a reduced level match the POSTed spec; the canonical spec shares the stored tile', async () => {
    const query = { tile: '1,0,0', c: '-1,2|100:1200$00FF00,3', m: 'g', p: 'intmax|0:2', format: 'png' };
    const a = await get(omero(`render_image_region/${DATASET.id}/0/0`, query));
    expect(a.status).toBe(200);
    const posted = await postSpec(system, { channels: [{ index: 1, lut: 'gray', window: [100, 1200] }], projection: { type: 'max', z: [0, 2] }, format: 'png' });
    const b = await get(v1(posted, { level: 1, z: 0, x: 0, y: 0 }, 'png'));
    expect(b.key).toBe(a.key); // the same spec: one content key, one render
    // And a projection differs from a single slice, so the parameter was not dropped.
    const single = await get(omero(`render_image_region/${DATASET.id}/0/0`, { ...query, p: 'normal' }));
    const [pa, ps] = await Promise.all([decode(a.body), decode(single.body)]);
    expect(pa.info.channels).toBe(3);
    expect(pa.data.equals(ps.data)).toBe(false);
    for (let i = 0; i < pa.data.length; i += 3) expect(pa.data[i]).toBe(pa.data[i + 1]); // grey
  });

  it('q= sets JPEG quality (same key as quality 50 POSTed); render_image returns the single-tile level', async () => {
    const a = await get(omero(`render_image_region/${DATASET.id}/2/0`, { tile: '0,0,1,256,256', c: '1|100:1500$FF0000', q: '0.5' }));
    expect([a.status, a.type]).toEqual([200, 'image/jpeg']);
    const posted = await postSpec(system, { channels: [{ index: 0, color: '#ff0000', window: [100, 1500] }], quality: 50 });
    expect((await get(v1(posted, { level: 0, z: 2, x: 0, y: 1 }, 'jpeg'))).key).toBe(a.key);

    const whole = await get(omero(`render_image/${DATASET.id}/0/0`, { c: '1|100:1500$FF0000,2|100:1200$00FF00', format: 'png' }));
    expect(whole.status).toBe(200);
    const { info } = await decode(whole.body);
    expect([info.width, info.height]).toEqual([150, 75]); // level 2 of 600 x 300
  });

  it('answers bad parameters with the error table, naming the parameter', async () => {
    const cases: Array<[Record<string, string>, number, string, RegExp]> = [
      [{ tile: '0,0,0', format: 'tif' }, 400, 'unknown_format', /^format: tif is not supported/],
      [{ tile: '0,0,0', c: '7' }, 400, 'invalid_spec', /^c: entry 1 "7": channel 7 but the dataset has 3 channels/],
      [{ c: '1' }, 400, 'invalid_tile', /^tile: required/],
      [{ tile: '0,9,0' }, 400, 'out_of_range', /x: 9/],
      [{ tile: '0,0,0', p: 'intmax|5:9' }, 400, 'invalid_spec', /^p: range starts at slice 5/],
    ];
    for (const [query, status, code, message] of cases) {
      const res = await fetch(omero(`render_image_region/${DATASET.id}/0/0`, query));
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect([res.status, body.error.code]).toEqual([status, code]);
      expect(body.error.message).toMatch(message);
    }
    expect((await fetch(omero('render_image_region/nope/0/0', { tile: '0,0,0' }))).status).toBe(404);
  });
});

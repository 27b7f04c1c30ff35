import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ingestFile } from '@tilefarm/ingest';
import { everyOther, firstDifference, readBackPlane, tempCatalog, type TempCatalog } from './support/read-back';
import { pattern, patternRows, writeTiff, type PageSpec } from './support/tiff-writer';

let tc: TempCatalog;
beforeEach(() => {
  tc = tempCatalog();
});
afterEach(() => tc.cleanup());

function expectedPlane(page: number, width: number, height: number, bits: 8 | 16 = 16, spp = 1, sample = 0): Uint16Array | Uint8Array {
  const out = bits === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[y * width + x] = pattern(page * spp + sample, y, x, bits === 8 ? 255 : 65535);
  return out;
}

describe('generated TIFF files', () => {
  // 700×530 at tile size 256: edge tiles on both axes and odd sizes at every level.
  const W = 700;
  const H = 530;
  const stackPage = (p: number, extra: Partial<PageSpec> = {}): PageSpec => ({ width: W, height: H, bits: 16, rows: patternRows(p, W, 16), rowsPerStrip: 37, ...extra });

  it.each([
    ['uncompressed strips', {}],
    ['deflate + horizontal predictor', { compression: 'deflate', predictor: 2 }],
    ['PackBits', { compression: 'packbits' }],
    ['deflate tiles 128² (not aligned to 256)', { compression: 'deflate', tile: 128 }],
    ['one strip for the whole page', { rowsPerStrip: H }],
  ] as Array<[string, Partial<PageSpec>]>)('plain multi-page uint16 stack without OME-XML (%s): pages are z', async (_name, extra) => {
    const path = join(tc.dir, 'stack.tif');
    writeTiff(path, [0, 1, 2].map((p) => stackPage(p, extra)));
    const m = await ingestFile({ path, id: 'stack', catalog: tc.catalog });
    expect(m).toMatchObject({ width: W, height: H, sizeZ: 3, sizeT: 1, dtype: 'uint16', levels: 3, name: 'stack.tif' });
    expect(m.channels).toEqual([expect.objectContaining({ label: 'Channel 0', color: '#ffffff' })]);
    for (const z of [0, 2]) {
      const level0 = await readBackPlane(tc.store, m, 0, 0, z);
      expect(firstDifference(level0.data, expectedPlane(z, W, H))).toBe(-1);
      for (const level of [1, 2]) expect(firstDifference((await readBackPlane(tc.store, m, level, 0, z)).data, everyOther(level0, level))).toBe(-1);
    }
  });

  it('reads big-endian files', async () => {
    const path = join(tc.dir, 'be.tif');
    writeTiff(path, [stackPage(0, { compression: 'deflate', predictor: 2 })], { bigEndian: true });
    const m = await ingestFile({ path, id: 'be', catalog: tc.catalog });
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 0, 0)).data, expectedPlane(0, W, H))).toBe(-1);
  });

  it('uses SubIFD levels a file provides and computes the rest (tileSize 512)', async () => {
    const path = join(tc.dir, 'sub.tif');
    const big = { width: 1500, height: 1100, bits: 16 as const, rows: patternRows(0, 1500, 16), tile: 256, compression: 'deflate' as const };
    // Reduced level holding a different pattern proves it is read from the file, not computed.
    const sub: PageSpec = { width: 750, height: 550, bits: 16, rows: patternRows(5, 750, 16), rowsPerStrip: 64 };
    writeTiff(path, [{ ...big, subIfds: [sub] }]);
    const m = await ingestFile({ path, id: 'sub', catalog: tc.catalog, tileSize: 512 });
    expect(m.levels).toBe(3);
    const l1 = await readBackPlane(tc.store, m, 1, 0, 0);
    expect(firstDifference(l1.data, expectedPlane(5, 750, 550))).toBe(-1);
    expect(firstDifference((await readBackPlane(tc.store, m, 2, 0, 0)).data, everyOther(l1, 1))).toBe(-1);
  });

  it.each([1, 2] as const)('an RGB uint8 TIFF (planar %i) becomes three channels', async (planar) => {
    const path = join(tc.dir, 'rgb.tif');
    writeTiff(path, [{ width: 300, height: 200, bits: 8, samples: 3, planar, rows: patternRows(0, 300, 8, 3), compression: 'deflate', rowsPerStrip: 16 }]);
    const m = await ingestFile({ path, id: 'rgb', catalog: tc.catalog });
    expect(m).toMatchObject({ sizeZ: 1, dtype: 'uint8', levels: 2 });
    expect(m.channels.map((c) => [c.label, c.color])).toEqual([['Red', '#ff0000'], ['Green', '#00ff00'], ['Blue', '#0000ff']]);
    for (let c = 0; c < 3; c++) expect(firstDifference((await readBackPlane(tc.store, m, 0, c, 0)).data, expectedPlane(0, 300, 200, 8, 3, c))).toBe(-1);
  });

  it('float32 pages', async () => {
    const path = join(tc.dir, 'float.tif');
    const rows = (y0: number, y1: number) => Float32Array.from({ length: (y1 - y0) * 100 }, (_, i) => (y0 * 100 + i) / 7);
    writeTiff(path, [{ width: 100, height: 60, bits: 32, sampleFormat: 3, rows }]);
    const m = await ingestFile({ path, id: 'float', catalog: tc.catalog });
    expect(m.dtype).toBe('float32');
    const plane = await readBackPlane(tc.store, m, 0, 0, 0);
    expect(firstDifference(plane.data, rows(0, 60))).toBe(-1);
  });

  it('LZW, predictor and tiles as libtiff writes them (sharp tiff output)', async () => {
    const path = join(tc.dir, 'lzw.tif');
    const src = expectedPlane(0, 640, 480) as Uint16Array;
    await sharp(src, { raw: { width: 640, height: 480, channels: 1 } })
      .toColourspace('grey16')
      .tiff({ compression: 'lzw', predictor: 'horizontal', tile: true, tileWidth: 128, tileHeight: 128 })
      .toFile(path);
    const m = await ingestFile({ path, id: 'lzw', catalog: tc.catalog });
    expect(m.dtype).toBe('uint16');
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 0, 0)).data, src)).toBe(-1);
    const back = await sharp(path).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 0, 0)).data, new Uint16Array(back.buffer, back.byteOffset, back.length / 2))).toBe(-1);
  });

  it('an ImageJ hyperstack maps pages to channels and slices', async () => {
    const path = join(tc.dir, 'ij.tif');
    const description = 'ImageJ=1.54f\nimages=6\nchannels=2\nslices=3\nhyperstack=true\n';
    writeTiff(path, [0, 1, 2, 3, 4, 5].map((p) => ({ width: 64, height: 48, bits: 16 as const, rows: patternRows(p, 64, 16), ...(p === 0 ? { description } : {}) })));
    const m = await ingestFile({ path, id: 'ij', catalog: tc.catalog });
    expect(m).toMatchObject({ sizeZ: 3, sizeT: 1 });
    expect(m.channels).toHaveLength(2);
    // page = c + 2*z
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 1, 2)).data, expectedPlane(5, 64, 48))).toBe(-1);
  });

  it('OME-XML with DimensionOrder XYZCT, channel colours and T', async () => {
    const path = join(tc.dir, 'ome.ome.tif');
    const ome = `<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0" Name="my &amp; stack"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="80" SizeY="60" SizeZ="2" SizeC="2" SizeT="2" PhysicalSizeX="0.5" PhysicalSizeY="0.5"><Channel ID="Channel:0:0" Name="A" Color="-16776961" SamplesPerPixel="1"/><Channel ID="Channel:0:1" Name="B" Color="16711935" SamplesPerPixel="1"><LightPath/></Channel><TiffData IFD="0" PlaneCount="8"/></Pixels></Image></OME>`;
    writeTiff(path, Array.from({ length: 8 }, (_, p) => ({ width: 80, height: 60, bits: 16 as const, rows: patternRows(p, 80, 16), ...(p === 0 ? { description: ome } : {}) })));
    const m = await ingestFile({ path, id: 'ome', catalog: tc.catalog });
    expect(m).toMatchObject({ name: 'my & stack', sizeZ: 2, sizeT: 2, physicalSize: { x: 0.5, y: 0.5, unit: 'µm' } });
    // -16776961 = 0xFF0000FF (red, alpha ff); 16711935 = 0x00FF00FF (green)
    expect(m.channels.map((c) => [c.label, c.color])).toEqual([['A', '#ff0000'], ['B', '#00ff00']]);
    // XYZCT: page = z + 2*(c + 2*t); z=1, c=1, t=1 → 7
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 1, 1, 1)).data, expectedPlane(7, 80, 60))).toBe(-1);
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 0, 1, 0)).data, expectedPlane(1, 80, 60))).toBe(-1);
  });
});

describe('PNG and JPEG through sharp', () => {
  it('an RGB PNG becomes three uint8 channels; a re-ingest bumps the version', async () => {
    const rgb = expectedPlane(0, 300 * 3, 200, 8);
    const path = join(tc.dir, 'photo.png');
    await sharp(Buffer.from(rgb), { raw: { width: 300, height: 200, channels: 3 } }).png().toFile(path);
    const m = await ingestFile({ path, id: 'photo', catalog: tc.catalog });
    expect(m).toMatchObject({ width: 300, height: 200, dtype: 'uint8', sizeZ: 1, version: 1 });
    expect(m.channels.map((c) => c.label)).toEqual(['Red', 'Green', 'Blue']);
    const green = await readBackPlane(tc.store, m, 0, 1, 0);
    for (const [y, x] of [[0, 0], [123, 45], [199, 299]] as const) expect(green.data[y * 300 + x]).toBe(rgb[(y * 300 + x) * 3 + 1]);
    const again = await ingestFile({ path, id: 'photo', catalog: tc.catalog });
    expect(again.version).toBe(2);
    expect((await tc.catalog.find('photo'))?.version).toBe(2);
  });

  it('a 16-bit grey PNG stays one uint16 channel', async () => {
    const grey = expectedPlane(3, 257, 129) as Uint16Array;
    const path = join(tc.dir, 'grey16.png');
    await sharp(grey, { raw: { width: 257, height: 129, channels: 1 } }).toColourspace('grey16').png().toFile(path);
    const m = await ingestFile({ path, id: 'grey', catalog: tc.catalog });
    expect(m).toMatchObject({ dtype: 'uint16', levels: 2 });
    expect(m.channels).toHaveLength(1);
    expect(firstDifference((await readBackPlane(tc.store, m, 0, 0, 0)).data, grey)).toBe(-1);
  });

  it('a JPEG', async () => {
    const path = join(tc.dir, 'pic.jpg');
    writeFileSync(path, await sharp({ create: { width: 90, height: 70, channels: 3, background: '#ff8000' } }).jpeg().toBuffer());
    const m = await ingestFile({ path, id: 'jpeg', catalog: tc.catalog });
    expect(m).toMatchObject({ width: 90, height: 70, dtype: 'uint8' });
    expect(m.channels).toHaveLength(3);
  });
});

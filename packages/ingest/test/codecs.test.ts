import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type TiffOptions } from 'sharp';
import { RenderSpec, type DatasetManifest } from '@tilefarm/contracts';
import { readSourceTile } from '@tilefarm/datasets';
import { createSharpTileRenderer } from '@tilefarm/render/encoder';
import { IngestError, ingestFile } from '@tilefarm/ingest';
import { everyOther, firstDifference, readBackPlane, tempCatalog, type TempCatalog } from './support/read-back';

/**
 * TIFF codecs as libvips writes them (sharp's tiffsave here; Debian's `vips` CLI for the committed
 * files of test/codec-fixtures). Every file is also decoded whole by libvips/libtiff (sharp), an
 * independent reader: our tile-by-tile decode must match it, and a rendered tile must show it.
 */

let tc: TempCatalog;
beforeAll(() => {
  tc = tempCatalog();
});
afterAll(() => tc.cleanup());

// 700×530: edge tiles on both axes at tile sizes 128 and 256.
const W = 700;
const H = 530;
let files = 0;
/** A new file name each time: libvips caches decoded files by name. */
const nextName = (what: string) => `${what}-${++files}`;

/** Smooth gradients with some texture: what JPEG is made for, and not all one colour per tile. */
function rgbSource(width = W, height = H): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      out[i] = (x * 255) / width;
      out[i + 1] = (y * 255) / height;
      out[i + 2] = 128 + 100 * Math.sin(x / 23) * Math.cos(y / 17);
    }
  }
  return out;
}

/** Interleaved 8-bit samples of the whole first page, decoded by libvips (libtiff + libjpeg/libwebp). */
async function libvipsDecode(path: string, channels: 1 | 3): Promise<Buffer> {
  let img = sharp(path).removeAlpha();
  img = channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
  const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([W, H, channels]);
  return data;
}

/** Largest |ours − reference| over every pixel of every channel of level 0. */
async function maxDifference(m: DatasetManifest, reference: Buffer, channels: number): Promise<number> {
  let worst = 0;
  for (let c = 0; c < channels; c++) {
    const plane = (await readBackPlane(tc.store, m, 0, c, 0)).data;
    for (let i = 0; i < plane.length; i++) worst = Math.max(worst, Math.abs(plane[i]! - reference[i * channels + c]!));
  }
  return worst;
}

/** Renders tile (1, 1) of level 0, channel `c` in white with window 0..255 (so output = source value), against the reference. */
async function renderedDifference(m: DatasetManifest, reference: Buffer, channels: number, c: number): Promise<number> {
  const renderer = createSharpTileRenderer();
  const spec = RenderSpec.parse({ channels: [{ index: c, color: '#ffffff', window: [0, 255] }], format: 'png' });
  const out = await renderer.render({
    manifest: m,
    stats: await tc.catalog.getStats(m.id, m.version),
    spec,
    tile: { level: 0, z: 0, t: 0, x: 1, y: 1, format: 'png' },
    readSource: (ch, z, t) => readSourceTile(tc.store, m.id, m.version, { level: 0, t, z, c: ch, x: 1, y: 1 }),
  });
  const { data, info } = await sharp(out.body).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height]).toEqual([256, 256]);
  let worst = 0;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const ref = reference[((256 + y) * W + 256 + x) * channels + c]!;
      worst = Math.max(worst, Math.abs(data[(y * info.width + x) * info.channels]! - ref));
    }
  }
  return worst;
}

/** Mean |decoded − original|: the codec's own loss, to show the file holds the image and not noise. */
function meanLoss(decoded: Buffer, original: Buffer): number {
  let sum = 0;
  for (let i = 0; i < decoded.length; i++) sum += Math.abs(decoded[i]! - original[i]!);
  return sum / decoded.length;
}

describe('JPEG-compressed TIFF written by libvips', () => {
  it.each([
    ['tiled 256² pyramid, RGB stored as YCbCr with shared JPEGTables', { tile: true, tileWidth: 256, tileHeight: 256, pyramid: true }],
    ['tiled 128², quality 60', { tile: true, tileWidth: 128, tileHeight: 128, quality: 60 }],
    ['strips', {}],
  ] as Array<[string, TiffOptions]>)('%s', async (name, options) => {
    const id = nextName('jpeg');
    const path = join(tc.dir, `${id}.tif`);
    const original = rgbSource();
    await sharp(original, { raw: { width: W, height: H, channels: 3 } }).tiff({ compression: 'jpeg', ...options }).toFile(path);
    const m = await ingestFile({ path, id, name, catalog: tc.catalog });
    expect(m).toMatchObject({ width: W, height: H, sizeZ: 1, dtype: 'uint8', levels: 3 });
    expect(m.channels.map((c) => c.label)).toEqual(['Red', 'Green', 'Blue']);
    const reference = await libvipsDecode(path, 3);
    expect(meanLoss(reference, original)).toBeLessThan(4);
    expect(await maxDifference(m, reference, 3)).toBeLessThanOrEqual(1);
    expect(await renderedDifference(m, reference, 3, 1)).toBeLessThanOrEqual(1);
  });

  it('grey (one component) tiles', async () => {
    const path = join(tc.dir, 'jpeg-grey.tif');
    const rgb = rgbSource();
    const grey = Buffer.from(Array.from({ length: W * H }, (_, i) => rgb[i * 3 + 2]!));
    await sharp(grey, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').tiff({ compression: 'jpeg', tile: true, tileWidth: 256, tileHeight: 256 }).toFile(path);
    const m = await ingestFile({ path, id: 'jpeg-grey', catalog: tc.catalog });
    expect(m.channels).toHaveLength(1);
    const reference = await libvipsDecode(path, 1);
    expect(meanLoss(reference, grey)).toBeLessThan(4);
    expect(await maxDifference(m, reference, 1)).toBeLessThanOrEqual(1);
    expect(await renderedDifference(m, reference, 1, 0)).toBeLessThanOrEqual(1);
  });
});

describe('damaged compressed tiles', () => {
  it.each(['jpeg', 'webp'] as const)('%s: a clobbered tile is a corrupt error naming the tile, and nothing is published', async (compression) => {
    const id = nextName(`bad-${compression}`);
    const path = join(tc.dir, `${id}.tif`);
    await sharp(rgbSource(), { raw: { width: W, height: H, channels: 3 } }).tiff({ compression, tile: true, tileWidth: 256, tileHeight: 256 }).toFile(path);
    const bytes = readFileSync(path);
    // libvips writes the tiles first and the IFD last: the middle of the file is compressed tile data.
    const start = Math.floor(bytes.length / 2);
    bytes.fill(0xa5, start, start + 200);
    writeFileSync(path, bytes);
    const err = await ingestFile({ path, id, catalog: tc.catalog }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestError);
    expect((err as IngestError).problem).toBe('corrupt');
    expect((err as Error).message).toMatch(new RegExp(`page 0 tile \\d+: ${compression === 'jpeg' ? 'JPEG' : 'WebP'} data (cannot be decoded|does not start with an SOI marker)`));
    expect(await tc.catalog.find(id)).toBeUndefined();
  });
});

describe('WebP-compressed TIFF written by libvips', () => {
  it.each([
    ['lossy, tiled pyramid', { tile: true, tileWidth: 256, tileHeight: 256, pyramid: true }],
    ['lossless, tiled 128²', { tile: true, tileWidth: 128, tileHeight: 128, lossless: true }],
  ] as Array<[string, TiffOptions & { lossless?: boolean }]>)('%s', async (name, options) => {
    const id = nextName('webp');
    const path = join(tc.dir, `${id}.tif`);
    const original = rgbSource();
    const { lossless, ...tiff } = options;
    // sharp's tiff() has no lossless switch for WebP; quality 100 is libvips' lossless WebP in TIFF.
    await sharp(original, { raw: { width: W, height: H, channels: 3 } }).tiff({ compression: 'webp', ...tiff, ...(lossless ? { quality: 100 } : {}) }).toFile(path);
    const m = await ingestFile({ path, id, name, catalog: tc.catalog });
    expect(m.channels.map((c) => c.label)).toEqual(['Red', 'Green', 'Blue']);
    const reference = await libvipsDecode(path, 3);
    expect(meanLoss(reference, original)).toBeLessThan(lossless ? 1 : 4);
    expect(await maxDifference(m, reference, 3)).toBeLessThanOrEqual(1);
    expect(await renderedDifference(m, reference, 3, 2)).toBeLessThanOrEqual(1);
  });
});

/** Committed files written by Debian's `vips` CLI (codec-fixtures/make-fixtures.sh), with their source pixels as PNG. */
const CODEC_FIXTURES = join(__dirname, 'codec-fixtures');
const FW = 520;
const FH = 300;
const VIPS_CLI = ['/usr/bin/vips', '/usr/local/bin/vips'].find((p) => existsSync(p));

/** The source image the fixture was written from, decoded by sharp: for lossless codecs the exact answer. */
async function sourcePixels(name: 'grey16' | 'rgb8'): Promise<{ data: Uint8Array | Uint16Array; channels: number }> {
  const img = sharp(join(CODEC_FIXTURES, `source-${name}.png`));
  const { data, info } = await (name === 'grey16' ? img.toColourspace('grey16').raw({ depth: 'ushort' }) : img.raw()).toBuffer({ resolveWithObject: true });
  expect([info.width, info.height]).toEqual([FW, FH]);
  return name === 'grey16' ? { data: new Uint16Array(data.buffer, data.byteOffset, data.length / 2), channels: 1 } : { data, channels: 3 };
}

/** A level of the file decoded by the `vips` CLI (libvips + libtiff, built with zstd and OpenJPEG), as 16-bit grey or 8-bit RGB. */
async function vipsCliDecode(file: string, subifd: number, grey16: boolean): Promise<{ data: Uint8Array | Uint16Array; width: number }> {
  const out = join(tc.dir, `${nextName('vips')}.png`);
  execFileSync(VIPS_CLI!, ['copy', `${file}[subifd=${subifd}]`, out]);
  const img = sharp(out);
  const { data, info } = await (grey16 ? img.toColourspace('grey16').raw({ depth: 'ushort' }) : img.raw()).toBuffer({ resolveWithObject: true });
  return { data: grey16 ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2) : data, width: info.width };
}

async function planeDifference(m: DatasetManifest, level: number, reference: ArrayLike<number>, channels: number): Promise<number> {
  let worst = 0;
  for (let c = 0; c < channels; c++) {
    const plane = (await readBackPlane(tc.store, m, level, c, 0)).data;
    expect(plane.length * channels).toBe(reference.length);
    for (let i = 0; i < plane.length; i++) worst = Math.max(worst, Math.abs(plane[i]! - reference[i * channels + c]!));
  }
  return worst;
}

/** Renders tile (1, 0) of level 0 in white, window 0..65535: each pixel must be the source value / 257 (±0.5 for rounding). */
async function renderedGrey16Difference(m: DatasetManifest, source: ArrayLike<number>): Promise<number> {
  const out = await createSharpTileRenderer().render({
    manifest: m,
    stats: await tc.catalog.getStats(m.id, m.version),
    spec: RenderSpec.parse({ channels: [{ index: 0, color: '#ffffff', window: [0, 65535] }], format: 'png' }),
    tile: { level: 0, z: 0, t: 0, x: 1, y: 0, format: 'png' },
    readSource: (ch, z, t) => readSourceTile(tc.store, m.id, m.version, { level: 0, t, z, c: ch, x: 1, y: 0 }),
  });
  const { data, info } = await sharp(out.body).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height]).toEqual([256, 256]);
  let worst = 0;
  for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) worst = Math.max(worst, Math.abs(data[(y * info.width + x) * info.channels]! - source[y * FW + 256 + x]! / 257));
  return worst;
}

describe('zstd-compressed TIFF written by the vips CLI (committed fixtures)', () => {
  it('uint16, horizontal predictor, 256² tiles, SubIFD pyramid: equal to the source, stored levels used', async () => {
    const path = join(CODEC_FIXTURES, 'zstd-grey16-tiled-pyramid.tif');
    const m = await ingestFile({ path, id: nextName('zstd'), catalog: tc.catalog });
    expect(m).toMatchObject({ width: FW, height: FH, dtype: 'uint16', levels: 3 });
    const source = await sourcePixels('grey16');
    expect(await planeDifference(m, 0, source.data, 1)).toBe(0);
    // libvips' levels are 2×2 means, not every other pixel: level 1 is the file's, not computed by us.
    const level1 = (await readBackPlane(tc.store, m, 1, 0, 0)).data;
    expect(firstDifference(level1, everyOther({ width: FW, height: FH, data: source.data }, 1))).toBeGreaterThanOrEqual(0);
    expect(await renderedGrey16Difference(m, source.data)).toBeLessThanOrEqual(0.5 + 1e-9);
  });

  it('RGB uint8, horizontal predictor, strips: equal to the source', async () => {
    const m = await ingestFile({ path: join(CODEC_FIXTURES, 'zstd-rgb8-strips.tif'), id: nextName('zstd'), catalog: tc.catalog });
    expect(m.channels.map((c) => c.label)).toEqual(['Red', 'Green', 'Blue']);
    const source = await sourcePixels('rgb8');
    expect(await planeDifference(m, 0, source.data, 3)).toBe(0);
  });

  (VIPS_CLI ? it : it.skip)('the stored reduced level equals libvips\' own decode of that SubIFD (needs the vips CLI)', async () => {
    const path = join(CODEC_FIXTURES, 'zstd-grey16-tiled-pyramid.tif');
    const m = await ingestFile({ path, id: nextName('zstd'), catalog: tc.catalog });
    const level1 = await vipsCliDecode(path, 0, true);
    expect(level1.width).toBe(FW / 2);
    expect(await planeDifference(m, 1, level1.data, 1)).toBe(0);
  });

  it('a corrupt zstd tile is a corrupt error naming it', async () => {
    const bytes = readFileSync(join(CODEC_FIXTURES, 'zstd-grey16-tiled-pyramid.tif'));
    const start = Math.floor(bytes.length / 3);
    bytes.fill(0x5a, start, start + 300);
    const path = join(tc.dir, 'bad-zstd.tif');
    writeFileSync(path, bytes);
    const err = await ingestFile({ path, id: nextName('bad-zstd'), catalog: tc.catalog }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestError);
    expect((err as IngestError).problem).toBe('corrupt');
    expect((err as Error).message).toMatch(/tile \d+: zstd data is corrupt/);
  });
});

describe('JPEG 2000-compressed TIFF written by the vips CLI (committed fixtures)', () => {
  it('uint16 grey, lossless, 256² tiles: equal to the source, also rendered', async () => {
    const m = await ingestFile({ path: join(CODEC_FIXTURES, 'jp2k-grey16-tiled.tif'), id: nextName('jp2k'), catalog: tc.catalog });
    expect(m).toMatchObject({ width: FW, height: FH, dtype: 'uint16' });
    const source = (await sourcePixels('grey16')).data;
    expect(await planeDifference(m, 0, source, 1)).toBe(0);
    expect(await renderedGrey16Difference(m, source)).toBeLessThanOrEqual(0.5 + 1e-9);
  });

  it('RGB uint8 (stored as YCbCr by libvips), tiled SubIFD pyramid: within the YCbCr rounding of its writer', async () => {
    const path = join(CODEC_FIXTURES, 'jp2k-rgb8-tiled-pyramid.tif');
    const m = await ingestFile({ path, id: nextName('jp2k'), catalog: tc.catalog });
    expect(m.channels.map((c) => c.label)).toEqual(['Red', 'Green', 'Blue']);
    // libvips' RGB → YCbCr before the lossless codestream rounds (truncates): a few levels, not exact.
    expect(await planeDifference(m, 0, (await sourcePixels('rgb8')).data, 3)).toBeLessThanOrEqual(4);
  });

  (VIPS_CLI ? it : it.skip)('RGB: levels 0 and 1 within ±1 of libvips\' own decode (needs the vips CLI)', async () => {
    const path = join(CODEC_FIXTURES, 'jp2k-rgb8-tiled-pyramid.tif');
    const m = await ingestFile({ path, id: nextName('jp2k'), catalog: tc.catalog });
    for (const level of [0, 1]) {
      const reference = await vipsCliDecode(path, level - 1, false);
      expect(reference.width).toBe(Math.ceil(FW / 2 ** level));
      expect(await planeDifference(m, level, reference.data, 3)).toBeLessThanOrEqual(1);
    }
  });

  it('a tile with a broken codestream header is a corrupt error naming it, and the decoder still works after', async () => {
    const bytes = readFileSync(join(CODEC_FIXTURES, 'jp2k-grey16-tiled.tif'));
    // JPEG 2000 shrugs off damaged entropy data (it decodes wrong pixels); a broken SIZ header it cannot.
    // The second codestream (SOC FF4F, SIZ FF51) is tile 1: clobber its image size fields.
    const first = bytes.indexOf(Buffer.from('ff4fff51', 'hex'));
    const second = bytes.indexOf(Buffer.from('ff4fff51', 'hex'), first + 4);
    expect(second).toBeGreaterThan(first);
    bytes.fill(0xff, second + 8, second + 24);
    const path = join(tc.dir, 'bad-jp2k.tif');
    writeFileSync(path, bytes);
    const err = await ingestFile({ path, id: nextName('bad-jp2k'), catalog: tc.catalog }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestError);
    expect((err as IngestError).problem).toBe('corrupt');
    expect((err as Error).message).toMatch(/tile \d+: JPEG 2000 data/);
    const m = await ingestFile({ path: join(CODEC_FIXTURES, 'jp2k-grey16-tiled.tif'), id: nextName('jp2k'), catalog: tc.catalog });
    expect(await planeDifference(m, 0, (await sourcePixels('grey16')).data, 1)).toBe(0);
  });
});

describe('JPEG with Photometric RGB written by Pillow/libtiff (committed fixture)', () => {
  it('RGB components decoded as RGB (no YCbCr conversion): within ±1 of libvips\' decode, close to the source', async () => {
    const path = join(CODEC_FIXTURES, 'jpeg-rgb-photometric-strips.tif');
    const m = await ingestFile({ path, id: nextName('jpeg-rgb'), catalog: tc.catalog });
    expect(m.channels.map((c) => c.label)).toEqual(['Red', 'Green', 'Blue']);
    const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([FW, FH, 3]);
    expect(await planeDifference(m, 0, data, 3)).toBeLessThanOrEqual(1);
    const source = await sourcePixels('rgb8');
    expect(meanLoss(data, Buffer.from(source.data.buffer, source.data.byteOffset, source.data.byteLength))).toBeLessThan(2);
  });
});

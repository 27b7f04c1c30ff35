import { levelSize, type DatasetManifest, type DType, type RenderSpec, type SourceTile } from '@tilefarm/contracts';

/**
 * The read-only OME-Zarr 0.4 view of a dataset (GET /zarr/{id}.zarr/...): Zarr v2 documents whose
 * chunks are exactly our source tiles (1 × 1 × 1 × tileSize × tileSize over t, c, z, y, x), so a
 * chunk is a source read, never a render. Pure: documents from the manifest (and a spec).
 */

const ZARR_DTYPE: Record<DType, string> = { uint8: '|u1', uint16: '<u2', float32: '<f4' };
const FULL_RANGE: Record<DType, [number, number]> = { uint8: [0, 255], uint16: [0, 65535], float32: [0, 1] };

export function viewGroup(): object {
  return { zarr_format: 2 };
}

export function viewArray(manifest: DatasetManifest, level: number): object {
  const { width, height } = levelSize(manifest, level);
  return {
    zarr_format: 2,
    shape: [manifest.sizeT, manifest.channels.length, manifest.sizeZ, height, width],
    chunks: [1, 1, 1, manifest.tileSize, manifest.tileSize],
    dtype: ZARR_DTYPE[manifest.dtype],
    compressor: null,
    fill_value: 0,
    order: 'C',
    filters: null,
    dimension_separator: '/',
  };
}

/** .zattrs: NGFF 0.4 multiscales and an omero block (the dataset's defaults, or a spec's look). */
export function viewAttributes(manifest: DatasetManifest, spec?: RenderSpec): object {
  const px = manifest.physicalSize;
  const unit = px?.unit === 'µm' ? 'micrometer' : px?.unit === 'nm' ? 'nanometer' : undefined;
  const spatial = (name: string) => ({ name, type: 'space', ...(unit ? { unit } : {}) });
  const levels = Array.from({ length: manifest.levels }, (_, k) => ({
    path: String(k),
    coordinateTransformations: [{ type: 'scale', scale: [1, 1, px?.z ?? 1, (px?.y ?? 1) * 2 ** k, (px?.x ?? 1) * 2 ** k] }],
  }));
  const [min, max] = FULL_RANGE[manifest.dtype];
  const channels = manifest.channels.map((ch, c) => {
    const fromSpec = spec?.channels.find((s) => s.formula === undefined && (s.index === c || (s.index === undefined && s.label === ch.label)));
    const color = (fromSpec?.color ?? ch.color).slice(1).toUpperCase();
    const window = fromSpec && Array.isArray(fromSpec.window) ? (fromSpec.window as [number, number]) : ch.window;
    return {
      label: ch.label,
      color,
      active: spec ? fromSpec !== undefined && fromSpec.active : ch.active !== false,
      coefficient: 1,
      family: 'linear',
      inverted: fromSpec?.invert ?? false,
      window: { start: window[0], end: window[1], min, max },
    };
  });
  return {
    multiscales: [
      {
        version: '0.4',
        name: manifest.name ?? manifest.id,
        axes: [{ name: 't', type: 'time' }, { name: 'c', type: 'channel' }, spatial('z'), spatial('y'), spatial('x')],
        datasets: levels,
        type: 'subsample',
      },
    ],
    omero: { name: manifest.name ?? manifest.id, version: '0.4', channels, rdefs: { defaultT: 0, defaultZ: Math.floor(manifest.sizeZ / 2), model: 'color' } },
  };
}

/** A chunk's bytes: the source tile's samples, little-endian, padded to the full chunk with 0 (Zarr v2 edge chunks are full size). */
export function viewChunk(manifest: DatasetManifest, tile: SourceTile): Buffer {
  const n = manifest.tileSize;
  const Typed = tile.data.constructor as new (length: number) => SourceTile['data'];
  const out = tile.width === n && tile.height === n ? tile.data : new Typed(n * n);
  if (out !== tile.data) {
    for (let y = 0; y < tile.height; y++) out.set(tile.data.subarray(y * tile.width, (y + 1) * tile.width), y * n);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

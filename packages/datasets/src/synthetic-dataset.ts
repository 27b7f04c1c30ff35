import type { ChannelInfo, DatasetManifest, DatasetStats, DType, PlaneStats } from '@tilefarm/contracts';
import type { DatasetCatalog } from './dataset-catalog';
import { cutTile, levelCountFor, subsample2x, type Plane } from './pyramid';
import { allocPixels } from './source-tile-codec';
import { computePlaneStats } from './statistics';

export interface SyntheticOptions {
  id: string;
  name?: string;
  tenant?: string;
  width?: number;
  height?: number;
  sizeZ?: number;
  sizeT?: number;
  tileSize?: 256 | 512;
  dtype?: Extract<DType, 'uint8' | 'uint16'>;
  seed?: number;
  /** Physical pixel size; `null` for a dataset whose file gives none (default 0.325 µm in x and y, 1 µm in z). */
  physicalSize?: DatasetManifest['physicalSize'] | null;
}

interface Blob {
  x: number;
  y: number;
  z: number;
  sigma: number;
  sigmaZ: number;
  amplitude: number;
}

/** Deterministic PRNG (mulberry32), so the demo dataset is the same on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHANNELS: Array<{ label: string; color: string }> = [
  { label: 'DAPI', color: '#0080ff' },
  { label: 'GFP', color: '#00ff00' },
  { label: 'mCherry', color: '#ff0000' },
];

/**
 * A fluorescence-like stack with structure: 3-D Gaussian nuclei (DAPI), larger cytoplasm around
 * them (GFP) and small puncta (mCherry), a camera offset near 100 and noise. Each z slice differs,
 * so scrolling Z visibly changes the picture.
 */
export async function createSyntheticDataset(catalog: DatasetCatalog, options: SyntheticOptions): Promise<DatasetManifest> {
  const width = options.width ?? 2048;
  const height = options.height ?? 1536;
  const sizeZ = options.sizeZ ?? 12;
  const sizeT = options.sizeT ?? 1;
  const tileSize = options.tileSize ?? 256;
  const dtype = options.dtype ?? 'uint16';
  const scale = dtype === 'uint8' ? 1 / 16 : 1;
  const random = prng(options.seed ?? 42);
  const cells = Math.max(4, Math.round((width * height) / 40_000));
  const nuclei: Blob[] = [];
  const cytoplasm: Blob[] = [];
  const puncta: Blob[] = [];
  for (let i = 0; i < cells; i++) {
    const x = random() * width;
    const y = random() * height;
    const z = random() * sizeZ;
    const r = 10 + random() * 14;
    nuclei.push({ x, y, z, sigma: r, sigmaZ: 1 + random() * 2, amplitude: (1500 + random() * 2500) * scale });
    cytoplasm.push({ x: x + (random() - 0.5) * r, y: y + (random() - 0.5) * r, z, sigma: r * 2.2, sigmaZ: 2 + random() * 2, amplitude: (600 + random() * 1200) * scale });
    for (let k = 0; k < 4; k++) {
      puncta.push({ x: x + (random() - 0.5) * 5 * r, y: y + (random() - 0.5) * 5 * r, z: random() * sizeZ, sigma: 1.5 + random() * 2, sigmaZ: 0.7, amplitude: (800 + random() * 2500) * scale });
    }
  }
  const blobsByChannel = [nuclei, cytoplasm, puncta];
  const version = await catalog.nextVersion(options.id);
  const levels = levelCountFor(width, height, tileSize);
  const planes: PlaneStats[] = [];
  const maxValue = dtype === 'uint8' ? 255 : 65535;

  for (let t = 0; t < sizeT; t++) {
    for (let z = 0; z < sizeZ; z++) {
      for (let c = 0; c < CHANNELS.length; c++) {
        const field = new Float32Array(width * height);
        // Drift blobs a little over time so T sliders show change too.
        const drift = t * 6;
        for (const b of blobsByChannel[c]!) {
          const dz = (z - b.z) / b.sigmaZ;
          const zWeight = Math.exp(-0.5 * dz * dz);
          if (zWeight < 0.01) continue;
          const bx = b.x + drift;
          const reach = Math.ceil(b.sigma * 3);
          const x0 = Math.max(0, Math.floor(bx - reach));
          const x1 = Math.min(width - 1, Math.ceil(bx + reach));
          const y0 = Math.max(0, Math.floor(b.y - reach));
          const y1 = Math.min(height - 1, Math.ceil(b.y + reach));
          const k = -0.5 / (b.sigma * b.sigma);
          const amp = b.amplitude * zWeight;
          for (let y = y0; y <= y1; y++) {
            const dy2 = (y - b.y) * (y - b.y);
            const row = y * width;
            for (let x = x0; x <= x1; x++) {
              const dx = x - bx;
              field[row + x]! += amp * Math.exp((dx * dx + dy2) * k);
            }
          }
        }
        const data = allocPixels(dtype, width * height);
        const offset = 100 * scale;
        for (let i = 0; i < data.length; i++) {
          // Cheap shot-noise stand-in: spread grows with the signal.
          const signal = field[i]! + offset;
          const noise = (random() + random() + random() - 1.5) * Math.sqrt(signal) * 0.8;
          data[i] = Math.max(0, Math.min(maxValue, Math.round(signal + noise)));
        }
        let plane: Plane = { width, height, dtype, data };
        planes.push(computePlaneStats(data, dtype, c, z, t));
        for (let level = 0; level < levels; level++) {
          if (level > 0) plane = subsample2x(plane);
          const cols = Math.ceil(plane.width / tileSize);
          const rows = Math.ceil(plane.height / tileSize);
          const puts: Promise<number>[] = [];
          for (let y = 0; y < rows; y++) {
            for (let x = 0; x < cols; x++) {
              puts.push(catalog.putSourceTile(options.id, version, { level, t, z, c, x, y }, cutTile(plane, tileSize, x, y)));
            }
          }
          await Promise.all(puts);
        }
      }
    }
  }

  const channels: ChannelInfo[] = CHANNELS.map((ch, c) => {
    const mine = planes.filter((p) => p.c === c);
    const lo = Math.min(...mine.map((p) => p.percentiles['0.01'] ?? p.min));
    const hi = Math.max(...mine.map((p) => p.percentiles['0.999'] ?? p.max));
    return { label: ch.label, color: ch.color, window: [lo, hi] };
  });
  const manifest: DatasetManifest = {
    v: 1,
    id: options.id,
    version,
    name: options.name ?? `Synthetic ${width}×${height}, ${sizeZ} z`,
    tenant: options.tenant ?? 'public',
    width,
    height,
    sizeZ,
    sizeT,
    tileSize,
    levels,
    dtype,
    channels,
    ...(options.physicalSize === null ? {} : { physicalSize: options.physicalSize ?? { x: 0.325, y: 0.325, z: 1, unit: 'µm' } }),
    sourceEncoding: catalog.sourceEncoding,
    createdAt: new Date().toISOString(),
  };
  const stats: DatasetStats = { v: 1, dataset: options.id, version, planes };
  await catalog.publish(manifest, stats);
  return manifest;
}

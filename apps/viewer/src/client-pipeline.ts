import { DTYPE_MAX, RenderSpec, type DatasetManifest, type DatasetStats, type DatasetSummary, type RenderSpecInput } from '@tilefarm/contracts';
// The server's own pipeline code (pure TypeScript, no sharp): the same plan, windows and per-value
// levels as the workers, so the GPU picture cannot drift from the server's by construction.
import { levelsTable } from '@tilefarm/render/src/pixel-ops';
import { resolveRenderPlan } from '@tilefarm/render/src/render-plan';
import { channelWindow } from '@tilefarm/render/src/windows';
import { MAX_GL_CHANNELS, type GlChannel, type GlPipeline } from './webgl-compositor';

/** What draws the picture: the GPU from raw pixels, or the server (with the reason). */
export type PipelineChoice = { kind: 'gpu'; pipeline: GlPipeline } | { kind: 'server'; reason: string };

function manifestOf(ds: DatasetSummary): DatasetManifest {
  return { v: 1, tenant: 'public', sourceEncoding: 'raw-v1', createdAt: '', ...ds, tileSize: ds.tileSize as 256 | 512 } as DatasetManifest;
}

const TABLE_CACHE_ENTRIES = 64;

/**
 * Turns a spec into GPU work, or says why the server must draw it (formulas, projections, float
 * samples, more channels than the shader takes). Levels tables are cached by their inputs, so
 * dragging one channel's window recomputes one 65536-entry table per change.
 */
export class ClientPipeline {
  private readonly tables = new Map<string, Float32Array>();

  choose(spec: RenderSpecInput, ds: DatasetSummary, stats: DatasetStats | undefined, z: number, t: number): PipelineChoice {
    if (ds.dtype === 'float32') return { kind: 'server', reason: 'float samples' };
    if (ds.sizeC > MAX_GL_CHANNELS) return { kind: 'server', reason: `more than ${MAX_GL_CHANNELS} channels` };
    const parsed = RenderSpec.safeParse(spec);
    if (!parsed.success) return { kind: 'server', reason: 'spec not valid' };
    let plan;
    try {
      plan = resolveRenderPlan(parsed.data, manifestOf(ds));
    } catch (e) {
      return { kind: 'server', reason: String((e as Error).message) };
    }
    if (plan.projection) return { kind: 'server', reason: 'Z projection' };
    if (plan.channels.some((c) => c.input.kind !== 'source')) return { kind: 'server', reason: 'formula channel' };
    if (plan.channels.length > MAX_GL_CHANNELS) return { kind: 'server', reason: `more than ${MAX_GL_CHANNELS} active channels` };
    const channels: GlChannel[] = [];
    for (const ch of plan.channels) {
      if (ch.input.kind !== 'source') continue;
      let window: [number, number];
      try {
        window = channelWindow(plan, ch, stats, z, t) as [number, number];
      } catch (e) {
        return { kind: 'server', reason: String((e as Error).message) };
      }
      const isLut = ch.paint.kind === 'lut';
      channels.push({
        layer: ch.input.channel,
        table: this.table(ds.dtype, window, ch.gamma, ch.invert, isLut),
        paint: ch.paint.kind === 'lut' ? { kind: 'lut', name: ch.paint.name } : { kind: 'color', rgb: ch.paint.rgb },
      });
    }
    return { kind: 'gpu', pipeline: { channels, composite: plan.composite } };
  }

  private table(dtype: 'uint8' | 'uint16', [lo, hi]: [number, number], gamma: number, invert: boolean, lutIndex: boolean): Float32Array {
    const key = `${dtype}|${lo}|${hi}|${gamma}|${invert}|${lutIndex}`;
    let t = this.tables.get(key);
    if (t) {
      this.tables.delete(key);
    } else {
      const raw = levelsTable(DTYPE_MAX[dtype], { lo, hi, gamma, invert }, lutIndex);
      t = raw instanceof Float32Array ? raw : Float32Array.from(raw);
      while (this.tables.size >= TABLE_CACHE_ENTRIES) this.tables.delete(this.tables.keys().next().value as string);
    }
    this.tables.set(key, t);
    return t;
  }
}

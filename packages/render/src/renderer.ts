import {
  DTYPE_MAX,
  type DatasetManifest,
  type DatasetStats,
  type DType,
  MIME_TYPES,
  type PixelArray,
  type RenderSpec,
  type SourceTile,
  type TileAddress,
  TilefarmError,
  canonicalSpecJson,
  isTilefarmError,
  levelSize,
} from '@tilefarm/contracts';
import { Float64Pool, evaluateFormula, toFloat64 } from './formula-eval';
import {
  type ChannelLevels,
  computeIndex,
  computeLevels,
  divideBy,
  foldMax,
  foldSum,
  levelsByteTable,
  ZERO_BYTE_TABLE,
  levelsTable,
  lookupIndex,
  lookupLevels,
  paintColor,
  paintLut,
  toRgb8,
} from './pixel-ops';
import { fastestPixelKernels, type PixelKernels } from './pixel-kernels';
import { type PlannedChannel, type RenderPlan, resolveRenderPlan } from './render-plan';
import { renderCostOf } from './render-cost';
import { LruByteCache, type LruByteCacheStats } from './source-cache';
import type { TileEncoder } from './tile-encoder';
import { padRgb } from './region-sampling';
import { channelWindow } from './windows';

export interface RenderInput {
  manifest: DatasetManifest;
  /** Per-plane statistics for "auto" windows; without them "auto" is the dtype's full range (see windows.ts). */
  stats: DatasetStats | undefined;
  /** Already zod-parsed (defaults filled). */
  spec: RenderSpec;
  /** level, z, t, x, y, format: the address's format wins over spec.format. */
  tile: TileAddress;
  /** Channel c of plane (z, t) at tile.level/x/y; edge tiles come cropped. */
  readSource(c: number, z: number, t: number): Promise<SourceTile>;
  /** A region render's output size (readSource then gives samples of that size), instead of the tile's. */
  size?: { width: number; height: number };
  /** Put the picture at the top-left of a black canvas this large (CATMAID's full edge tiles). */
  padTo?: { width: number; height: number };
  /**
   * `performance.now()` by which the render must be done: checked between steps and, in expensive
   * renders, between slices of compositing, so a render past it stops with render_timeout instead of
   * running to the end.
   */
  deadline?: number;
}
export interface RenderTimings {
  /** Source reads, including folding a Z projection as slices arrive. */
  readMs: number;
  /** Formulas, windows, levels and compositing. */
  compositeMs: number;
  encodeMs: number;
}
export interface RenderedTile {
  body: Buffer;
  contentType: string;
  width: number;
  height: number;
  timings: RenderTimings;
}
export interface TileRenderer {
  render(input: RenderInput): Promise<RenderedTile>;
  /** Counters of the renderer's internal caches (plans and levels tables), for metrics. */
  cacheStats(): { plans: LruByteCacheStats; levels: LruByteCacheStats };
}

export interface TileRendererOptions {
  /** Turns the composited RGB buffer into a file (sharp in `@tilefarm/render/encoder`; tests capture it). */
  encoder: TileEncoder;
  /** Bytes for per-value levels tables of integer sources (256 KB per uint16 channel window). */
  levelsCacheBytes?: number;
  /** Resolved plans kept (each is small). */
  planCacheEntries?: number;
  /** Source reads in flight per tile (a deep projection reads many slices). */
  readConcurrency?: number;
  /**
   * Longest stretch of synchronous work (ms) an expensive render does before it yields to the event
   * loop, so other renders, lock renewals and /healthz go on meanwhile. Default 5.
   */
  sliceMs?: number;
  /**
   * Whether other work of this process is in flight (the worker: other jobs, in any stage). Then an
   * expensive render rests between slices; without it, other renders of this renderer count.
   */
  contended?: () => boolean;
  /** The composite's fast loops (pixel-kernels.ts); default the native ones where built. */
  kernels?: PixelKernels;
}

/**
 * Renders costing more than this many sample operations (render-cost.ts: about 1-8 ns each) composite
 * in pixel bands with their own scratch arrays, yielding between bands; cheaper ones (every ordinary
 * tile: a 3-channel 512² tile is 1.6 M) run in one synchronous pass on shared scratch arrays, the hot path.
 */
const BANDED_ABOVE = 4_000_000;
/** The first band's sample operations (well under a millisecond even in cold code); later bands aim at BAND_MS. */
const FIRST_BAND_COST = 50_000;
const BAND_MS = 2;

/** Everything one render carries from step to step. */
interface RenderContext {
  input: RenderInput;
  plan: RenderPlan;
  width: number;
  height: number;
  /** Per dataset channel: samples after projection (same dtype, or Float64 for mean/sum). */
  sources: Map<number, PixelArray | Float64Array>;
  windows: [number, number][];
  rgb: Uint8Array;
  body: Buffer;
  pacer: Pacer;
}

/**
 * Cooperative time slicing for one render: `pace()` yields to the event loop once the current slice
 * has run sliceMs, and fails the render with render_timeout once the deadline has passed.
 */
class Pacer {
  private sliceStart = performance.now();
  constructor(
    private readonly sliceMs: number,
    private readonly deadline: number,
    private readonly what: string,
    /** Other renders are in flight in this process: then an expensive one gives way (see pace). */
    private readonly contended: () => boolean,
  ) {}

  check(): void {
    if (performance.now() > this.deadline) throw new TilefarmError('render_timeout', `render of ${this.what} was stopped at its deadline`);
  }

  async pace(): Promise<void> {
    if (performance.now() - this.sliceStart < this.sliceMs) return;
    this.check();
    // Alone, it only lets the event loop turn. Beside other renders it rests as long as it ran: each
    // step of a cheap render (a Redis reply, a read, an encode) would otherwise wait for a whole
    // slice of it, a dozen times per tile; resting keeps it to at most half of this process.
    if (this.contended()) await new Promise<void>((r) => setTimeout(r, this.sliceMs));
    else await new Promise<void>((r) => setImmediate(r));
    this.check();
    this.sliceStart = performance.now();
  }
}

interface Step {
  name: string;
  phase: keyof RenderTimings;
  run(ctx: RenderContext, r: Renderer): void | Promise<void>;
}

/**
 * Scratch arrays shared by all renders of one renderer. Only used inside synchronous steps, which
 * run back to back without yielding (see Renderer.render), so concurrent renders never interleave.
 */
class Scratch {
  private n = -1;
  private levelsBuf = new Float32Array(0);
  private indexBuf = new Uint8Array(0);
  private accBuf = new Float32Array(0);
  levels = this.levelsBuf;
  index = this.indexBuf;
  acc = this.accBuf;
  f64 = new Float64Pool();
  /** Views of n pixels over buffers that only grow, so edge tiles of other sizes do not reallocate. */
  resize(n: number): void {
    if (n === this.n) return;
    this.n = n;
    if (this.levelsBuf.length < n) {
      this.levelsBuf = new Float32Array(n);
      this.indexBuf = new Uint8Array(n);
      this.accBuf = new Float32Array(n * 3);
    }
    this.levels = this.levelsBuf.subarray(0, n);
    this.index = this.indexBuf.subarray(0, n);
    this.acc = this.accBuf.subarray(0, n * 3);
  }
}

class Renderer implements TileRenderer {
  readonly encoder: TileEncoder;
  readonly plans: LruByteCache<string, RenderPlan>;
  readonly levels: LruByteCache<string, Float32Array | Uint8Array>;
  readonly scratch = new Scratch();
  readonly readConcurrency: number;
  readonly sliceMs: number;
  /** Renders between start and finish in this renderer (an expensive one gives way while others run). */
  inFlight = 0;
  readonly contended: () => boolean;
  readonly kernels: PixelKernels;

  constructor(options: TileRendererOptions) {
    this.kernels = options.kernels ?? fastestPixelKernels();
    this.sliceMs = options.sliceMs ?? 5;
    this.contended = options.contended ?? (() => this.inFlight > 1);
    this.encoder = options.encoder;
    this.plans = new LruByteCache({ maxBytes: options.planCacheEntries ?? 256, sizeOf: () => 1 });
    this.levels = new LruByteCache({ maxBytes: options.levelsCacheBytes ?? 32 * 1024 * 1024 });
    this.readConcurrency = options.readConcurrency ?? 16;
  }

  /**
   * RGB buffers are reused once their encode has finished: a fresh 192 KB buffer per tile was a
   * tenth of the main thread's time in garbage collection. Every byte is overwritten by the composite.
   */
  private readonly rgbPool: Uint8Array[] = [];

  rgbBuffer(bytes: number): Uint8Array {
    const i = this.rgbPool.findIndex((b) => b.length === bytes);
    if (i >= 0) return this.rgbPool.splice(i, 1)[0] as Uint8Array;
    return new Uint8Array(bytes);
  }

  recycleRgb(buffer: Uint8Array): void {
    // Region renders can be megapixels: only tile-sized buffers are worth keeping.
    if (this.rgbPool.length < 32 && buffer.length <= 512 * 512 * 3) this.rgbPool.push(buffer);
  }

  cacheStats(): { plans: LruByteCacheStats; levels: LruByteCacheStats } {
    return { plans: this.plans.stats(), levels: this.levels.stats() };
  }

  /**
   * Canonical JSON per spec object: the worker's spec registry hands out one object per spec id, so
   * the plan key is not re-serialized (sorted keys) for every tile. Specs are never mutated.
   */
  private readonly specJson = new WeakMap<RenderSpec, string>();

  plan(spec: RenderSpec, manifest: DatasetManifest): RenderPlan {
    let json = this.specJson.get(spec);
    if (json === undefined) {
      json = canonicalSpecJson(spec);
      this.specJson.set(spec, json);
    }
    const key = `${manifest.id}@${manifest.version}|${json}`;
    let plan = this.plans.get(key);
    if (!plan) {
      plan = resolveRenderPlan(spec, manifest);
      this.plans.set(key, plan);
    }
    return plan;
  }

  byteTableFor(dtype: DType, l: ChannelLevels, component: number): Uint8Array {
    const key = `${dtype}|${l.lo}|${l.hi}|${l.gamma}|${l.invert ? 1 : 0}|b${component}`;
    let t = this.levels.get(key) as Uint8Array | undefined;
    if (!t) {
      t = levelsByteTable(DTYPE_MAX[dtype], l, component);
      this.levels.set(key, t);
    }
    return t;
  }

  levelsFor(dtype: DType, l: ChannelLevels, lutIndex: boolean): Float32Array | Uint8Array {
    const key = `${dtype}|${l.lo}|${l.hi}|${l.gamma}|${l.invert ? 1 : 0}|${lutIndex ? 'i' : 'n'}`;
    let t = this.levels.get(key);
    if (!t) {
      t = levelsTable(DTYPE_MAX[dtype], l, lutIndex);
      this.levels.set(key, t);
    }
    return t;
  }

  async render(input: RenderInput): Promise<RenderedTile> {
    const timings: RenderTimings = { readMs: 0, compositeMs: 0, encodeMs: 0 };
    const { tile } = input;
    const ctx = {
      input,
      plan: this.plan(input.spec, input.manifest),
      sources: new Map(),
      windows: [],
      pacer: new Pacer(this.sliceMs, input.deadline ?? Infinity, `tile ${tile.level}/${tile.z}/${tile.t}/${tile.x}/${tile.y}`, this.contended),
    } as unknown as RenderContext;
    this.inFlight++;
    try {
      return await this.run(ctx, timings);
    } finally {
      this.inFlight--;
    }
  }

  private async run(ctx: RenderContext, timings: RenderTimings): Promise<RenderedTile> {
    const { input } = ctx;
    for (const step of STEPS) {
      ctx.pacer.check();
      const t0 = performance.now();
      try {
        // Synchronous steps run back to back without an await in between, so the shared scratch
        // arrays are never used by two renders at once.
        const pending = step.run(ctx, this);
        if (pending) await pending;
      } catch (e) {
        if (isTilefarmError(e)) throw e;
        throw new TilefarmError('render_failed', `render step "${step.name}" failed: ${(e as Error).message}`);
      }
      timings[step.phase] += performance.now() - t0;
    }
    return { body: ctx.body, contentType: MIME_TYPES[input.tile.format], width: ctx.width, height: ctx.height, timings };
  }
}

/** Run fn over items with at most `limit` promises pending. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

async function readOne(ctx: RenderContext, c: number, z: number): Promise<SourceTile> {
  const { input } = ctx;
  let tile: SourceTile;
  try {
    tile = await input.readSource(c, z, input.tile.t);
  } catch (e) {
    if (isTilefarmError(e)) throw e;
    throw new TilefarmError('source_unreadable', `channel ${c}, z ${z}, t ${input.tile.t}: ${(e as Error).message}`);
  }
  if (tile.data.length !== tile.width * tile.height) {
    throw new TilefarmError('source_unreadable', `channel ${c}, z ${z}: ${tile.data.length} samples for a ${tile.width}x${tile.height} tile`);
  }
  if (ctx.width < 0) {
    ctx.width = tile.width;
    ctx.height = tile.height;
  } else if (tile.width !== ctx.width || tile.height !== ctx.height) {
    throw new TilefarmError('source_unreadable', `channel ${c}, z ${z}: tile is ${tile.width}x${tile.height}, other channels ${ctx.width}x${ctx.height}`);
  }
  return tile;
}

// ---- The pipeline: a flat list of small steps ------------------------------------------------

/** Read every needed channel; with a projection, fold the slices as they arrive. */
const readSources: Step = {
  name: 'read',
  phase: 'readMs',
  async run(ctx, r) {
    ctx.width = -1;
    ctx.height = -1;
    const { plan, input } = ctx;
    const proj = plan.projection;
    if (!proj) {
      await forEachLimited(plan.sourceChannels, r.readConcurrency, async (c) => {
        ctx.sources.set(c, (await readOne(ctx, c, input.tile.z)).data);
        await ctx.pacer.pace(); // region reads sample megapixels each
      });
      return;
    }
    const jobs: [number, number][] = [];
    for (const c of plan.sourceChannels) for (let z = proj.z0; z <= proj.z1; z++) jobs.push([c, z]);
    await forEachLimited(jobs, r.readConcurrency, async ([c, z]) => {
      const { data } = await readOne(ctx, c, z);
      const acc = ctx.sources.get(c);
      if (proj.type === 'max') {
        if (!acc) ctx.sources.set(c, data.slice());
        else foldMax(acc as PixelArray, data);
      } else if (!acc) {
        ctx.sources.set(c, Float64Array.from(data));
      } else {
        foldSum(acc as Float64Array, data);
      }
      // Cached slices arrive as resolved promises, which never give the event loop a turn by themselves.
      await ctx.pacer.pace();
    });
    if (proj.type === 'mean') {
      for (const acc of ctx.sources.values()) {
        divideBy(acc as Float64Array, proj.z1 - proj.z0 + 1);
        await ctx.pacer.pace();
      }
    }
  },
};

/** A spec with no active channel reads nothing: take the tile size from the manifest (black tile). */
const tileGeometry: Step = {
  name: 'geometry',
  phase: 'compositeMs',
  run(ctx) {
    if (ctx.width >= 0) return;
    if (ctx.input.size) {
      ctx.width = ctx.input.size.width;
      ctx.height = ctx.input.size.height;
      return;
    }
    const { manifest, tile } = ctx.input;
    const size = levelSize(manifest, tile.level);
    ctx.width = Math.min(manifest.tileSize, size.width - tile.x * manifest.tileSize);
    ctx.height = Math.min(manifest.tileSize, size.height - tile.y * manifest.tileSize);
    if (ctx.width <= 0 || ctx.height <= 0) throw new TilefarmError('out_of_range', `tile ${tile.x},${tile.y} is outside level ${tile.level}`);
  },
};

const resolveWindows: Step = {
  name: 'windows',
  phase: 'compositeMs',
  run(ctx) {
    const { plan, input } = ctx;
    ctx.windows = plan.channels.map((ch) => channelWindow(plan, ch, input.stats, input.tile.z, input.tile.t) as [number, number]);
  },
};

/** Pixels [from, to) of the tile: the whole tile in one pass, or one band of an expensive render. */
interface Band {
  from: number;
  to: number;
  scratch: Scratch;
}

function bandOf<T extends PixelArray | Float64Array>(a: T, band: Band): T {
  return (band.from === 0 && band.to === a.length ? a : a.subarray(band.from, band.to)) as T;
}

/** Samples of one planned channel over a band: the (projected) source, or the formula evaluated there. */
function channelSamples(ctx: RenderContext, ch: PlannedChannel, band: Band, f64: Map<number, Float64Array>): PixelArray | Float64Array {
  const n = band.to - band.from;
  if (ch.input.kind === 'source') return bandOf(ctx.sources.get(ch.input.channel) as PixelArray, band);
  const pool = band.scratch.f64;
  return evaluateFormula(ch.input.ast, {
    n,
    pool,
    channel(index) {
      let a = f64.get(index);
      if (!a) {
        a = toFloat64(bandOf(ctx.sources.get(index) as PixelArray, band), pool.take(n));
        f64.set(index, a);
      }
      return a;
    },
  });
}

/** Levels table and samples of each channel, when every channel is a colour on integer samples. */
function fusedInputs(ctx: RenderContext, r: Renderer): { src: Uint8Array | Uint16Array; table: Float32Array; rgb: readonly [number, number, number] }[] | undefined {
  const { plan } = ctx;
  if (plan.channels.length === 0 || plan.channels.length > 3) return undefined;
  const out = [];
  for (let k = 0; k < plan.channels.length; k++) {
    const ch = plan.channels[k] as PlannedChannel;
    if (ch.input.kind !== 'source' || ch.paint.kind !== 'color') return undefined;
    const src = ctx.sources.get(ch.input.channel);
    if (!(src instanceof Uint16Array || src instanceof Uint8Array)) return undefined;
    const [lo, hi] = ctx.windows[k] as [number, number];
    const table = r.levelsFor(src instanceof Uint8Array ? 'uint8' : 'uint16', { lo, hi, gamma: ch.gamma, invert: ch.invert }, false) as Float32Array;
    out.push({ src, table, rgb: ch.paint.rgb });
  }
  return out;
}

/** Colour channels on integer samples where each RGB component gets at most one channel: byte tables. */
const compositeSeparable: Step = {
  name: 'composite-separable',
  phase: 'compositeMs',
  run(ctx, r) {
    const { plan } = ctx;
    if (!plan.separable || plan.channels.length === 0) return;
    const parts: ({ src: Uint8Array | Uint16Array; table: Uint8Array } | undefined)[] = [undefined, undefined, undefined];
    for (let c = 0; c < plan.channels.length; c++) {
      const ch = plan.channels[c] as PlannedChannel;
      if (ch.input.kind !== 'source' || ch.paint.kind !== 'color') return;
      const src = ctx.sources.get(ch.input.channel);
      if (!(src instanceof Uint16Array || src instanceof Uint8Array)) return;
      const [lo, hi] = ctx.windows[c] as [number, number];
      const levels = { lo, hi, gamma: ch.gamma, invert: ch.invert };
      const dtype = src instanceof Uint8Array ? 'uint8' : 'uint16';
      ch.paint.rgb.forEach((component, k) => {
        if (component !== 0) parts[k] = { src, table: r.byteTableFor(dtype, levels, component) };
      });
    }
    // A component no channel paints reads any channel through the all-zero table.
    const any = (parts.find((p) => p !== undefined) as { src: Uint8Array | Uint16Array }).src;
    const [pr, pg, pb] = parts.map((p) => p ?? { src: any, table: ZERO_BYTE_TABLE }) as { src: Uint8Array | Uint16Array; table: Uint8Array }[];
    // Every byte is written below, so the buffer need not be zeroed first.
    const rgb = r.rgbBuffer(ctx.width * ctx.height * 3);
    r.kernels.writeRgbTables(pr!.src, pr!.table, pg!.src, pg!.table, pb!.src, pb!.table, rgb);
    ctx.rgb = rgb;
  },
};

/** 1-3 colour channels on integer samples: one fused pass straight to 8-bit RGB. */
const compositeFused: Step = {
  name: 'composite-fused',
  phase: 'compositeMs',
  run(ctx, r) {
    if (ctx.rgb) return;
    const f = fusedInputs(ctx, r);
    if (!f) return;
    const rgb = r.rgbBuffer(ctx.width * ctx.height * 3);
    const [a, b, c] = f;
    if (a && b && c) r.kernels.fusedColor3(ctx.plan.composite, a.src, a.table, a.rgb, b.src, b.table, b.rgb, c.src, c.table, c.rgb, rgb);
    else if (a && b) r.kernels.fusedColor2(ctx.plan.composite, a.src, a.table, a.rgb, b.src, b.table, b.rgb, rgb);
    else if (a) r.kernels.fusedColor1(a.src, a.table, a.rgb, rgb);
    ctx.rgb = rgb;
  },
};

/** One band of the general composite: channel by channel into a Float32 accumulator, then to 8 bits in `rgb`. */
function compositeBand(ctx: RenderContext, r: Renderer, band: Band, rgb: Uint8Array): void {
  const { plan } = ctx;
  const s = band.scratch;
  s.resize(band.to - band.from);
  s.acc.fill(0);
  const f64 = new Map<number, Float64Array>();
  plan.channels.forEach((ch, k) => {
      const [lo, hi] = ctx.windows[k] as [number, number];
      const levels: ChannelLevels = { lo, hi, gamma: ch.gamma, invert: ch.invert };
      const samples = channelSamples(ctx, ch, band, f64);
      const isLut = ch.paint.kind === 'lut';
      if (samples instanceof Uint8Array || samples instanceof Uint16Array) {
        const dtype: DType = samples instanceof Uint8Array ? 'uint8' : 'uint16';
        const table = r.levelsFor(dtype, levels, isLut);
        if (isLut) lookupIndex(samples, table as Uint8Array, s.index);
        else lookupLevels(samples, table as Float32Array, s.levels);
      } else if (isLut) {
        computeIndex(samples, levels, s.index);
      } else {
        computeLevels(samples, levels, s.levels);
      }
      if (ch.paint.kind === 'lut') paintLut(s.index, ch.paint.table, plan.composite, s.acc);
      else paintColor(s.levels, ch.paint.rgb, plan.composite, s.acc);
      if (ch.input.kind === 'formula') s.f64.give(samples as Float64Array);
  });
  for (const a of f64.values()) s.f64.give(a);
  toRgb8(s.acc, band.from === 0 && band.to * 3 === rgb.length ? rgb : rgb.subarray(band.from * 3, band.to * 3));
}

/** Any spec: channel by channel into a Float32 accumulator, then rounded to 8 bits. */
const compositeChannels: Step = {
  name: 'composite',
  phase: 'compositeMs',
  run(ctx, r) {
    if (ctx.rgb) return; // done by the fused path
    const n = ctx.width * ctx.height;
    // The RGB buffer is per render: the encoder reads it after this step has yielded.
    const rgb = r.rgbBuffer(n * 3);
    const perPixel = renderCostOf(ctx.plan).perPixel;
    if (perPixel * n <= BANDED_ABOVE) {
      // The hot path: one synchronous pass on the renderer's shared scratch arrays.
      compositeBand(ctx, r, { from: 0, to: n, scratch: r.scratch }, rgb);
      ctx.rgb = rgb;
      return;
    }
    return compositeInBands(ctx, r, n, perPixel, rgb);
  },
};

/**
 * An expensive composite: bands with scratch arrays of its own (other renders run between bands).
 * Band sizes follow the measured speed, so a band takes about BAND_MS whether the code is still
 * cold (interpreted) or the machine is loaded.
 */
async function compositeInBands(ctx: RenderContext, r: Renderer, n: number, perPixel: number, rgb: Uint8Array): Promise<void> {
  const scratch = new Scratch();
  let step = Math.max(16, Math.floor(FIRST_BAND_COST / perPixel));
  for (let from = 0; from < n; ) {
    const to = Math.min(n, from + step);
    const t0 = performance.now();
    compositeBand(ctx, r, { from, to, scratch }, rgb);
    const ms = performance.now() - t0;
    step = Math.max(16, Math.min(n, Math.round(((to - from) * BAND_MS) / Math.max(ms, 0.05)), step * 4));
    from = to;
    await ctx.pacer.pace();
  }
  ctx.rgb = rgb;
}

const encode: Step = {
  name: 'encode',
  phase: 'encodeMs',
  async run(ctx, r) {
    const { tile, spec, padTo } = ctx.input;
    if (padTo && (padTo.width > ctx.width || padTo.height > ctx.height)) {
      const padded = padRgb(ctx.rgb, ctx.width, ctx.height, padTo.width, padTo.height);
      r.recycleRgb(ctx.rgb);
      ctx.rgb = padded;
      ctx.width = padTo.width;
      ctx.height = padTo.height;
    }
    ctx.body = await r.encoder.encode(ctx.rgb, ctx.width, ctx.height, tile.format, spec.quality);
    r.recycleRgb(ctx.rgb); // the encoder is done reading it
  },
};

const STEPS: readonly Step[] = [readSources, tileGeometry, resolveWindows, compositeSeparable, compositeFused, compositeChannels, encode];

export function createTileRenderer(options: TileRendererOptions): TileRenderer {
  return new Renderer(options);
}

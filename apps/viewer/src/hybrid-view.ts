import { levelSize, type DatasetStats, type DatasetSummary, type RenderSpecInput } from '@tilefarm/contracts';
import { LUT_TABLES } from '@tilefarm/render/src/lut-data';
import { ClientPipeline, type PipelineChoice } from './client-pipeline';
import type { DeepZoomView, ViewGeometry } from './deep-zoom-view';
import { RawTileSource, type RawChunkRef } from './raw-tile-source';
import type { GlPipeline, TileDraw, TileTexture, WebglCompositor } from './webgl-compositor';

/** GPU tiles kept (each holds every channel of one source tile). */
const MAX_TEXTURES = 160;

interface Plane {
  z: number;
  t: number;
}

export interface HybridState {
  mode: 'gpu' | 'server';
  reason: string;
  /** Visible tiles of the current plane drawn from raw pixels / visible tiles in all. */
  drawn: number;
  visible: number;
  chunksFetched: number;
  chunksPending: number;
}

/**
 * Hybrid rendering: over OpenSeadragon's server-rendered picture (the first paint), a WebGL2
 * canvas draws the visible tiles (and keeps ±1 z ready) from raw channel pixels with the server's
 * pipeline. Window, gamma, colour, LUT, invert, active channels and composite then redraw here at
 * once with no request. Specs the GPU path does not cover (formulas, projections, float data) and
 * browsers without WebGL2 leave the overlay empty: the server's picture shows.
 */
export class HybridView {
  private readonly pipelines = new ClientPipeline();
  private source: RawTileSource | undefined;
  private dataset: DatasetSummary | undefined;
  private stats: DatasetStats | undefined;
  private spec: RenderSpecInput | undefined;
  private plane: Plane = { z: 0, t: 0 };
  /** The last plane whose visible tiles were all on the GPU: shown until the new one is complete. */
  private lastComplete: Plane | undefined;
  private choice: PipelineChoice = { kind: 'server', reason: 'no dataset' };
  /**
   * After a switch from the GPU to the server (a formula, a projection), the last GPU picture
   * stays until the server's picture of the new spec is on screen, like any other picture change
   * (and for good if the server refuses the spec).
   */
  private held: GlPipeline | undefined;
  private readonly textures = new Map<string, TileTexture>();
  private readonly asked = new Set<string>();
  /** The full-resolution tile under the cursor: its chunks are never dropped as unwanted. */
  private readoutTile = '';
  private frame = 0;
  /**
   * The server's first picture of this dataset has been complete on screen. Raw chunks are asked
   * for only from then on: fetched earlier they compete with that first picture's renders for the
   * same machines (on the 2-core bench VM the first full viewport took 1.9 s instead of 0.8 s).
   */
  private firstPaintDone = false;
  private drawnCount = 0;
  private visibleCount = 0;
  /** Frames drawn (tests wait on it) and the time the last one took. */
  draws = 0;
  lastDrawMs = 0;
  onState: () => void = () => undefined;
  /** Whether the server's picture on screen is of this plane (then an incomplete GPU plane is drawn over it, never an older one). */
  serverShows: (z: number, t: number) => boolean = () => false;

  constructor(
    private readonly view: DeepZoomView,
    private readonly gl: WebglCompositor | undefined,
  ) {
    if (gl) {
      gl.setLuts(LUT_TABLES);
      const c = gl.canvas;
      c.className = 'gpu-layer';
      view.overlayHost.append(c);
    }
    view.onDraw = () => this.draw();
  }

  get state(): HybridState {
    return {
      mode: this.choice.kind,
      reason: this.choice.kind === 'server' ? this.choice.reason : '',
      drawn: this.drawnCount,
      visible: this.visibleCount,
      chunksFetched: this.source?.fetched ?? 0,
      chunksPending: this.source?.pending ?? 0,
    };
  }

  /** Blocks until the GPU has drawn the last frame (timing in tests and benchmarks). */
  sync(): void {
    this.gl?.sync();
  }

  /** Every visible tile of the current plane is on screen from raw pixels. */
  get complete(): boolean {
    return this.choice.kind === 'gpu' && this.visibleCount > 0 && this.drawnCount === this.visibleCount;
  }

  get canvas(): HTMLCanvasElement | undefined {
    return this.gl?.canvas;
  }

  /** A new dataset: raw pixels come from its Zarr view at `root` (undefined: server-rendered only). */
  open(ds: DatasetSummary, stats: DatasetStats | undefined, root: string | undefined): void {
    for (const t of this.textures.values()) this.gl?.deleteTile(t);
    this.textures.clear();
    this.asked.clear();
    this.lastComplete = undefined;
    this.held = undefined;
    this.firstPaintDone = false;
    this.dataset = ds;
    this.stats = stats;
    this.source = root && ds.dtype !== 'float32' ? new RawTileSource(root, ds.dtype, ds.tileSize) : undefined;
  }

  setPlane(z: number, t: number): void {
    this.plane = { z, t };
    this.rechoose();
  }

  /** The spec to draw; answers whether the GPU draws it (else the server's picture must). */
  setSpec(spec: RenderSpecInput): PipelineChoice {
    const before = this.choice;
    this.spec = spec;
    this.rechoose(false);
    // The same (or another) server-only spec again keeps the picture already held.
    if (this.choice.kind === 'gpu') this.held = undefined;
    else if (before.kind === 'gpu') this.held = before.pipeline;
    this.draw();
    return this.choice;
  }

  /** The server's picture of the current spec is on screen: a held GPU picture gives way. */
  serverCaughtUp(): void {
    if (!this.held) return;
    this.held = undefined;
    this.draw();
  }

  /** Whether the GPU would draw this spec (without switching to it). */
  wouldDraw(spec: RenderSpecInput): boolean {
    const ds = this.dataset;
    return !!(this.gl && this.source && ds && this.pipelines.choose(spec, ds, this.stats, this.plane.z, this.plane.t).kind === 'gpu');
  }

  private rechoose(draw = true): void {
    const ds = this.dataset;
    if (!this.gl) this.choice = { kind: 'server', reason: 'no WebGL2' };
    else if (!ds || !this.spec) this.choice = { kind: 'server', reason: 'no dataset' };
    else if (!this.source) this.choice = { kind: 'server', reason: ds.dtype === 'float32' ? 'float samples' : 'no raw pixels' };
    else this.choice = this.pipelines.choose(this.spec, ds, this.stats, this.plane.z, this.plane.t);
    if (draw) this.draw();
  }

  /** Redraws at the next animation frame (after the server's layer changed). */
  redrawSoon(): void {
    this.scheduleDraw();
  }

  /** Draws now (synchronously): used after input, so a change is on screen in the next frame. */
  draw(): void {
    const gl = this.gl;
    if (!gl) return;
    const t0 = performance.now();
    const g = this.view.geometry();
    const ds = this.dataset;
    const pipeline = this.choice.kind === 'gpu' ? this.choice.pipeline : this.held;
    if (!g || !ds || !pipeline || !this.source) {
      gl.draw(g?.width ?? 1, g?.height ?? 1, undefined, []);
      this.drawnCount = 0;
      this.visibleCount = 0;
      this.finishDraw(t0);
      return;
    }
    const visible = this.tilesInView(g, ds, g.level);
    if (!this.firstPaintDone && this.view.state.complete) this.firstPaintDone = true;
    if (this.firstPaintDone) this.request(visible, ds, g.level);
    this.onState(); // pending counts changed
    const needed = pipeline.channels.map((c) => c.layer);
    const ready = (p: Plane, level: number, x: number, y: number) => {
      const tex = this.textures.get(this.texKey(level, p, x, y));
      return tex && needed.every((l) => tex.loaded.has(l)) ? tex : undefined;
    };
    const drawn = visible.filter(([x, y]) => ready(this.plane, g.level, x, y)).length;
    this.drawnCount = drawn;
    this.visibleCount = visible.length;
    if (drawn === visible.length) this.lastComplete = { ...this.plane };
    // An incomplete plane is drawn where it is ready, over the server's picture of the same plane;
    // while the server still shows an older plane, the last complete GPU plane stays instead.
    const current = drawn === visible.length || !this.lastComplete || this.serverShows(this.plane.z, this.plane.t);
    const shownPlane = current ? this.plane : this.lastComplete;
    const draws: TileDraw[] = [];
    // Coarser levels first, so a finer tile that is ready covers them; but only where a tile of
    // the level on screen is missing. Every pixel the GPU shades costs (on a software rasterizer,
    // all of the redraw time), and two coarser levels under a complete screen would shade it
    // three times over for nothing.
    const missing = visible.filter(([x, y]) => !ready(shownPlane as Plane, g.level, x, y));
    for (let level = Math.min(ds.levels - 1, g.level + 2); level > g.level && missing.length > 0; level--) {
      const f = 2 ** (level - g.level);
      const under = new Set(missing.map(([x, y]) => `${Math.floor(x / f)}/${Math.floor(y / f)}`));
      for (const [x, y] of this.tilesInView(g, ds, level)) {
        if (!under.has(`${x}/${y}`)) continue;
        const tex = ready(shownPlane as Plane, level, x, y);
        if (tex) draws.push(this.placement(g, ds, level, x, y, tex));
      }
    }
    for (const [x, y] of visible) {
      const tex = ready(shownPlane as Plane, g.level, x, y);
      if (tex) draws.push(this.placement(g, ds, g.level, x, y, tex));
    }
    gl.draw(g.width, g.height, pipeline as GlPipeline, draws);
    this.finishDraw(t0);
  }

  private finishDraw(t0: number): void {
    this.draws++;
    this.lastDrawMs = performance.now() - t0;
    this.onState();
  }

  private scheduleDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private texKey(level: number, p: Plane, x: number, y: number): string {
    return `${level}/${p.t}/${p.z}/${y}/${x}`;
  }

  private tilesInView(g: ViewGeometry, ds: DatasetSummary, level: number): [number, number][] {
    const span = ds.tileSize * 2 ** level;
    const size = levelSize(ds, level);
    const cols = Math.ceil(size.width / ds.tileSize);
    const rows = Math.ceil(size.height / ds.tileSize);
    const out: [number, number][] = [];
    const xa = Math.max(0, Math.floor(g.x0 / span));
    const xb = Math.min(cols - 1, Math.floor((g.x1 - 1e-6) / span));
    const ya = Math.max(0, Math.floor(g.y0 / span));
    const yb = Math.min(rows - 1, Math.floor((g.y1 - 1e-6) / span));
    for (let y = ya; y <= yb; y++) for (let x = xa; x <= xb; x++) out.push([x, y]);
    return out;
  }

  private placement(g: ViewGeometry, ds: DatasetSummary, level: number, x: number, y: number, tile: TileTexture): TileDraw {
    const f = 2 ** level;
    const size = levelSize(ds, level);
    const width = Math.min(ds.tileSize, size.width - x * ds.tileSize);
    const height = Math.min(ds.tileSize, size.height - y * ds.tileSize);
    const px = (ix: number) => (g.originX + ix * g.scale) * g.dpr;
    const py = (iy: number) => (g.originY + iy * g.scale) * g.dpr;
    const ix0 = x * ds.tileSize * f;
    const iy0 = y * ds.tileSize * f;
    return { tile, x0: px(ix0), y0: py(iy0), x1: px(ix0 + width * f), y1: py(iy0 + height * f), width, height };
  }

  /** Asks for the raw chunks of the visible tiles, then the same tiles at z ± 1 (sent after, as they are queued first). */
  private request(visible: [number, number][], ds: DatasetSummary, level: number): void {
    const source = this.source;
    if (!source) return;
    const { z, t } = this.plane;
    const planes: Plane[] = [];
    // Asked last-in-first-out: the visible plane first, then z ± 1, then the next time point.
    if (t + 1 < ds.sizeT) planes.push({ z, t: t + 1 });
    if (z + 1 < ds.sizeZ) planes.push({ z: z + 1, t });
    if (z > 0) planes.push({ z: z - 1, t });
    planes.push(this.plane);
    const wanted = new Set<string>();
    for (const p of planes) {
      for (const [x, y] of visible) {
        const key = this.texKey(level, p, x, y);
        wanted.add(key);
        const tex = this.textures.get(key);
        for (let c = 0; c < ds.sizeC; c++) {
          if (tex?.loaded.has(c)) continue;
          const ref: RawChunkRef = { level, t: p.t, c, z: p.z, y, x };
          const askKey = `${key}#${c}`;
          if (this.asked.has(askKey)) continue;
          this.asked.add(askKey);
          void source.load(ref).then((samples) => {
            this.asked.delete(askKey);
            if (!samples || source !== this.source || !this.gl) return;
            const texture = this.textureFor(key, ds);
            this.gl.upload(texture, c, ds.tileSize, samples);
            this.scheduleDraw();
          });
        }
      }
    }
    source.retain((r) => {
      const key = this.texKey(r.level, r, r.x, r.y);
      return wanted.has(key) || key === this.readoutTile;
    });
  }

  private textureFor(key: string, ds: DatasetSummary): TileTexture {
    let tex = this.textures.get(key);
    if (tex) {
      this.textures.delete(key);
    } else {
      tex = (this.gl as WebglCompositor).createTile(ds.tileSize, ds.sizeC, ds.dtype === 'uint8' ? 'uint8' : 'uint16');
      while (this.textures.size >= MAX_TEXTURES) {
        const oldest = this.textures.keys().next().value as string;
        this.gl?.deleteTile(this.textures.get(oldest) as TileTexture);
        this.textures.delete(oldest);
      }
    }
    this.textures.set(key, tex);
    return tex;
  }

  /** Raw value of every channel at a full-resolution pixel of the current plane (fetched if needed). */
  async valuesAt(ix: number, iy: number): Promise<number[] | undefined> {
    const ds = this.dataset;
    const source = this.source;
    if (!ds || !source || ix < 0 || iy < 0 || ix >= ds.width || iy >= ds.height) return undefined;
    const ts = ds.tileSize;
    const x = Math.floor(ix / ts);
    const y = Math.floor(iy / ts);
    const { z, t } = this.plane;
    this.readoutTile = this.texKey(0, this.plane, x, y);
    const chunks = await Promise.all(Array.from({ length: ds.sizeC }, (_, c) => source.load({ level: 0, t, c, z, y, x })));
    if (chunks.some((s) => !s)) return undefined;
    return chunks.map((s) => (s as Uint16Array)[(iy % ts) * ts + (ix % ts)] as number);
  }
}

import OpenSeadragon from 'openseadragon';
import type { DatasetSummary, ImageFormat } from '@tilefarm/contracts';
import type { AccessToken } from './access-token';
import { httpTileUrl, type TileLoader, type TileRef, type VisibleRange } from './socket-tile-loader';

/** One picture: a dataset rendered with one spec at one (z, t). */
export interface LayerSpec {
  dataset: DatasetSummary;
  specId: string;
  z: number;
  t: number;
  format: ImageFormat;
}

/** Centre in viewport coordinates (image width = 1) and zoom, as OpenSeadragon counts them. */
export interface ViewPosition {
  x: number;
  y: number;
  zoom: number;
}

interface Layer {
  key: string;
  spec: LayerSpec;
  item: OpenSeadragon.TiledImage | undefined;
  /** Tile jobs OpenSeadragon started and we have not finished yet. */
  jobs: Set<OpenSeadragon.ImageJob>;
  removed: boolean;
}

/** OpenSeadragon's ImageJob as our tile source uses it (its typings lag behind 6.x). */
interface TileJob {
  tile: { level: number; x: number; y: number };
  userData: { cancel?: () => void };
  finish(data: unknown, request: null, dataType: string): void;
  fail(message: string, request: null): void;
  abort?: () => void;
}

/** The current frame's mapping from image pixels (level 0) to the drawing canvas, and what is visible. */
export interface ViewGeometry {
  /** Element (CSS) pixel position of image pixel (0, 0), and CSS pixels per image pixel. */
  originX: number;
  originY: number;
  scale: number;
  /** Canvas pixels per CSS pixel. */
  dpr: number;
  /** The drawing canvas in canvas pixels. */
  width: number;
  height: number;
  /** The tilefarm level OpenSeadragon draws at (about one level pixel per canvas pixel). */
  level: number;
  /** Visible part of the image, level-0 pixels. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export function layerKey(s: LayerSpec): string {
  return `${s.dataset.id}/${s.specId}/${s.z}/${s.t}/${s.format}`;
}

/**
 * The deep-zoom picture (OpenSeadragon, canvas drawer). Each layer's tile source hands tile loading to the
 * TileLoader (the socket) through `downloadTileStart`/`downloadTileAbort`. A new Z, T or spec is
 * loaded as a second, invisible TiledImage over the one on screen and swapped in only when fully
 * loaded: the old picture stays until then, so stepping Z never shows a blank or a half-drawn slice.
 */
export class DeepZoomView {
  private readonly viewer: OpenSeadragon.Viewer;
  private shown: Layer | undefined;
  private incoming: Layer | undefined;
  /** Called when the position changes (settled), or the shown layer changes. */
  onChange: () => void = () => undefined;
  /** A picture that was loading could not be made (e.g. a spec the dataset refuses); the old one stays. */
  onLayerError: (message: string) => void = () => undefined;
  /** After OpenSeadragon drew a frame (moved, zoomed, tiles arrived): overlays redraw here. */
  onDraw: () => void = () => undefined;

  constructor(
    container: HTMLElement,
    private readonly loader: TileLoader,
    private readonly apiBase: string,
    private readonly token?: AccessToken,
  ) {
    this.viewer = OpenSeadragon({
      element: container,
      drawer: 'canvas',
      showNavigationControl: false,
      showNavigator: true,
      navigatorPosition: 'BOTTOM_RIGHT',
      // Tiles wait for renders; the socket decides when a tile is lost, not a short timer.
      timeout: 300_000,
      blendTime: 0,
      immediateRender: false,
      imageLoaderLimit: 0,
      visibilityRatio: 0.5,
      gestureSettingsMouse: { clickToZoom: false },
      crossOriginPolicy: false,
    } as OpenSeadragon.Options);
    const moved = () => this.reportViewport();
    this.viewer.addHandler('animation', moved);
    this.viewer.addHandler('animation-finish', () => {
      this.reportViewport();
      this.onChange();
    });
    this.viewer.addHandler('resize', moved);
    this.viewer.addHandler('update-viewport', () => this.onDraw());
  }

  /** Where overlays that move with the picture go (over OpenSeadragon's canvas, under its controls). */
  get overlayHost(): HTMLElement {
    return this.viewer.canvas as HTMLElement;
  }

  /** OpenSeadragon's own canvas (the server-rendered picture). */
  get baseCanvas(): HTMLCanvasElement | undefined {
    return (this.viewer.drawer as unknown as { canvas?: HTMLCanvasElement }).canvas;
  }

  geometry(): ViewGeometry | undefined {
    const layer = this.shown ?? this.incoming;
    const item = layer?.item;
    const canvas = this.baseCanvas;
    if (!layer || !item || !canvas) return undefined;
    const ds = layer.spec.dataset;
    const o = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    const far = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(ds.width, 0));
    const scale = (far.x - o.x) / ds.width;
    if (!(scale > 0)) return undefined;
    const dpr = canvas.width / Math.max(1, canvas.clientWidth || this.viewer.container.clientWidth);
    const level = Math.min(ds.levels - 1, Math.max(0, Math.floor(Math.log2(1 / (scale * dpr)))));
    const cssW = canvas.width / dpr;
    const cssH = canvas.height / dpr;
    return {
      originX: o.x,
      originY: o.y,
      scale,
      dpr,
      width: canvas.width,
      height: canvas.height,
      level,
      x0: Math.max(0, -o.x / scale),
      y0: Math.max(0, -o.y / scale),
      x1: Math.min(ds.width, (cssW - o.x) / scale),
      y1: Math.min(ds.height, (cssH - o.y) / scale),
    };
  }

  get element(): HTMLElement {
    return this.viewer.element;
  }

  /** The layer on screen, whether it has every tile the view needs, and the one still loading behind it. */
  get state(): { shown: string | undefined; complete: boolean; loading: string | undefined } {
    return { shown: this.shown?.key, complete: this.shown?.item?.getFullyLoaded() ?? false, loading: this.incoming?.key };
  }

  show(spec: LayerSpec, position?: ViewPosition): void {
    const key = layerKey(spec);
    if (this.shown?.key === key) {
      if (this.incoming) this.drop(this.incoming);
      this.incoming = undefined;
      this.reportViewport();
      this.onChange();
      return;
    }
    if (this.incoming?.key === key) return;
    if (this.incoming) this.drop(this.incoming);
    this.incoming = undefined;
    const layer: Layer = { key, spec, item: undefined, jobs: new Set(), removed: false };
    const sameGeometry = this.shown !== undefined && this.shown.spec.dataset.id === spec.dataset.id && this.shown.spec.dataset.version === spec.dataset.version;
    if (!sameGeometry) {
      // First picture, or another dataset: nothing on screen is worth keeping.
      if (this.shown) this.drop(this.shown);
      this.shown = layer;
      this.add(layer, 1, position);
    } else {
      this.incoming = layer;
      this.add(layer, 0, undefined);
    }
    this.onChange();
  }

  get position(): ViewPosition {
    const c = this.viewer.viewport.getCenter(false);
    return { x: c.x, y: c.y, zoom: this.viewer.viewport.getZoom(false) };
  }

  /**
   * The picture as the user sees it, in canvas pixels: the server's layer, with `overlays` (the
   * GPU layer) drawn over it. Each overlay must be drawn just before (WebGL buffers may be cleared
   * once shown).
   */
  snapshot(overlays: HTMLCanvasElement[]): HTMLCanvasElement {
    const base = this.baseCanvas;
    const out = document.createElement('canvas');
    out.width = base?.width ?? 1;
    out.height = base?.height ?? 1;
    const g = out.getContext('2d') as CanvasRenderingContext2D;
    g.fillStyle = '#000';
    g.fillRect(0, 0, out.width, out.height);
    if (base) g.drawImage(base, 0, 0);
    for (const o of overlays) g.drawImage(o, 0, 0, out.width, out.height);
    return out;
  }

  /** The whole image in view. */
  home(): void {
    this.viewer.viewport.goHome(false);
  }

  setPosition(p: ViewPosition): void {
    this.viewer.viewport.zoomTo(p.zoom, undefined, true);
    this.viewer.viewport.panTo(new OpenSeadragon.Point(p.x, p.y), true);
  }

  private add(layer: Layer, opacity: number, position: ViewPosition | undefined): void {
    const view = this;
    const ds = layer.spec.dataset;
    const maxLevel = Math.ceil(Math.log2(Math.max(ds.width, ds.height)));
    const minLevel = Math.max(0, maxLevel - (ds.levels - 1));
    // OpenSeadragon counts levels up from 1 pixel; tilefarm counts down from full resolution.
    const refOf = (level: number, x: number, y: number): TileRef => ({
      dataset: ds.id,
      specId: layer.spec.specId,
      level: maxLevel - level,
      z: layer.spec.z,
      t: layer.spec.t,
      x,
      y,
      format: layer.spec.format,
    });
    const tileSource = new OpenSeadragon.TileSource({
      width: ds.width,
      height: ds.height,
      tileSize: ds.tileSize,
      tileOverlap: 0,
      minLevel,
      maxLevel,
      // Also the tile's cache key, and the HTTP fallback.
      getTileUrl: (level: number, x: number, y: number) => httpTileUrl(this.apiBase, refOf(level, x, y), this.token),
      downloadTileStart(job: TileJob) {
        layer.jobs.add(job as unknown as OpenSeadragon.ImageJob);
        job.userData.cancel = view.loader.load(refOf(job.tile.level, job.tile.x, job.tile.y), {
          done: (r) => {
            layer.jobs.delete(job as unknown as OpenSeadragon.ImageJob);
            job.finish(r.image, null, 'image');
          },
          failed: (message) => {
            layer.jobs.delete(job as unknown as OpenSeadragon.ImageJob);
            job.fail(message, null);
            if (view.incoming === layer) {
              view.drop(layer);
              view.incoming = undefined;
              view.onLayerError(message);
              view.onChange();
            }
          },
        });
      },
      downloadTileAbort(job: TileJob) {
        layer.jobs.delete(job as unknown as OpenSeadragon.ImageJob);
        job.userData.cancel?.();
      },
    } as unknown as OpenSeadragon.TileSourceOptions);
    this.viewer.addTiledImage({
      tileSource,
      opacity,
      preload: true,
      success: (event: { item: OpenSeadragon.TiledImage }) => {
        const item = event.item;
        layer.item = item;
        if (layer.removed) {
          this.viewer.world.removeItem(item);
          return;
        }
        if (position) this.setPosition(position);
        else if (opacity === 1) this.viewer.viewport.goHome(true);
        item.addHandler('fully-loaded-change', () => {
          this.promoteIfLoaded();
          this.onChange();
        });
        this.reportViewport();
        this.promoteIfLoaded();
      },
    } as unknown as Parameters<OpenSeadragon.Viewer["addTiledImage"]>[0]);
  }

  /** The incoming layer is complete for the current view: show it, then remove the old one. */
  private promoteIfLoaded(): void {
    const next = this.incoming;
    if (!next?.item || !next.item.getFullyLoaded()) return;
    next.item.setOpacity(1);
    const old = this.shown;
    this.shown = next;
    this.incoming = undefined;
    if (old) this.drop(old);
    this.onChange();
  }

  private drop(layer: Layer): void {
    layer.removed = true;
    // OpenSeadragon's own abort path: our downloadTileAbort cancels the tile on the socket.
    for (const job of [...layer.jobs]) {
      const j = job as unknown as TileJob;
      if (j.abort) j.abort();
      else j.userData.cancel?.();
    }
    layer.jobs.clear();
    if (layer.item) this.viewer.world.removeItem(layer.item);
  }

  /** Tells the loader which tiles are visible at the level OpenSeadragon draws at, for the layer wanted now. */
  private reportViewport(): void {
    const layer = this.incoming ?? this.shown;
    const item = layer?.item;
    if (!layer || !item) return;
    const range = this.visibleRange(layer, item);
    if (range) this.loader.viewport(range);
  }

  private visibleRange(layer: Layer, item: OpenSeadragon.TiledImage): VisibleRange | undefined {
    const ds = layer.spec.dataset;
    const viewport = this.viewer.viewport;
    const rect = item.viewportToImageRectangle(viewport.getBounds(true));
    const screenPerImagePixel = item.viewportToImageZoom(viewport.getZoom(true)) * (window.devicePixelRatio || 1);
    if (!(screenPerImagePixel > 0)) return undefined;
    // The level with about one of its pixels per screen pixel: the finest OpenSeadragon draws here.
    const level = Math.min(ds.levels - 1, Math.max(0, Math.floor(Math.log2(1 / screenPerImagePixel))));
    const span = ds.tileSize * 2 ** level;
    const cols = Math.ceil(ds.width / span);
    const rows = Math.ceil(ds.height / span);
    const clampX = (v: number) => Math.min(cols - 1, Math.max(0, Math.floor(v / span)));
    const clampY = (v: number) => Math.min(rows - 1, Math.max(0, Math.floor(v / span)));
    return {
      dataset: ds.id,
      specId: layer.spec.specId,
      level,
      z: layer.spec.z,
      t: layer.spec.t,
      x0: clampX(rect.x),
      y0: clampY(rect.y),
      x1: clampX(rect.x + rect.width),
      y1: clampY(rect.y + rect.height),
      format: layer.spec.format,
    };
  }
}

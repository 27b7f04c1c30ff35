import type { DatasetSummary, RenderSpecInput } from '@tilefarm/contracts';
import type { ApiClient } from './api-client';

/**
 * Side of one region render: each block of the export is one IIIF region request the workers
 * render at full resolution (well under REGION_MAX_SIDE and the render cost ceiling), and the
 * number of blocks done is the progress shown.
 */
const BLOCK = 1024;
/** Largest export, in pixels (a canvas of this size still fits a browser's limits). */
const MAX_PIXELS = 16384 * 16384;
const BLOCK_ATTEMPTS = 4;

export interface ImageRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What the export renders: the dataset, the spec on screen, the plane on screen. */
export interface ExportSubject {
  dataset: DatasetSummary;
  spec: RenderSpecInput;
  z: number;
  t: number;
}

/** The view's mapping from CSS pixels (relative to the view element) to full-resolution image pixels. */
export interface ScreenGeometry {
  originX: number;
  originY: number;
  scale: number;
}

/**
 * Export of a chosen region at full resolution: "region" lets the user drag a rectangle over the
 * picture; the rectangle (in full-resolution pixels) is rendered by the workers as IIIF region
 * renders of at most BLOCK² pixels each (`/iiif/3/{dataset}~{spec}~z~t/{x,y,w,h}/max/0/default.png`,
 * the same region renders other viewers use), fetched two at a time with progress, stitched on a
 * canvas and saved as one PNG. State for scripts and tests: `data-export` (phase),
 * `data-export-region` ("x,y,w,h") and `data-export-progress` on <body>.
 */
export class RegionExport {
  private readonly overlay: HTMLDivElement;
  private readonly box: HTMLDivElement;
  private start: { x: number; y: number } | undefined;
  private running: AbortController | undefined;
  private readonly text: HTMLSpanElement;
  private readonly bar: HTMLProgressElement;
  private readonly cancelButton: HTMLButtonElement;

  constructor(
    private readonly view: HTMLElement,
    private readonly status: HTMLElement,
    private readonly api: ApiClient,
    private readonly subject: () => ExportSubject | undefined,
    private readonly geometry: () => ScreenGeometry | undefined,
  ) {
    // A layer over the picture catches the drag, so the viewer does not pan meanwhile.
    this.overlay = Object.assign(document.createElement('div'), { className: 'region-select' });
    this.overlay.hidden = true;
    this.box = Object.assign(document.createElement('div'), { className: 'region-box' });
    this.overlay.append(this.box);
    view.append(this.overlay);
    // Stopped here: the deep-zoom viewer below listens on the same element and would pan.
    for (const [type, handle] of [['pointerdown', (e: PointerEvent) => this.down(e)], ['pointermove', (e: PointerEvent) => this.move(e)], ['pointerup', (e: PointerEvent) => void this.up(e)]] as const) {
      this.overlay.addEventListener(type, (e) => {
        e.stopPropagation();
        e.preventDefault();
        handle(e);
      });
    }
    this.text = document.createElement('span');
    this.bar = document.createElement('progress');
    this.bar.max = 1;
    this.cancelButton = Object.assign(document.createElement('button'), { type: 'button', textContent: 'cancel', id: 'export-cancel' });
    this.cancelButton.addEventListener('click', () => this.cancel());
    status.replaceChildren(this.text, this.bar, this.cancelButton);
    status.hidden = true;
  }

  get selecting(): boolean {
    return !this.overlay.hidden;
  }

  /** Starts (or stops) choosing a region with the mouse. */
  toggleSelecting(): void {
    if (this.selecting) return this.cancel();
    if (this.running) return;
    this.overlay.hidden = false;
    this.box.hidden = true;
    this.phase('selecting', 'drag a rectangle over the picture to export it at full resolution (Esc: cancel)', undefined);
  }

  cancel(): void {
    this.overlay.hidden = true;
    this.start = undefined;
    if (this.running) this.running.abort();
    else this.phase('idle', '', undefined);
  }

  private local(e: PointerEvent): { x: number; y: number } {
    const r = this.view.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  private down(e: PointerEvent): void {
    this.overlay.setPointerCapture(e.pointerId);
    this.start = this.local(e);
    this.drawBox(this.start, this.start);
  }

  private move(e: PointerEvent): void {
    if (this.start) this.drawBox(this.start, this.local(e));
  }

  private async up(e: PointerEvent): Promise<void> {
    if (!this.start) return;
    const a = this.start;
    const b = this.local(e);
    this.start = undefined;
    this.overlay.hidden = true;
    const rect = this.toImage(a, b);
    if (!rect) return this.phase('failed', 'that rectangle does not cover the image', undefined);
    await this.export(rect);
  }

  private drawBox(a: { x: number; y: number }, b: { x: number; y: number }): void {
    Object.assign(this.box.style, { left: `${Math.min(a.x, b.x)}px`, top: `${Math.min(a.y, b.y)}px`, width: `${Math.abs(b.x - a.x)}px`, height: `${Math.abs(b.y - a.y)}px` });
    this.box.hidden = false;
    const rect = this.toImage(a, b);
    if (rect) this.text.textContent = `${rect.w} × ${rect.h} px at full resolution`;
  }

  /** Screen rectangle → full-resolution pixels, clipped to the image; undefined when nothing is left. */
  private toImage(a: { x: number; y: number }, b: { x: number; y: number }): ImageRect | undefined {
    const g = this.geometry();
    const s = this.subject();
    if (!g || !s) return undefined;
    const ix = (px: number) => (px - g.originX) / g.scale;
    const iy = (py: number) => (py - g.originY) / g.scale;
    const x0 = Math.max(0, Math.floor(Math.min(ix(a.x), ix(b.x))));
    const y0 = Math.max(0, Math.floor(Math.min(iy(a.y), iy(b.y))));
    const x1 = Math.min(s.dataset.width, Math.ceil(Math.max(ix(a.x), ix(b.x))));
    const y1 = Math.min(s.dataset.height, Math.ceil(Math.max(iy(a.y), iy(b.y))));
    return x1 - x0 >= 1 && y1 - y0 >= 1 ? { x: x0, y: y0, w: x1 - x0, h: y1 - y0 } : undefined;
  }

  /** Renders `rect` (full-resolution pixels) of the picture on screen and saves it as a PNG. */
  async export(rect: ImageRect): Promise<void> {
    const s = this.subject();
    if (!s || this.running) return;
    if (rect.w * rect.h > MAX_PIXELS) return this.phase('failed', `${rect.w} × ${rect.h} px is more than one export can hold (${Math.sqrt(MAX_PIXELS)}² px); choose a smaller region`, undefined);
    const abort = (this.running = new AbortController());
    document.body.dataset.exportRegion = `${rect.x},${rect.y},${rect.w},${rect.h}`;
    const blocks: ImageRect[] = [];
    for (let y = rect.y; y < rect.y + rect.h; y += BLOCK) {
      for (let x = rect.x; x < rect.x + rect.w; x += BLOCK) blocks.push({ x, y, w: Math.min(BLOCK, rect.x + rect.w - x), h: Math.min(BLOCK, rect.y + rect.h - y) });
    }
    const label = `exporting ${rect.w} × ${rect.h} px of ${s.dataset.id}`;
    this.phase('rendering', `${label}: 0/${blocks.length} regions`, 0);
    try {
      // The spec on screen (registered now if the GPU drew it and the server has not followed yet), as lossless PNG.
      const specId = await this.api.specId({ ...s.spec, format: 'png' });
      const id = [s.dataset.id, specId, s.z ? `z${s.z}` : '', s.t ? `t${s.t}` : ''].filter(Boolean).join('~');
      const canvas = document.createElement('canvas');
      canvas.width = rect.w;
      canvas.height = rect.h;
      const g2 = canvas.getContext('2d')!;
      let done = 0;
      const queue = [...blocks];
      const lane = async () => {
        for (let b = queue.shift(); b; b = queue.shift()) {
          const image = await this.block(`${this.api.base}/iiif/3/${encodeURIComponent(id)}/${b.x},${b.y},${b.w},${b.h}/max/0/default.png`, abort.signal);
          g2.drawImage(image, b.x - rect.x, b.y - rect.y);
          image.close();
          done++;
          this.phase('rendering', `${label}: ${done}/${blocks.length} regions`, done / blocks.length);
        }
      };
      await Promise.all([lane(), lane()]);
      const blob = await new Promise<Blob | null>((r) => canvas.toBlob(r, 'image/png'));
      if (!blob) throw new Error('the browser could not encode the PNG');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `${s.dataset.id}-z${s.z}-t${s.t}-x${rect.x}-y${rect.y}-${rect.w}x${rect.h}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      this.phase('done', `${label}: saved ${a.download}`, 1);
    } catch (e) {
      this.phase(abort.signal.aborted ? 'cancelled' : 'failed', abort.signal.aborted ? 'export cancelled' : `export failed: ${e instanceof Error ? e.message : String(e)}`, undefined);
    } finally {
      this.running = undefined;
    }
  }

  /** One region render; a busy farm (503, 504) or a lost connection is asked again, a little later each time. */
  private async block(url: string, signal: AbortSignal): Promise<ImageBitmap> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.api.fetch(url, { signal });
        if (res.ok) return await createImageBitmap(await res.blob());
        const body = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
        if (res.status < 500 || attempt >= BLOCK_ATTEMPTS) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
      } catch (e) {
        if (signal.aborted || attempt >= BLOCK_ATTEMPTS || !(e instanceof TypeError)) throw e;
      }
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }

  private phase(phase: string, text: string, fraction: number | undefined): void {
    document.body.dataset.export = phase;
    this.status.hidden = phase === 'idle';
    this.status.dataset.phase = phase;
    this.text.textContent = text;
    if (fraction === undefined) this.bar.removeAttribute('value');
    else this.bar.value = fraction;
    this.bar.hidden = phase !== 'rendering';
    this.cancelButton.hidden = phase !== 'rendering' && phase !== 'selecting';
    if (fraction !== undefined) document.body.dataset.exportProgress = fraction.toFixed(3);
  }
}

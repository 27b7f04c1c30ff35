import type { LoaderCounts, RenderTiming } from './socket-tile-loader';

function percentile(sorted: number[], f: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))] ?? 0;
}

/**
 * The status strip: connection, tiles requested / rendering / downloading / done, render timing
 * (hover for percentiles), and a debug overlay listing each recent tile's render time.
 */
export class StatusStrip {
  private readonly text: HTMLElement;
  private readonly overlay: HTMLElement;
  private scheduled = false;

  constructor(
    root: HTMLElement,
    overlayRoot: HTMLElement,
    private readonly read: () => { counts: LoaderCounts; timings: RenderTiming[]; shown: string | undefined; complete: boolean; loading: string | undefined; following: boolean },
  ) {
    this.text = document.createElement('span');
    this.text.className = 'status-text';
    const debug = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.className = 'debug-toggle';
    box.addEventListener('change', () => {
      overlayRoot.hidden = !box.checked;
      this.update();
    });
    debug.append(box, ' render timing');
    root.append(this.text, debug);
    this.overlay = overlayRoot;
    this.overlay.hidden = true;
  }

  /** Coalesces bursts of changes into one repaint per frame. */
  update(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.paint();
    });
  }

  private paint(): void {
    const { counts, timings, shown, complete, loading, following } = this.read();
    const ms = timings.map((t) => t.renderMs).sort((a, b) => a - b);
    const last = timings[timings.length - 1];
    // `following`: a change drawn on the GPU that the server's picture has not caught up with yet.
    const busy = counts.requested + counts.rendering + counts.downloading > 0 || loading !== undefined || following;
    document.body.dataset.shown = shown ?? '';
    document.body.dataset.loading = loading ?? '';
    document.body.dataset.busy = String(busy);
    // What a test (or a curious user) can wait on: the picture on screen is complete.
    document.body.dataset.complete = String(complete && loading === undefined);
    document.body.dataset.tilesDone = String(counts.done);
    this.text.textContent =
      `${counts.connected ? 'socket ●' : 'socket ○ (HTTP)'}  pending ${counts.requested}  rendering ${counts.rendering}  ` +
      `loading ${counts.downloading}  done ${counts.done}` +
      (counts.viaHttp ? `  via HTTP ${counts.viaHttp}` : '') +
      (counts.failed ? `  failed ${counts.failed}` : '') +
      (last ? `  last render ${last.renderMs.toFixed(1)} ms` : '');
    this.text.title = ms.length
      ? `render time over the last ${ms.length} rendered tiles: p50 ${percentile(ms, 0.5).toFixed(1)} ms, p95 ${percentile(ms, 0.95).toFixed(1)} ms, max ${(ms[ms.length - 1] ?? 0).toFixed(1)} ms`
      : 'no tile rendered for this page yet (all came from storage)';
    if (this.overlay.hidden) return;
    const rows = timings
      .slice(-40)
      .reverse()
      .map((t) => `L${t.ref.level} z${t.ref.z} t${t.ref.t} (${t.ref.x},${t.ref.y})  ${t.renderMs.toFixed(1)} ms`);
    this.overlay.textContent = [`render time per tile (newest first)`, `p50 ${percentile(ms, 0.5).toFixed(1)} ms  p95 ${percentile(ms, 0.95).toFixed(1)} ms`, ...rows].join('\n');
  }
}

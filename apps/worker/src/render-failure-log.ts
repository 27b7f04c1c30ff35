import type { Logger } from '@tilefarm/telemetry';

/** One render that failed for good, as the worker logs it. */
export interface RenderFailure {
  dataset: string | undefined;
  code: string;
  key: string | undefined;
  jobId: string | undefined;
  err: unknown;
}

interface Window {
  /** What the summary names (the first failure itself, with its error, is not kept for the window). */
  dataset: string | undefined;
  code: string;
  more: number;
  timer: NodeJS.Timeout;
}

/**
 * The worker's "render failed" warnings. Of each kind (dataset and error code) the first failure
 * in a window is logged in full and the others only counted; when the window ends, one line says
 * how many more there were. Why: a dataset whose chunks went missing fails every tile viewers ask
 * of it, thousands a second while they scroll, and a warning with its stack for each was megabytes
 * of log a second. Each failure still reaches whoever waits for the tile (tile:failed) and the
 * render failures counter.
 */
export class RenderFailureLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly windowMs = 60_000,
  ) {}

  failed(failure: RenderFailure): void {
    const kind = `${failure.dataset ?? ''}\n${failure.code}`;
    const open = this.windows.get(kind);
    if (open) {
      open.more++;
      return;
    }
    const { dataset, key, jobId, code, err } = failure;
    this.logger.warn({ dataset, key, jobId, code, err }, 'render failed');
    const timer = setTimeout(() => this.close(kind), this.windowMs);
    timer.unref();
    this.windows.set(kind, { dataset, code, more: 0, timer });
  }

  /** Says now what is still only counted (a worker stopping). */
  flush(): void {
    for (const kind of [...this.windows.keys()]) this.close(kind);
  }

  private close(kind: string): void {
    const window = this.windows.get(kind);
    if (!window) return;
    clearTimeout(window.timer);
    this.windows.delete(kind);
    if (window.more === 0) return;
    const { dataset, code } = window;
    this.logger.warn({ dataset, code, more: window.more, windowS: this.windowMs / 1000 }, `render failed ${window.more} more times with this code, not logged one by one`);
  }
}

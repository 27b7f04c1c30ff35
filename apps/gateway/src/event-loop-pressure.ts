import { performance } from 'node:perf_hooks';

/**
 * How busy this process's event loop has been lately: the share of the last window it spent
 * running code rather than waiting (Node's event-loop utilization), sampled every `windowMs`.
 * The gateway sheds prefetch by it (ViewerTilesDeps.busy) before its health checks and explicit
 * tile requests queue behind a flood.
 */
export class EventLoopPressure {
  private last = performance.eventLoopUtilization();
  private utilization = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(windowMs = 250) {
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.utilization = performance.eventLoopUtilization(now, this.last).utilization;
      this.last = now;
    }, windowMs);
    this.timer.unref();
  }

  /** Utilization of the last full window, 0-1. */
  get current(): number {
    return this.utilization;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

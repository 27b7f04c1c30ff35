import {
  TilesCancel,
  TilesRequest,
  TilefarmError,
  Viewport,
  describeZodError,
  isTilefarmError,
  isUnavailableError,
  type AckError,
  type TilesRequestAck,
} from '@tilefarm/contracts';
import { ViewerTiles, type ViewerTilesDeps, type ViewerCounters } from '@tilefarm/tile-requests';
import type { GatewayMetrics } from '@tilefarm/telemetry';

/** Everything a session needs: the tile-request service's per-viewer dependencies. */
export type SessionDeps = ViewerTilesDeps;

/** Validation and expected failures become an acknowledgement, never a thrown error or a dropped socket. */
export function ackError(e: unknown): AckError {
  const error = isTilefarmError(e) ? e : new TilefarmError(isUnavailableError(e) ? 'unavailable' : 'internal');
  return { ok: false, error: { code: error.code, message: error.message } };
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new TilefarmError('bad_request', describeZodError(r.error));
  return r.data;
}

/** A viewer's tile counts in the gateway's Prometheus metrics. */
export function viewerCounters(metrics: GatewayMetrics): ViewerCounters {
  return {
    requested: (n) => metrics.tilesRequested.inc(n),
    stored: (n) => metrics.cacheHits.inc(n),
    coalesced: (n) => metrics.coalesced.inc(n),
    withdrawn: (n) => metrics.cancelled.inc(n),
    notified: (event) => metrics.notifications.inc({ event }),
  };
}

/**
 * One viewer's socket: payloads checked against the contracts' schemas, then handed to the
 * tile-request service's ViewerTiles, which holds every rule (priorities, budget, shedding, delivery once).
 */
export class ViewerSession {
  private readonly tiles: ViewerTiles;

  constructor(deps: SessionDeps) {
    this.tiles = new ViewerTiles(deps);
  }

  get pendingCount(): number {
    return this.tiles.pendingCount;
  }

  async request(raw: unknown): Promise<TilesRequestAck> {
    return this.tiles.request(parse(TilesRequest, raw));
  }

  async cancel(raw: unknown): Promise<void> {
    await this.tiles.cancel(parse(TilesCancel, raw).keys);
  }

  async viewport(raw: unknown): Promise<void> {
    await this.tiles.viewport(parse(Viewport, raw));
  }

  /** The socket is gone: everything it waited for is released (and withdrawn if nobody else wants it). */
  async close(): Promise<void> {
    await this.tiles.close();
  }
}

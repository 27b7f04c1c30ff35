import { z } from 'zod';
import { DatasetId, ImageFormat, SpecId, TileAddress, TilePosition } from './tile';
import { RenderSpec } from './render-spec';
import type { ErrorCode } from './errors';

/** Socket.IO protocol version; the client sends it in its handshake `auth.protocol`. */
export const SOCKET_PROTOCOL = 1;
export const MAX_TILES_PER_REQUEST = 1024;

/** A spec by id (from POST /v1/specs) or inline; inline specs are hashed to the same id. */
export const SpecRef = z.union([SpecId, RenderSpec]);
export type SpecRef = z.infer<typeof SpecRef>;

export const RequestedTile = TilePosition.extend({ format: ImageFormat.optional() });

export const TilesRequest = z
  .object({
    dataset: DatasetId,
    spec: SpecRef,
    tiles: z.array(RequestedTile).min(1).max(MAX_TILES_PER_REQUEST),
  })
  .strict();
export type TilesRequest = z.infer<typeof TilesRequest>;

export const TilesCancel = z.object({ keys: z.array(z.string().max(512)).max(MAX_TILES_PER_REQUEST * 4) }).strict();
export type TilesCancel = z.infer<typeof TilesCancel>;

/** A rectangle of tiles, inclusive, on one plane (z, t) of one level: what a screen shows. */
export const TileRect = z.object({
  level: z.number().int().min(0).max(30),
  z: z.number().int().min(0),
  t: z.number().int().min(0),
  x0: z.number().int().min(0),
  y0: z.number().int().min(0),
  x1: z.number().int().min(0),
  y1: z.number().int().min(0),
});
export type TileRect = z.infer<typeof TileRect>;

/** What a viewer is looking at: a tile rectangle of a dataset rendered with a spec. */
export const Viewport = TileRect.extend({ dataset: DatasetId, spec: SpecRef, format: ImageFormat.optional() }).strict();
export type Viewport = z.infer<typeof Viewport>;

export const IngestWatch = z.object({ jobId: z.string().min(1).max(200) }).strict();

export interface ReadyTile {
  key: string;
  tile: TileAddress;
  url: string;
}
export interface PendingTile {
  key: string;
  tile: TileAddress;
}
export interface AckError {
  ok: false;
  error: { code: ErrorCode; message: string };
}
export type TilesRequestAck =
  | {
      ok: true;
      specId: string;
      ready: ReadyTile[];
      pending: PendingTile[];
      /** Tiles refused because the viewer is over its in-flight budget or the system sheds load. */
      rejected: PendingTile[];
    }
  | AckError;
export type SimpleAck = { ok: true } | AckError;

export interface TileReadyEvent {
  key: string;
  dataset: string;
  spec: string;
  tile: TileAddress;
  url: string;
  renderMs?: number;
}
export interface TileFailedEvent {
  key: string;
  tile: TileAddress;
  code: string;
  message: string;
}
export interface TileQueuedEvent {
  key: string;
  /** Jobs waiting ahead in the queue when it was enqueued (an estimate). */
  position: number;
}
export interface BudgetExceededEvent {
  limit: number;
  inFlight: number;
  rejected: number;
}
export interface LoadShedEvent {
  reason: string;
  rejected: number;
}
export interface IngestProgressEvent {
  jobId: string;
  dataset: string;
  /** Source tiles written so far, of `total` (0 while the file is being planned). */
  done: number;
  total: number;
  state: 'running' | 'completed' | 'failed';
  /** The dataset version being written (known once planned). */
  version?: number;
  /** Error-table code when `state` is failed. */
  code?: string;
  message?: string;
}

/** The one typed map of socket events, both directions. */
export interface ClientToServerEvents {
  'tiles:request': (payload: unknown, ack: (answer: TilesRequestAck) => void) => void;
  'tiles:cancel': (payload: unknown, ack?: (answer: SimpleAck) => void) => void;
  viewport: (payload: unknown, ack?: (answer: SimpleAck) => void) => void;
  'ingest:watch': (payload: unknown, ack?: (answer: SimpleAck) => void) => void;
}
export interface ServerToClientEvents {
  'tile:ready': (event: TileReadyEvent) => void;
  'tile:failed': (event: TileFailedEvent) => void;
  'tile:queued': (event: TileQueuedEvent) => void;
  'budget:exceeded': (event: BudgetExceededEvent) => void;
  'load:shed': (event: LoadShedEvent) => void;
  'ingest:progress': (event: IngestProgressEvent) => void;
}

import { Router, type Request, type Response } from 'express';
import { IMAGE_FORMATS, MIME_TYPES, TilefarmError, type ImageFormat } from '@tilefarm/contracts';
import type { ObjectStore } from '@tilefarm/storage';
import { etagOf, type TileAnswer, type TileService } from '../tile-service';
import { requesterOf } from '../access';

const INT = /^(0|[1-9][0-9]{0,6})$/;
export const IMMUTABLE = 'public, max-age=31536000, immutable';

function intParam(req: Request, name: string): number {
  const raw = String(req.params[name] ?? '');
  if (!INT.test(raw)) throw new TilefarmError('invalid_tile', `${name}: "${raw.slice(0, 20)}" is not a non-negative integer`);
  return Number(raw);
}

function parseYAndFormat(raw: string): { y: number; format: ImageFormat } {
  const dot = raw.lastIndexOf('.');
  if (dot < 0) throw new TilefarmError('unknown_format', 'the tile path must end in .jpeg, .png or .webp');
  const ext = raw.slice(dot + 1).toLowerCase();
  const format = (ext === 'jpg' ? 'jpeg' : ext) as ImageFormat;
  if (!IMAGE_FORMATS.includes(format)) throw new TilefarmError('unknown_format', `format "${ext.slice(0, 10)}" is not one of jpeg, png, webp`);
  const y = raw.slice(0, dot);
  if (!INT.test(y)) throw new TilefarmError('invalid_tile', `y: "${y.slice(0, 20)}" is not a non-negative integer`);
  return { y: Number(y), format };
}

export function sendImage(req: Request, res: Response, answer: Extract<TileAnswer, { kind: 'image' }>): void {
  // The address URL follows the dataset's current version; pinned to a version (?v=) it never changes.
  const pinned = req.query.v === String(answer.version);
  res.setHeader('Cache-Control', pinned ? IMMUTABLE : 'public, max-age=60, must-revalidate');
  res.setHeader('ETag', answer.etag);
  res.setHeader('X-Tile-Key', answer.key);
  if (req.headers['if-none-match'] === answer.etag) {
    res.status(304).end();
    return;
  }
  res.type(answer.contentType).send(answer.body);
}

export function tileRoutes(tiles: TileService): Router {
  const router = Router();

  router.get('/v1/tiles/:dataset/:spec/:level/:z/:t/:x/:yf', async (req, res) => {
    const { y, format } = parseYAndFormat(String(req.params.yf));
    const position = { level: intParam(req, 'level'), z: intParam(req, 'z'), t: intParam(req, 't'), x: intParam(req, 'x'), y, format };
    const wait = req.query.wait !== '0';
    const answer = await tiles.get(String(req.params.dataset), String(req.params.spec), position, wait, requesterOf(res));
    if (answer.kind === 'pending') {
      res.status(202).json({ key: answer.key, state: 'pending', url: answer.url });
      return;
    }
    sendImage(req, res, answer);
  });

  return router;
}

/** Stored tiles by content key: what `tile:ready` URLs point at. */
export const STORED_TILE_PATH = /^\/tiles\/(.+)$/;

/**
 * GET /tiles/<key>. Immutable, so CDNs cache them forever. Registered in app.ts right after access
 * control, ahead of every other router: it is the most frequent request (one per delivered tile)
 * and no earlier router can match a /tiles/ path, so walking them was pure cost.
 */
export function storedTile(store: ObjectStore): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    const key = `tiles/${(req.params as Record<string, string>)[0] ?? ''}`;
    const ext = key.slice(key.lastIndexOf('.') + 1) as ImageFormat;
    if (!IMAGE_FORMATS.includes(ext) || key.includes('..')) throw new TilefarmError('not_found', 'no such tile');
    const etag = etagOf(key);
    if (req.headers['if-none-match'] === etag) {
      res.status(304).end();
      return;
    }
    const body = await store.get(key);
    if (!body) throw new TilefarmError('not_found', 'no such tile (not rendered yet, or evicted)');
    res.setHeader('Cache-Control', IMMUTABLE);
    res.setHeader('ETag', etag);
    res.type(MIME_TYPES[ext]).send(body);
  };
}

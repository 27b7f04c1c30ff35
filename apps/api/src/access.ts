import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { DATASET_ID_PATTERN, TilefarmError, type DatasetManifest } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import { EXPIRY_PARAM, SIGNATURE_PARAM, datasetAccessFor, mayAccess, type AccessTokens, type DatasetAccess, type Principal, type TileUrlSigner } from '@tilefarm/tile-requests';

export interface AccessRules {
  tokens: AccessTokens;
  signer: TileUrlSigner;
  catalog: DatasetCatalog;
}

const OPEN: Principal = { kind: 'open' };

/**
 * helmet's headers. The CSP lets the viewer reach the gateway and tile URLs on other origins
 * (a CDN, a bucket); tiles are meant to be embedded cross-origin (CORP cross-origin). The queue
 * dashboard is bull-board's page with its own inline bootstrapping, so it gets no CSP.
 */
export function securityHeaders(): RequestHandler {
  const { withCsp, withoutCsp } = securityHeaderSets();
  return (req, res, next) => (req.path.startsWith('/admin/') ? withoutCsp : withCsp)(req, res, next);
}

/** A middleware that only sets headers, on Node's own request and response (no Express needed). */
export type HeaderSetter = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** helmet's two header sets: for every path (withCsp), and for the queue dashboard under /admin/. */
export function securityHeaderSets(): { withCsp: HeaderSetter; withoutCsp: HeaderSetter } {
  const common = { crossOriginResourcePolicy: { policy: 'cross-origin' as const }, crossOriginEmbedderPolicy: false };
  const withCsp = helmet({
    ...common,
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        'connect-src': ["'self'", 'http:', 'https:', 'ws:', 'wss:'],
        'img-src': ["'self'", 'data:', 'blob:', 'http:', 'https:'],
        'worker-src': ["'self'", 'blob:'],
        'upgrade-insecure-requests': null, // plain-http lab deployments must keep working
      },
    },
  });
  const withoutCsp = helmet({ ...common, contentSecurityPolicy: false });
  return { withCsp, withoutCsp };
}

/** What the access rules look at in a request: Express's, or the stored-tile door's (stored-tile-door.ts). */
export interface AccessRequest {
  method: string;
  /** The URL's path, not decoded (Express's req.path). */
  path: string;
  /** The query string parsed as Express parses it (node:querystring). */
  query: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

/** `Authorization: Bearer <token>`, or `?access_token=` for clients that cannot set headers (<img>). */
function presentedToken(req: AccessRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  const q = req.query.access_token;
  return typeof q === 'string' ? q : undefined;
}

/** The dataset a path is about, if any: every route that names one, in one place (case as given). */
function datasetInPath(path: string): string | undefined {
  const m =
    /^\/v1\/datasets\/([^/]+)(?:\/stats|\/catmaid|\/settings(?:\/[^/]+)?)?\/?$/i.exec(path) ??
    /^\/v1\/tiles\/([^/]+)\//i.exec(path) ??
    /^\/webgateway\/(?:render_image|render_image_region|render_thumbnail|render_birds_eye_view|imgData|histogram_json)\/([^/]+)/i.exec(path) ??
    /^\/tiles\/[^/]+\/([^/]+)\//i.exec(path) ??
    // Protocol identifiers carry the dataset first: IIIF `{dataset}~{spec}~z{n}`, DZI `{name}.dzi` / `{name}_files`.
    /^\/iiif\/3\/([^/]+)/i.exec(path) ??
    /^\/dzi\/([^/]+?)(?:\.dzi|_files)(?:\/|$)/i.exec(path) ??
    /^\/catmaid\/([^/]+)/i.exec(path) ??
    /^\/zarr\/([^/]+)\.zarr(?:\/|$)/i.exec(path);
  if (!m) return undefined;
  try {
    const id = decodeURIComponent(m[1]!);
    // Only IIIF and DZI names carry `~` parts after the dataset; anywhere else the whole segment is the id.
    return /^\/(?:iiif|dzi)\//i.test(path) ? id.split('~')[0]! : id;
  } catch {
    return '\u0000'; // undecodable: not a dataset id
  }
}

/**
 * The only shapes a stored tile's path can have (see tileKey: the spec and the address one name
 * since session 8, `{specId}/l...` before it, still served); anything else is not a tile.
 */
export const TILE_PATH = /^\/tiles\/[0-9a-f]{2}\/[a-z0-9][a-z0-9_-]{0,63}\/v[1-9][0-9]{0,8}\/s[0-9a-f]{16}[-/]l[0-9]{1,2}-z[0-9]{1,7}-t[0-9]{1,7}-x[0-9]{1,7}-y[0-9]{1,7}\.(?:jpeg|png|webp)$/;

/** Image protocols for other viewers (IIIF, Deep Zoom, CATMAID, OMERO.web): token-checked like /v1. */
const PROTOCOL_PREFIXES = ['/webgateway/', '/iiif/', '/dzi/', '/catmaid/', '/zarr/'];

function isGuarded(path: string): boolean {
  return (path.startsWith('/v1/') && path !== '/v1/config') || path.startsWith('/tiles/') || PROTOCOL_PREFIXES.some((p) => path.startsWith(p));
}

function isTilePath(path: string): boolean {
  return path.startsWith('/v1/tiles/') || path.startsWith('/tiles/');
}

/** The OME-Zarr view root a /zarr/ path lies under, as given (its signature covers every key under it). */
function zarrRootOf(path: string): string | undefined {
  return /^(\/zarr\/[^/]+\.zarr)(?:\/|$)/i.exec(path)?.[1];
}

/**
 * Who may do what, before any route runs:
 * - signing on: tile paths need a valid signature (a signed URL is itself the permission; it was
 *   issued after an access-checked request), anything else 403 `invalid_signature`;
 * - tokens on: every other API path needs a valid token (401), and may only touch datasets of the
 *   token's tenant or `public` ones; another tenant's dataset is answered exactly like a missing
 *   one (404), so ids do not leak either;
 * - spec creation needs a token whenever signing is on (a public deployment cannot be made to
 *   render arbitrary formulas);
 * - dataset ids in paths are checked for shape here, so no route sees a malformed one.
 */
export function accessControl(rules: AccessRules): RequestHandler {
  return async (req, res, next) => {
    const principal = await checkAccess(rules, req);
    if (principal) res.locals.principal = principal;
    next();
  };
}

/**
 * The rules of accessControl for one request: its principal, `undefined` on a path they do not
 * guard, or a thrown TilefarmError (the answer).
 */
export async function checkAccess(rules: AccessRules, req: AccessRequest): Promise<Principal | undefined> {
  // Express matches routes case-insensitively and tolerates a trailing slash: so do these checks.
  const path = req.path.toLowerCase().replace(/(.)\/+$/, '$1');
  if (!isGuarded(path)) return undefined;
  if (path.startsWith('/tiles/') && !TILE_PATH.test(req.path)) throw new TilefarmError('not_found', 'no such tile');
  const dataset = datasetInPath(req.path);
  // DatasetId's own pattern, without the schema walk (this runs on every tile GET).
  if (dataset !== undefined && !DATASET_ID_PATTERN.test(dataset)) {
    throw new TilefarmError(path.startsWith('/tiles/') ? 'not_found' : 'dataset_not_found', 'no such dataset');
  }
  // Worded as the catalog words a missing one, so the body does not tell the two apart either.
  const missing = () => (path.startsWith('/tiles/') ? new TilefarmError('not_found', 'no such dataset') : new TilefarmError('dataset_not_found', `no dataset "${dataset}"`));
  let principal: Principal;
  const zarrRoot = zarrRootOf(req.path);
  if ((isTilePath(path) || zarrRoot !== undefined) && rules.signer.enabled) {
    // Raw pixels are signed like tiles, by view root: issued by POST /v1/zarr-urls after a tenant check.
    if (!rules.signer.verify(zarrRoot ?? req.path, req.query[SIGNATURE_PARAM], req.query[EXPIRY_PARAM])) throw new TilefarmError('invalid_signature');
    principal = OPEN;
  } else {
    const found = rules.tokens.authenticate(presentedToken(req));
    if (!found) throw new TilefarmError('unauthorized');
    if (rules.signer.enabled && found.kind === 'open' && req.method === 'POST' && path === '/v1/specs') {
      throw new TilefarmError('unauthorized', 'creating render specs needs an access token when tile URLs are signed');
    }
    if (rules.signer.enabled && found.kind === 'open' && req.method === 'POST' && (path === '/v1/tile-urls' || path === '/v1/zarr-urls')) {
      throw new TilefarmError('unauthorized', 'signing tile URLs needs an access token');
    }
    principal = found;
  }
  // Writes (POST /v1/datasets) are judged by the ingest route: ownership, after the input.
  if (principal.kind === 'tenant' && dataset !== undefined) {
    const manifest = await rules.catalog.find(dataset);
    if (manifest && !mayAccess(principal, manifest)) throw missing();
  }
  return principal;
}

/** The principal `accessControl` found for this request (open when the route is not guarded). */
export function principalOf(res: Response): Principal {
  return (res.locals.principal as Principal | undefined) ?? OPEN;
}

/** Who this request's tiles are charged to in the workers' fair share: the token's tenant, if any. */
export function requesterOf(res: Response): { tenant?: string } {
  const principal = principalOf(res);
  return principal.kind === 'tenant' ? { tenant: principal.tenant } : {};
}

/** Whether this request's principal may see a dataset (the list filter). */
export function visibleTo(res: Response, manifest: Pick<DatasetManifest, 'tenant'>): boolean {
  return mayAccess(principalOf(res), manifest);
}

/** The planner's access callback for this request. */
export function datasetAccessOf(res: Response): DatasetAccess | undefined {
  return datasetAccessFor(principalOf(res));
}

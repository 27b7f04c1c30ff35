import { createServer, request, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DatasetCatalog, tileKey } from '@tilefarm/datasets';
import { AccessTokens, TileUrlSigner } from '@tilefarm/tile-requests';
import { createApiMetrics, createLogger, createRegistry } from '@tilefarm/telemetry';
import { buildApp, buildRequestListener, type ApiDeps } from '../src/app';
import { DATASET, MemoryObjectStore } from '../../../packages/tile-requests/test/support/fakes';

// The stored-tile door answers GET/HEAD /tiles/<key> ahead of Express: every request here goes to
// the app alone and to the door in front of the app, and the answers must be the same (status,
// headers but Date, body), under every access and CORS setting; the door must answer the happy
// cases itself (not hand everything to the app).

const ALPHA = { ...DATASET, id: 'alpha-cells', name: 'alpha', tenant: 'alpha' };
const BETA = { ...DATASET, id: 'beta-cells', name: 'beta', tenant: 'beta' };
const SPEC_ID = 's0123456789abcdef';
const tile = (dataset: string, x: number, format: 'png' | 'jpeg' = 'png') => `/${tileKey(dataset, 1, SPEC_ID, { level: 0, z: 0, t: 0, x, y: 0, format })}`;
const TOKENS = 'alpha-token-0000000000:alpha,beta-token-00000000000:beta';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...rest } = res.headers;
        resolve({ status: res.statusCode ?? 0, headers: rest, body: Buffer.concat(chunks).toString('latin1') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(listener: RequestListener): Promise<{ server: Server; port: number }> {
  const server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

interface Setup {
  name: string;
  tokens?: string;
  signingKeys?: string;
  cors: '*' | string[];
}

describe.each<Setup>([
  { name: 'open, CORS *', cors: '*' },
  { name: 'tokens, CORS for one origin', tokens: TOKENS, cors: ['http://viewer.example'] },
  { name: 'signed URLs, tokens, no CORS', tokens: TOKENS, signingKeys: 'key-one-0000000000000000,key-two', cors: [] },
])('stored-tile door ($name)', (setup) => {
  const servers: Server[] = [];
  let appPort = 0;
  let doorPort = 0;
  let handedOn = 0;
  const signer = TileUrlSigner.parse(setup.signingKeys, { ttlSeconds: 3600 });
  const signed = (path: string) => signer.url('', path);

  beforeAll(async () => {
    const store = new MemoryObjectStore();
    const catalog = new DatasetCatalog(store, 0);
    for (const d of [DATASET, ALPHA, BETA]) await catalog.publish(d, { v: 1, dataset: d.id, version: d.version, planes: [] });
    for (const d of [DATASET.id, ALPHA.id, BETA.id]) for (const x of [0, 1]) await store.put(tile(d, x).slice(1), Buffer.from(`pixels of ${d} ${x}`));
    await store.put(tile(DATASET.id, 2, 'jpeg').slice(1), Buffer.from('jpeg pixels'));
    const registry = createRegistry('api');
    const unused = {} as never;
    const deps: ApiDeps = {
      logger: createLogger('api', 'silent'),
      registry,
      metrics: createApiMetrics(registry),
      redis: unused,
      store,
      catalog,
      specs: unused,
      planner: unused,
      tiles: unused,
      gateway: { publicUrl: undefined, port: 0 },
      isStopping: () => false,
      access: { tokens: AccessTokens.parse(setup.tokens), signer, catalog },
      corsOrigins: setup.cors,
      publicUrl: 'http://localhost',
    };
    const app = buildApp(deps);
    const a = await listen(app);
    const d = await listen(
      buildRequestListener(deps, (req, res) => {
        handedOn++;
        app(req, res);
      }),
    );
    servers.push(a.server, d.server);
    appPort = a.port;
    doorPort = d.port;
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  /** Same answer from the app and from the door; returns it. */
  async function same(method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
    const viaApp = await send(appPort, method, path, headers);
    const viaDoor = await send(doorPort, method, path, headers);
    if (viaApp.status === 304 && viaDoor.status === 304) {
      // A 304 for an exact If-None-Match carried no ETag or Cache-Control through the app; the door sends them (RFC 9110 15.4.5), and otherwise the same.
      expect({ ...viaDoor, headers: { ...viaDoor.headers, etag: undefined, 'cache-control': undefined } }).toEqual({ ...viaApp, headers: { ...viaApp.headers, etag: undefined, 'cache-control': undefined } });
      expect(viaDoor.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(viaDoor.headers.etag).toMatch(/^"[0-9a-f]{20}"$/);
    } else {
      expect([method, path, headers, viaDoor]).toEqual([method, path, headers, viaApp]);
    }
    return viaDoor;
  }

  const alphaAuth: Record<string, string> = setup.tokens ? { authorization: 'Bearer alpha-token-0000000000' } : {};
  const url = (path: string) => (setup.signingKeys ? signed(path) : path);

  it('answers a stored tile itself, with the app’s status, headers and body (GET, HEAD, any origin)', async () => {
    const before = handedOn;
    for (const path of [tile(DATASET.id, 0), tile(DATASET.id, 2, 'jpeg'), tile(ALPHA.id, 1)]) {
      for (const method of ['GET', 'HEAD']) {
        for (const origin of [{}, { origin: 'http://viewer.example' }, { origin: 'http://elsewhere.example' }] as Array<Record<string, string>>) {
          const a = await same(method, url(path), { ...alphaAuth, ...origin });
          expect(a.status).toBe(200);
        }
      }
    }
    const viaDoor = await send(doorPort, 'GET', url(tile(DATASET.id, 0)), alphaAuth);
    expect([viaDoor.headers['content-type'], viaDoor.headers['cache-control'], viaDoor.body]).toEqual(['image/png', 'public, max-age=31536000, immutable', `pixels of ${DATASET.id} 0`]);
    expect(handedOn).toBe(before);
  });

  it('answers conditional requests as Express’s res.send does (304 for a held ETag, 200 otherwise)', async () => {
    const path = url(tile(DATASET.id, 1));
    const etag = String((await send(doorPort, 'GET', path, alphaAuth)).headers.etag);
    const cases: Array<[Record<string, string>, number]> = [
      [{ 'if-none-match': etag }, 304],
      [{ 'if-none-match': `"nope", W/${etag}` }, 304],
      [{ 'if-none-match': '*' }, 304],
      [{ 'if-none-match': '"nope"' }, 200],
      [{ 'if-none-match': `"nope", ${etag}`, 'cache-control': 'no-cache' }, 200],
      [{ 'if-none-match': `"x",${etag}`, 'if-modified-since': 'Tue, 01 Dec 2026 00:00:00 GMT' }, 304],
      [{ 'if-modified-since': 'Tue, 01 Dec 2099 00:00:00 GMT' }, 200],
      [{ 'if-none-match': `  ${etag}  ,"y"` }, 304],
    ];
    for (const [headers, status] of cases) {
      expect([headers, (await same('GET', path, { ...alphaAuth, ...headers })).status]).toEqual([headers, status]);
    }
  });

  it('hands everything else to the app: missing tiles, bad shapes, refused access, other methods', async () => {
    const key = tile(DATASET.id, 0);
    const paths = [
      url(tile(DATASET.id, 5)), // not stored
      url(key.toUpperCase()),
      url(key.replace('/tiles/', '/TILES/')),
      url(key.replace('cells', 'alpha-cells/../cells')),
      url(key.replace('cells', 'cell%73')),
      url(`${key}/`),
      url(key.replace('.png', '.gif')),
      url(key) + '#frag',
      '/tiles/',
      '/tiles/ab',
      key, // unsigned when signing is on
      `${key}?sig=AAAA`,
      `${key}?sig=${'A'.repeat(43)}&exp=1`,
      url(tile(BETA.id, 0)), // another tenant's, with alpha's token
    ];
    for (const path of paths) {
      for (const method of ['GET', 'HEAD', 'POST', 'OPTIONS', 'DELETE']) await same(method, path, { ...alphaAuth, origin: 'http://viewer.example', 'access-control-request-method': 'GET' });
    }
    for (const auth of [{}, { authorization: 'Bearer nobody-000000000000000' }, { authorization: 'Bearer beta-token-00000000000' }] as Array<Record<string, string>>) {
      for (const path of [url(tile(ALPHA.id, 0)), url(tile(BETA.id, 1)), url(tile(DATASET.id, 1))]) {
        await same('GET', path, auth);
        await same('GET', `${path}${path.includes('?') ? '&' : '?'}access_token=alpha-token-0000000000`, auth);
      }
    }
  });
});

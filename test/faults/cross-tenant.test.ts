import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as zarr from 'zarrita';
import { io } from 'socket.io-client';
import type { TileReadyEvent } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 7: datasets belong to tenants. A token for tenant alpha tries every way we know to list,
// render, subscribe to or fetch tenant beta's data, over HTTP and over the socket: zero leaks.
// A second system signs tile URLs: unsigned, tampered or transplanted signatures are refused.

const TOKEN_A = 'alpha-token-0123456789abcdef';
const TOKEN_B = 'beta-token-0123456789abcdefgh';
const SMALL = { width: 300, height: 300, sizeZ: 1, tileSize: 256 as const, dtype: 'uint8' as const };
const SPEC = { channels: [{ index: 0, color: '#ffffff', window: [0, 200] }], format: 'png' };

/** Raw HTTP, so paths reach the server exactly as written (fetch would normalize them). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1') }));
    });
    req.on('error', reject);
    req.end();
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('tenants: zero cross-tenant leaks', () => {
  let system: TestSystem;
  let betaKey: string;
  let alphaKey: string;
  let specId: string;

  beforeAll(async () => {
    system = await TestSystem.start({
      workers: 1,
      datasets: [
        { id: 'alpha-cells', tenant: 'alpha', ...SMALL },
        { id: 'beta-cells', tenant: 'beta', ...SMALL },
        { id: 'shared', ...SMALL },
      ],
      env: { ACCESS_TOKENS: `${TOKEN_A}:alpha,${TOKEN_B}:beta` },
    });
    const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(TOKEN_B) }, body: JSON.stringify(SPEC) });
    expect(res.status).toBe(201);
    specId = ((await res.json()) as { id: string }).id;
    // Beta renders its tile; alpha renders its own: both keys now exist in storage.
    const b = await fetch(`${system.apiUrl}/v1/tiles/beta-cells/${specId}/0/0/0/0/0.png`, { headers: bearer(TOKEN_B) });
    expect(b.status).toBe(200);
    betaKey = b.headers.get('x-tile-key')!;
    const a = await fetch(`${system.apiUrl}/v1/tiles/alpha-cells/${specId}/0/0/0/0/0.png`, { headers: bearer(TOKEN_A) });
    expect(a.status).toBe(200);
    alphaKey = a.headers.get('x-tile-key')!;
  }, 120_000);
  afterAll(() => system?.stop());

  it('HTTP: alpha cannot list, read, render or fetch beta; no token gets nothing', async () => {
    const leaks: string[] = [];
    let attempts = 0;
    const refused = async (path: string, headers: Record<string, string>, allowed: number[]) => {
      attempts++;
      const res = await rawGet(system.apiUrl, path, headers);
      if (!allowed.includes(res.status) || res.body.includes('beta-cells') && res.status < 300) leaks.push(`${path} → ${res.status}`);
      expect(res.body).not.toMatch(/\n\s+at |node_modules|\/work\//); // no traces, no internal paths
    };
    const list = (await (await fetch(`${system.apiUrl}/v1/datasets`, { headers: bearer(TOKEN_A) })).json()) as { datasets: Array<{ id: string }> };
    expect(list.datasets.map((d) => d.id).sort()).toEqual(['alpha-cells', 'shared']);
    const betaTilePaths = [
      `/v1/datasets/beta-cells`,
      `/v1/datasets/beta-cells/`,
      `/v1/datasets/beta-cells/stats`,
      `/V1/datasets/beta-cells`,
      `/v1/DATASETS/beta-cells/stats`,
      `/v1/datasets/BETA-CELLS`,
      `/v1/datasets/beta%2Dcells`,
      `/v1/tiles/beta-cells/${specId}/0/0/0/0/0.png`,
      `/v1/tiles/beta-cells/${specId}/0/0/0/0/0.png?wait=0`,
      `/V1/Tiles/beta-cells/${specId}/0/0/0/0/0.png`,
      `/v1/tiles/beta%2dcells/${specId}/0/0/0/0/0.png`,
      `/v1/tiles/beta-cells/${specId}/0/0/0/1/0.png`,
      `/${betaKey}`,
      `/${betaKey.toUpperCase()}`,
      `/${betaKey}?access_token=${TOKEN_A}`,
      `/TILES/${betaKey.slice('tiles/'.length)}`,
      `/tiles/${betaKey.slice('tiles/'.length).replace('beta-cells', 'alpha-cells/../beta-cells')}`,
      `/tiles/${betaKey.slice('tiles/'.length).replace('beta-cells', 'beta%2dcells')}`,
      `/webgateway/render_image_region/beta-cells/0/0/?tile=0,0,0,256,256&c=1|0:200$FFFFFF`,
      `/webgateway/render_image/beta-cells/0/0/`,
      // Other viewers' protocols (issue 12): IIIF, Deep Zoom, CATMAID.
      `/iiif/3/beta-cells/info.json`,
      `/iiif/3/beta-cells`,
      `/iiif/3/beta-cells~${specId}~z0/full/max/0/default.jpg`,
      `/iiif/3/beta-cells/0,0,256,256/256,256/0/default.jpg`,
      `/IIIF/3/beta-cells/info.json`,
      `/iiif/3/beta%2dcells/info.json`,
      `/dzi/beta-cells.dzi`,
      `/dzi/beta-cells~${specId}.dzi`,
      `/dzi/beta-cells_files/9/0_0.jpeg`,
      `/catmaid/beta-cells/0/0_0_0.jpg`,
      `/catmaid/beta-cells/${specId}/0/0_0_0.jpg`,
      `/catmaid/beta-cells/0/small.jpg`,
      `/catmaid/beta-cells/0/0/0/0.jpg?color=red`,
      `/v1/datasets/beta-cells/catmaid`,
      // The OME-Zarr view (issue 13).
      `/zarr/beta-cells.zarr/.zattrs`,
      `/zarr/beta-cells.zarr/.zgroup`,
      `/zarr/beta-cells.zarr/0/.zarray`,
      `/zarr/beta-cells.zarr/0/0/0/0/0/0`,
      `/ZARR/beta-cells.zarr/.zattrs`,
      `/zarr/BETA-CELLS.zarr/.zattrs`,
      `/zarr/beta%2Dcells.zarr/0/0/0/0/0/0`,
      // Saved render settings (issue 14).
      `/v1/datasets/beta-cells/settings`,
      `/v1/datasets/beta-cells/settings/`,
      `/V1/datasets/beta-cells/SETTINGS`,
      `/v1/datasets/beta%2Dcells/settings`,
      `/v1/datasets/BETA-CELLS/settings`,
    ];
    for (const p of betaTilePaths) await refused(p, bearer(TOKEN_A), [400, 404]);
    for (const p of betaTilePaths) await refused(p.replace(/\?access_token=.*/, ''), {}, [401, 400, 404]);
    for (const p of betaTilePaths) await refused(p.replace(/\?access_token=.*/, ''), bearer('not-a-real-token-at-all-0000'), [401, 400, 404]);
    // Without any token, nothing under /v1 answers, and specs cannot be created.
    await refused('/v1/datasets', {}, [401]);
    await refused(`/${alphaKey}`, {}, [401]);
    attempts++;
    const post = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SPEC) });
    if (post.status !== 401) leaks.push(`POST /v1/specs without token → ${post.status}`);
    // Ingest (queued dataset creation) must not take over beta's id.
    attempts++;
    const take = await fetch(`${system.apiUrl}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(TOKEN_A) }, body: JSON.stringify({ id: 'beta-cells', source: 's3://x/y.tif' }) });
    if (take.status < 400) leaks.push(`POST /v1/datasets beta-cells → ${take.status}`);
    // Saved render settings: beta saves a default look; alpha can neither read, overwrite nor
    // delete it, nor set the default look of a public dataset (the operator's), and the 404s say
    // nothing a missing dataset would not.
    const json = { 'content-type': 'application/json' };
    const look = JSON.stringify({ spec: { channels: [{ index: 0, color: '#00ff00', window: [0, 100] }] } });
    const settings = `${system.apiUrl}/v1/datasets/beta-cells/settings`;
    expect((await fetch(`${settings}/default`, { method: 'PUT', headers: { ...json, ...bearer(TOKEN_B) }, body: look })).status).toBe(200);
    const writes: Array<[string, string, Record<string, string>, number[]]> = [
      ['PUT', `${settings}/default`, bearer(TOKEN_A), [404]],
      ['PUT', `${settings}/mine`, bearer(TOKEN_A), [404]],
      ['PUT', `${system.apiUrl}/v1/datasets/BETA-CELLS/settings/default`, bearer(TOKEN_A), [404]],
      ['PUT', `${system.apiUrl}/v1/datasets/beta%2Dcells/settings/default`, bearer(TOKEN_A), [404]],
      ['DELETE', `${settings}/default`, bearer(TOKEN_A), [404]],
      ['DELETE', `${system.apiUrl}/V1/Datasets/beta-cells/settings/default`, bearer(TOKEN_A), [404]],
      ['PUT', `${settings}/default`, {}, [401]],
      ['DELETE', `${settings}/default`, {}, [401]],
      ['PUT', `${settings}/default`, bearer('not-a-real-token-at-all-0000'), [401]],
      ['PUT', `${system.apiUrl}/v1/datasets/shared/settings/default`, bearer(TOKEN_A), [403]],
      ['DELETE', `${system.apiUrl}/v1/datasets/shared/settings/default`, bearer(TOKEN_B), [403]],
    ];
    for (const [method, url, headers, allowed] of writes) {
      attempts++;
      const res = await fetch(url, { method, headers: { ...json, ...headers }, body: method === 'PUT' ? look : undefined });
      const body = await res.text();
      if (!allowed.includes(res.status)) leaks.push(`${method} ${url} → ${res.status}`);
      if (res.status !== 404) continue;
      // The same request for a dataset that does not exist, written the same way, answers the same.
      const nobody = url.replace('beta-cells', 'nobody-set').replace('BETA-CELLS', 'NOBODY-SET').replace('beta%2Dcells', 'nobody%2Dset');
      const missing = await (await fetch(nobody, { method, headers: { ...json, ...headers }, body: method === 'PUT' ? look : undefined })).text();
      if (body.replace(/beta-cells/gi, 'X') !== missing.replace(/nobody-set/gi, 'X')) leaks.push(`${method} ${url}: a 404 unlike a missing dataset's: ${body} / ${missing}`);
    }
    const kept = (await (await fetch(settings, { headers: bearer(TOKEN_B) })).json()) as { settings: Array<{ name: string; spec: { channels: Array<{ color: string }> } }> };
    expect(kept.settings.map((s) => [s.name, s.spec.channels[0]!.color])).toEqual([['default', '#00ff00']]);
    expect((await fetch(`${system.apiUrl}/v1/datasets/shared/settings`, { headers: bearer(TOKEN_A) })).status).toBe(200);
    // Uploads (issue 14): beta's upload, seen from alpha, answers like one that does not exist.
    const betaUpload = (await (await fetch(`${system.apiUrl}/v1/uploads`, { method: 'POST', headers: { ...json, ...bearer(TOKEN_B) }, body: JSON.stringify({ id: 'beta-new', filename: 'b.ome.tif', size: 10 }) })).json()) as { uploadId: string };
    expect(betaUpload.uploadId).toMatch(/^ing-beta-new-/);
    for (const [method, path] of [['GET', ''], ['PUT', '/parts/1'], ['POST', '/complete'], ['DELETE', '']] as const) {
      for (const id of [betaUpload.uploadId, betaUpload.uploadId.toUpperCase(), encodeURIComponent(betaUpload.uploadId).replace('-', '%2D')]) {
        attempts++;
        const res = await fetch(`${system.apiUrl}/v1/uploads/${id}${path}`, { method, headers: { 'content-type': 'application/octet-stream', ...bearer(TOKEN_A) }, body: method === 'PUT' ? new Uint8Array(10) : undefined });
        if (res.status !== 404) leaks.push(`${method} /v1/uploads/${id}${path} → ${res.status}`);
      }
    }
    // Nor can alpha upload into beta's dataset id.
    attempts++;
    const into = await fetch(`${system.apiUrl}/v1/uploads`, { method: 'POST', headers: { ...json, ...bearer(TOKEN_A) }, body: JSON.stringify({ id: 'beta-cells', filename: 'a.ome.tif', size: 10 }) });
    if (into.status !== 409) leaks.push(`POST /v1/uploads into beta-cells → ${into.status}`);
    expect((await fetch(`${system.apiUrl}/v1/uploads/${betaUpload.uploadId}`, { headers: bearer(TOKEN_B) })).status).toBe(200);
    expect((await fetch(`${system.apiUrl}/v1/uploads/${betaUpload.uploadId}`, { method: 'DELETE', headers: bearer(TOKEN_B) })).status).toBe(204);
    // Alpha's own things, and public ones, work (the checks are not just refusing everything).
    expect((await fetch(`${system.apiUrl}/${alphaKey}`, { headers: bearer(TOKEN_A) })).status).toBe(200);
    expect((await fetch(`${system.apiUrl}/${alphaKey}?access_token=${TOKEN_A}`)).status).toBe(200);
    expect((await fetch(`${system.apiUrl}/v1/datasets/shared`, { headers: bearer(TOKEN_A) })).status).toBe(200);
    for (const p of ['/iiif/3/alpha-cells/info.json', '/dzi/alpha-cells.dzi', '/catmaid/alpha-cells/0/0_0_0.jpg', '/v1/datasets/alpha-cells/catmaid', '/iiif/3/shared/0,0,256,256/256,256/0/default.png']) {
      expect([p, (await fetch(`${system.apiUrl}${p}`, { headers: bearer(TOKEN_A) })).status]).toEqual([p, 200]);
    }
    expect((await fetch(`${system.apiUrl}/catmaid/beta-cells/0/0_0_0.jpg`, { headers: bearer(TOKEN_B) })).status).toBe(200);
    expect((await fetch(`${system.apiUrl}/${betaKey}`, { headers: bearer(TOKEN_B) })).status).toBe(200);
    const h = (await fetch(`${system.apiUrl}/healthz`)).headers;
    expect(h.get('x-content-type-options')).toBe('nosniff');
    expect(h.get('content-security-policy')).toContain("default-src 'self'");
    expect(h.get('x-frame-options')).toBe('SAMEORIGIN');
    console.log(`FAULT FIGURES cross-tenant http: ${JSON.stringify({ attempts, leaks: leaks.length })}`);
    expect(leaks).toEqual([]);
  }, 60_000);

  it('socket: no token or a bad one is refused at connection; alpha cannot request, view or hear beta', async () => {
    const refusedWith = async (auth: Record<string, string>) => {
      const s = io(system.gatewayUrl(0), { transports: ['websocket'], forceNew: true, reconnection: false, auth });
      const outcome = await new Promise<string>((resolve) => {
        s.once('connect', () => resolve('connected'));
        s.once('connect_error', (e: Error & { data?: { code?: string } }) => resolve(e.data?.code ?? e.message));
      });
      s.close();
      return outcome;
    };
    expect(await refusedWith({})).toBe('unauthorized');
    expect(await refusedWith({ token: 'not-a-real-token-at-all-0000' })).toBe('unauthorized');
    expect(await refusedWith({ token: TOKEN_A.slice(0, -1) })).toBe('unauthorized');

    const alpha = new TestViewer(system.gatewayUrl(0), { token: TOKEN_A });
    const beta = new TestViewer(system.gatewayUrl(0), { token: TOKEN_B });
    const heardByAlpha: TileReadyEvent[] = [];
    alpha.socket.on('tile:ready', (e) => heardByAlpha.push(e));
    try {
      await Promise.all([alpha.connected(), beta.connected()]);
      let attempts = 0;
      const leaks: string[] = [];
      for (const spec of [specId, SPEC]) {
        for (const tiles of [[{ level: 0, z: 0, t: 0, x: 0, y: 0 }], [{ level: 0, z: 0, t: 0, x: 1, y: 1 }]]) {
          attempts++;
          const ack = await alpha.request({ dataset: 'beta-cells', spec, tiles });
          if (ack.ok || ack.error.code !== 'dataset_not_found') leaks.push(`tiles:request → ${JSON.stringify(ack)}`);
        }
        attempts++;
        const vp = (await alpha.socket.timeout(10_000).emitWithAck('viewport', { dataset: 'beta-cells', spec, level: 0, z: 0, t: 0, x0: 0, y0: 0, x1: 1, y1: 1 })) as { ok: boolean; error?: { code: string } };
        if (vp.ok || vp.error?.code !== 'dataset_not_found') leaks.push(`viewport → ${JSON.stringify(vp)}`);
      }
      // Alpha "cancels" beta's keys (no effect on beta), while beta renders new tiles: alpha hears none of them.
      attempts++;
      await alpha.socket.timeout(10_000).emitWithAck('tiles:cancel', { keys: [betaKey] });
      const spec2 = { ...SPEC, channels: [{ index: 0, color: '#ff00ff', window: [0, 180] }] };
      const mine = await beta.request({ dataset: 'beta-cells', spec: spec2, tiles: [{ level: 0, z: 0, t: 0, x: 1, y: 0 }, { level: 0, z: 0, t: 0, x: 0, y: 1 }, { level: 1, z: 0, t: 0, x: 0, y: 0 }] });
      expect(mine.ok).toBe(true);
      if (mine.ok) await beta.waitFor([...mine.ready, ...mine.pending].map((t) => t.key), 30_000);
      expect(beta.failed.size).toBe(0);
      // Alpha's own dataset works on the same gateway.
      const own = await alpha.request({ dataset: 'alpha-cells', spec: spec2, tiles: [{ level: 0, z: 0, t: 0, x: 1, y: 1 }] });
      expect(own.ok).toBe(true);
      if (own.ok) await alpha.waitFor([...own.ready, ...own.pending].map((t) => t.key), 30_000);
      const heardBeta = heardByAlpha.filter((e) => e.dataset === 'beta-cells' || e.key.includes('/beta-cells/'));
      leaks.push(...heardBeta.map((e) => `alpha heard ${e.key}`));
      leaks.push(...[...alpha.delivered.keys()].filter((k) => k.includes('/beta-cells/')).map((k) => `alpha got ${k}`));
      console.log(`FAULT FIGURES cross-tenant socket: ${JSON.stringify({ attempts: attempts + 3, leaks: leaks.length })}`);
      expect(leaks).toEqual([]);
    } finally {
      alpha.close();
      beta.close();
    }
  }, 60_000);
});

describe('signed tile URLs', () => {
  const KEY_NEW = 'new-signing-key-0123456789abcdef0123';
  const KEY_OLD = 'old-signing-key-0123456789abcdef0123';
  let system: TestSystem;

  beforeAll(async () => {
    system = await TestSystem.start({
      workers: 1,
      datasets: [{ id: 'alpha-cells', tenant: 'alpha', ...SMALL }, { id: 'beta-cells', tenant: 'beta', ...SMALL }],
      env: { ACCESS_TOKENS: `${TOKEN_A}:alpha,${TOKEN_B}:beta`, URL_SIGNING_KEYS: `${KEY_NEW},${KEY_OLD}` },
    });
  }, 120_000);
  afterAll(() => system?.stop());

  it('announces signed URLs; refuses unsigned, tampered and transplanted signatures with 403', async () => {
    const viewer = new TestViewer(system.gatewayUrl(0), { token: TOKEN_A });
    try {
      await viewer.connected();
      const ack = await viewer.request({ dataset: 'alpha-cells', spec: SPEC, tiles: [{ level: 0, z: 0, t: 0, x: 0, y: 0 }, { level: 0, z: 0, t: 0, x: 1, y: 0 }] });
      if (!ack.ok) throw new Error(JSON.stringify(ack.error));
      const keys = [...ack.ready, ...ack.pending].map((t) => t.key);
      await viewer.waitFor(keys, 30_000);
      const url = viewer.delivered.get(keys[0]!)!;
      expect(url).toMatch(/\?sig=[A-Za-z0-9_-]{43}$/);
      expect((await fetch(url)).status).toBe(200); // no token needed: the signature is the permission
      const u = new URL(url);
      const other = new URL(viewer.delivered.get(keys[1]!)!);
      const sig = u.searchParams.get('sig')!;
      const tampered = sig.slice(0, -2) + (sig.endsWith('AA') ? 'BB' : 'AA');
      const cases = [
        { path: u.pathname, headers: bearer(TOKEN_A) }, // unsigned, even with a token
        { path: `${u.pathname}?sig=${tampered}`, headers: {} },
        { path: `${other.pathname}?sig=${sig}`, headers: {} }, // a signature moved to another tile
        { path: `${u.pathname.replace('alpha-cells', 'beta-cells')}?sig=${sig}`, headers: {} },
        { path: `${u.pathname}?sig=`, headers: {} },
        { path: `/v1/tiles/alpha-cells/s0000000000000000/0/0/0/0/0.png`, headers: bearer(TOKEN_A) },
      ];
      for (const c of cases) {
        const res = await rawGet(system.apiUrl, c.path, c.headers);
        expect([c.path, res.status, JSON.parse(res.body).error.code]).toEqual([c.path, 403, 'invalid_signature']);
      }
      // Spec creation needs a token.
      const post = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SPEC) });
      expect(post.status).toBe(401);
    } finally {
      viewer.close();
    }
  }, 60_000);

  it('signs /v1/tiles address URLs for token holders (POST /v1/tile-urls), within their tenant only (issue 11 item 10)', async () => {
    const json = { 'content-type': 'application/json' };
    const spec = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { ...json, ...bearer(TOKEN_A) }, body: JSON.stringify(SPEC) });
    const specId = ((await spec.json()) as { id: string }).id;
    const path = `/v1/tiles/alpha-cells/${specId}/0/0/0/0/0.png`;
    const sign = (paths: unknown, headers: Record<string, string>) => fetch(`${system.apiUrl}/v1/tile-urls`, { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify({ paths }) });
    const signed = await sign([path, path.replace('0.png', '0.webp')], bearer(TOKEN_A));
    expect(signed.status).toBe(200);
    const { urls } = (await signed.json()) as { urls: string[] };
    expect(urls).toHaveLength(2);
    expect(urls[0]).toMatch(new RegExp(`^${path.replace(/\./g, '\\.')}\\?sig=[A-Za-z0-9_-]{43}$`));
    // The signed address URL renders with no token at all, as an <img> would fetch it.
    const tile = await fetch(`${system.apiUrl}${urls[0]}`);
    expect([tile.status, tile.headers.get('content-type')]).toEqual([200, 'image/png']);
    expect((await rawGet(system.apiUrl, path, bearer(TOKEN_A))).status).toBe(403); // unsigned stays refused
    // Another tenant's dataset answers like a missing one; no token, a bad token or bad paths are refused.
    const theirs = await sign([path.replace('alpha-cells', 'beta-cells')], bearer(TOKEN_A));
    const missing = await sign([path.replace('alpha-cells', 'gamma-cells')], bearer(TOKEN_A));
    expect([theirs.status, missing.status]).toEqual([404, 404]);
    expect(((await theirs.json()) as { error: { code: string } }).error.code).toBe(((await missing.json()) as { error: { code: string } }).error.code);
    expect((await sign([path], {})).status).toBe(401);
    expect((await sign([path], bearer('not-a-real-token-at-all-0000'))).status).toBe(401);
    for (const bad of [[], ['/tiles/ab/alpha-cells/v1/x.png'], [`${path}?sig=x`], [path.replace('/0.png', '/../0.png')], 'x', [1], Array(1025).fill(path)]) {
      const res = await sign(bad, bearer(TOKEN_A));
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([400, 'bad_request']);
    }
  }, 60_000);

  it('signs OME-Zarr view roots (POST /v1/zarr-urls) within the tenant; zarrita reads with the root signature alone; everything else 403 (issue 13)', async () => {
    const json = { 'content-type': 'application/json' };
    const sign = (body: unknown, headers: Record<string, string>) => fetch(`${system.apiUrl}/v1/zarr-urls`, { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify(body) });
    const signed = await sign({ datasets: ['alpha-cells'] }, bearer(TOKEN_A));
    expect(signed.status).toBe(200);
    const [root] = ((await signed.json()) as { urls: string[] }).urls;
    expect(root).toMatch(/^\/zarr\/alpha-cells\.zarr\?sig=[A-Za-z0-9_-]{43}$/);
    // A real Zarr client, given only the signed root (no token): it carries the query to every key.
    const store = new zarr.FetchStore(`${system.apiUrl}${root}`);
    const group = await zarr.open.v2(zarr.root(store), { kind: 'group' });
    expect((group.attrs as { multiscales: unknown[] }).multiscales).toHaveLength(1);
    const level0 = await zarr.open.v2(zarr.root(store).resolve('0'), { kind: 'array' });
    const chunk = await zarr.get(level0, [0, 0, 0, zarr.slice(0, 10), zarr.slice(0, 10)]);
    expect(chunk.shape).toEqual([10, 10]);

    const sig = new URL(`${system.apiUrl}${root}`).searchParams.get('sig')!;
    const tampered = sig.slice(0, -2) + (sig.endsWith('AA') ? 'BB' : 'AA');
    const refused = [
      { path: '/zarr/alpha-cells.zarr/.zattrs', headers: bearer(TOKEN_A) }, // unsigned, even with a token (as tiles)
      { path: '/zarr/alpha-cells.zarr/0/0/0/0/0/0', headers: bearer(TOKEN_A) },
      { path: `/zarr/alpha-cells.zarr/.zattrs?sig=${tampered}`, headers: {} },
      { path: `/zarr/beta-cells.zarr/.zattrs?sig=${sig}`, headers: {} }, // moved to another tenant's root
      { path: `/zarr/beta-cells.zarr/0/0/0/0/0/0?sig=${sig}`, headers: bearer(TOKEN_A) },
      { path: `/zarr/alpha-cells.zarr/.zattrs?sig=`, headers: {} },
      { path: `/zarr/alpha-cells.zarr/.zattrs?sig=${sig}&exp=1`, headers: {} }, // an expiry the signature does not cover
    ];
    for (const c of refused) {
      const res = await rawGet(system.apiUrl, c.path, c.headers);
      expect([c.path, res.status, JSON.parse(res.body).error.code]).toEqual([c.path, 403, 'invalid_signature']);
    }
    // Walking out of the signed root, or spelling it otherwise, reaches no dataset.
    for (const path of [`/zarr/ALPHA-CELLS.zarr/.zattrs?sig=${sig}`, `/zarr/alpha-cells.zarr/../beta-cells.zarr/.zattrs?sig=${sig}`, `/zarr/alpha-cells.zarr/%2e%2e/beta-cells.zarr/.zattrs?sig=${sig}`]) {
      const res = await rawGet(system.apiUrl, path);
      expect({ path, status: res.status, leaked: res.body.includes('multiscales') }).toMatchObject({ path, leaked: false });
      expect(res.status).toBeGreaterThanOrEqual(400);
    }
    // Another tenant's dataset answers like a missing one; no token or a bad token: 401; bad bodies: 400.
    const theirs = await sign({ datasets: ['beta-cells'] }, bearer(TOKEN_A));
    const missing = await sign({ datasets: ['gamma-cells'] }, bearer(TOKEN_A));
    expect([theirs.status, missing.status]).toEqual([404, 404]);
    expect(((await theirs.json()) as { error: { message: string } }).error.message.replace('beta', 'X')).toBe(((await missing.json()) as { error: { message: string } }).error.message.replace('gamma', 'X'));
    expect((await sign({ datasets: ['alpha-cells'] }, {})).status).toBe(401);
    expect((await sign({ datasets: ['alpha-cells'] }, bearer('not-a-real-token-at-all-0000'))).status).toBe(401);
    for (const bad of [{ datasets: [] }, { datasets: ['../x'] }, { datasets: 'alpha-cells' }, { datasets: ['alpha-cells'], extra: 1 }, { paths: [] }, { datasets: Array(101).fill('alpha-cells') }]) {
      const res = await sign(bad, bearer(TOKEN_A));
      expect([JSON.stringify(bad).slice(0, 60), res.status]).toEqual([JSON.stringify(bad).slice(0, 60), 400]);
    }
    // Beta signs its own root; alpha's signature never opened it.
    const betaRoot = ((await (await sign({ datasets: ['beta-cells'] }, bearer(TOKEN_B))).json()) as { urls: string[] }).urls[0]!;
    expect((await fetch(`${system.apiUrl}${betaRoot.replace('?', '/.zgroup?')}`)).status).toBe(200);
  }, 60_000);
});

describe('dataset ownership and ingest jobs across tenants (issue 11 items 3, 5, 6)', () => {
  const ADMIN = 'operator-token-0123456789abcdef';
  const json = { 'content-type': 'application/json' };
  let system: TestSystem;
  let root: string;

  const post = async (body: Record<string, unknown>, token?: string) => {
    const res = await fetch(`${system.apiUrl}/v1/datasets`, { method: 'POST', headers: { ...json, ...(token ? bearer(token) : {}) }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { jobId?: string; error?: { code: string; message: string } } };
  };
  const finished = (jobId: string, token: string) => system.ingestEnded(jobId, { token, timeoutMs: 60_000 });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tilefarm-ownership-'));
    const pixels = Buffer.alloc(64 * 48 * 3, 7);
    await sharp(pixels, { raw: { width: 64, height: 48, channels: 3 } }).png().toFile(join(root, 'small.png'));
    system = await TestSystem.start({
      workers: 1,
      datasets: [{ id: 'alpha-cells', tenant: 'alpha', ...SMALL }, { id: 'beta-cells', tenant: 'beta', ...SMALL }, { id: 'shared', ...SMALL }],
      env: { ACCESS_TOKENS: `${TOKEN_A}:alpha,${TOKEN_B}:beta`, ADMIN_TOKEN: ADMIN, INGEST_ROOT: root },
    });
  }, 120_000);
  afterAll(async () => {
    await system?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('item 3: a tenant cannot take over a public or another tenant\'s dataset; the operator writes public ones, owners re-ingest theirs', async () => {
    for (const id of ['shared', 'alpha-cells']) {
      const take = await post({ id, source: 'small.png' }, TOKEN_B);
      expect([id, take.status, take.body.error?.code]).toEqual([id, 409, 'conflict']);
      expect(take.body.error?.message.replace(id, 'X')).not.toMatch(/ing-|alpha|beta/);
    }
    expect((await system.catalog.get('shared')).version).toBe(1);
    expect((await fetch(`${system.apiUrl}/v1/datasets/shared`, { headers: bearer(TOKEN_A) })).status).toBe(200);
    // The operator's token writes public datasets; the owner re-ingests its own.
    const operator = await post({ id: 'shared', source: 'small.png' }, ADMIN);
    expect(operator.status).toBe(202);
    expect(await finished(operator.body.jobId!, ADMIN)).toMatchObject({ state: 'completed', version: 2 });
    expect(await system.catalog.get('shared')).toMatchObject({ version: 2, tenant: 'public' });
    const owner = await post({ id: 'alpha-cells', source: 'small.png' }, TOKEN_A);
    expect(owner.status).toBe(202);
    expect(await finished(owner.body.jobId!, TOKEN_A)).toMatchObject({ state: 'completed', version: 2 });
    expect(await system.catalog.get('alpha-cells')).toMatchObject({ version: 2, tenant: 'alpha' });
  }, 120_000);

  it('item 5: another tenant\'s id and a free id answer the same; ingest jobs are visible to their tenant only', async () => {
    // Bad input is judged before ownership, so it cannot tell taken ids from free ones.
    for (const source of ['../outside.png', '/etc/passwd', 's3://some-bucket/a.tif']) {
      const theirs = await post({ id: 'beta-cells', source }, TOKEN_A);
      const free = await post({ id: 'free-id-0', source }, TOKEN_A);
      expect([source, theirs.status, theirs.body.error?.code]).toEqual([source, free.status, free.body.error?.code]);
      expect(theirs.body.error?.message.replace('beta-cells', 'X')).toBe(free.body.error?.message.replace('free-id-0', 'X'));
    }
    // Beta ingests; alpha can neither read nor watch the job, answered exactly like a job that does not exist.
    const mine = await post({ id: 'beta-new', source: 'small.png' }, TOKEN_B);
    expect(mine.status).toBe(202);
    const jobId = mine.body.jobId!;
    const fake = jobId.replace(/.{4}$/, '0000');
    const seen = await fetch(`${system.apiUrl}/v1/ingests/${jobId}`, { headers: bearer(TOKEN_A) });
    const none = await fetch(`${system.apiUrl}/v1/ingests/${fake}`, { headers: bearer(TOKEN_A) });
    expect([seen.status, await seen.text()]).toEqual([none.status, await none.text()]);
    expect(seen.status).toBe(404);
    // While it runs, alpha's try at the same id is refused without naming beta's job.
    const clash = await post({ id: 'beta-new', source: 'small.png' }, TOKEN_A);
    expect(clash.status).toBe(409);
    expect(clash.body.error?.message).not.toContain(jobId);
    const alpha = new TestViewer(system.gatewayUrl(0), { token: TOKEN_A });
    const beta = new TestViewer(system.gatewayUrl(0), { token: TOKEN_B });
    try {
      await Promise.all([alpha.connected(), beta.connected()]);
      const theirs = (await alpha.socket.timeout(10_000).emitWithAck('ingest:watch', { jobId })) as { ok: boolean; error?: { code: string; message: string } };
      const missing = (await alpha.socket.timeout(10_000).emitWithAck('ingest:watch', { jobId: fake })) as { ok: boolean; error?: { code: string; message: string } };
      expect(theirs).toEqual({ ok: false, error: { code: 'not_found', message: missing.error!.message.replace(fake, jobId) } });
      const own = (await beta.socket.timeout(10_000).emitWithAck('ingest:watch', { jobId })) as { ok: boolean };
      expect(own.ok).toBe(true);
    } finally {
      alpha.close();
      beta.close();
    }
    expect(await finished(jobId, TOKEN_B)).toMatchObject({ state: 'completed' });
  }, 120_000);

  it('item 6: DELETE /v1/datasets/{id} by its owner only; the id stays the owner\'s', async () => {
    const del = (id: string, token: string) => fetch(`${system.apiUrl}/v1/datasets/${id}`, { method: 'DELETE', headers: bearer(token) });
    const theirs = await del('beta-cells', TOKEN_A);
    const missing = await del('nothing-here', TOKEN_A);
    expect([theirs.status, await theirs.text()]).toEqual([missing.status, (await missing.text()).replace('nothing-here', 'beta-cells')]);
    expect(theirs.status).toBe(404);
    expect((await del('shared', TOKEN_A)).status).toBe(403); // public: the operator's
    expect((await fetch(`${system.apiUrl}/v1/datasets/beta-cells`, { headers: bearer(TOKEN_B) })).status).toBe(200);
    expect((await del('beta-cells', TOKEN_B)).status).toBe(204);
    expect((await fetch(`${system.apiUrl}/v1/datasets/beta-cells`, { headers: bearer(TOKEN_B) })).status).toBe(404);
    // Deleted, the id is still beta's: alpha cannot take it, beta can ingest it again.
    expect((await post({ id: 'beta-cells', source: 'small.png' }, TOKEN_A)).status).toBe(409);
    const again = await post({ id: 'beta-cells', source: 'small.png' }, TOKEN_B);
    expect(again.status).toBe(202);
    expect(await finished(again.body.jobId!, TOKEN_B)).toMatchObject({ state: 'completed', version: 2 });
  }, 120_000);
});

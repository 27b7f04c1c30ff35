import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { ERROR_TABLE } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 7: over 10,000 generated malformed (and some valid) specs, formulas, tile URLs, raw bodies
// and socket payloads, thrown at the running API and gateway (real processes, one real worker
// rendering whatever turns out valid). Only 2xx/3xx/4xx answers: never a 5xx, never a hang, never
// a crash, and no stack traces or internal paths in any answer.

const DATASET = { id: 'fuzz', width: 300, height: 300, sizeZ: 2, tileSize: 256 as const, dtype: 'uint8' as const };
const SEED = Number(process.env.FUZZ_SEED ?? 20260607);
const TIMEOUT_MS = 5000;
const LEAKY = /\n\s+at |node_modules|\/work\/|\/tmp\/|\/home\/|\/usr\/|Error: /;

interface Outcome {
  what: string;
  input: string;
  problem: string;
}

const channelIndex = fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constant(1023), fc.constant(1e9), fc.double(), fc.string());
const formulaToken = fc.constantFrom('c0', 'c1', 'c2', 'c9', 'c1024', 'ch("DAPI")', 'ch("', 'max(', 'min(', 'log(', 'sqrt(', 'exp(', 'abs(', 'log10(', 'clamp(', '(', ')', ',', '+', '-', '*', '/', '^', '<', '>=', '==', '!=', '1', '0', '0.5', '1e308', '1e309', '.5e-3', 'NaN', 'Infinity', 'constructor', '__proto__', 'process', '.', ' ', '"', "'", '\\', '`', '${', ';', 'x', '\u0000', '😀');
const formula = fc.oneof(
  fc.array(formulaToken, { maxLength: 40 }).map((ts) => ts.join('')),
  fc.string({ maxLength: 600 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.integer({ min: 1, max: 80 }).map((n) => `${'('.repeat(n)}c0${')'.repeat(n)}`),
  fc.integer({ min: 1, max: 300 }).map((n) => Array.from({ length: n }, (_, i) => `c${i % 3}`).join('+')),
);
const window = fc.oneof(fc.tuple(fc.double(), fc.double()), fc.constantFrom('auto', 'auto:0.02', 'auto:0.7', 'auto:x', 'min'), fc.anything());
const channel = fc.oneof(
  fc.record({ index: channelIndex, color: fc.oneof(fc.constant('#00ff00'), fc.string({ maxLength: 9 })), window: fc.option(window, { nil: undefined }) }, { requiredKeys: ['index'] }),
  fc.record({ formula, window: fc.option(window, { nil: undefined }), lut: fc.option(fc.constantFrom('fire', 'viridis', 'nope'), { nil: undefined }) }, { requiredKeys: ['formula'] }),
  fc.record({ label: fc.oneof(fc.constantFrom('DAPI', 'GFP', 'nope'), fc.string()) }),
  fc.anything(),
);
const spec = fc.oneof(
  fc.record(
    {
      v: fc.oneof(fc.constant(1), fc.anything()),
      channels: fc.oneof(fc.array(channel, { maxLength: 4 }), fc.array(channel, { minLength: 60, maxLength: 70 }), fc.anything()),
      composite: fc.oneof(fc.constantFrom('add', 'max', 'mul'), fc.anything()),
      projection: fc.oneof(fc.record({ type: fc.constantFrom('max', 'mean', 'median'), z: fc.tuple(fc.integer({ min: -1, max: 5000 }), fc.integer({ min: -1, max: 5000 })) }), fc.anything()),
      format: fc.constantFrom('jpeg', 'png', 'webp', 'gif', ''),
      quality: fc.oneof(fc.integer({ min: -5, max: 200 }), fc.anything()),
      extra: fc.anything(),
    },
    { requiredKeys: ['channels'] },
  ),
  fc.anything(),
  fc.jsonValue(),
);
const segment = fc.oneof(
  fc.constantFrom('fuzz', 'FUZZ', 'nope', '0', '-1', '999999999', '1e3', '..', '.', '%2e%2e', '%2F', '%00', '%ff', 'fuzz%2F..', '%20', encodeURIComponent('😀'), 'a'.repeat(300), 's0000000000000000'),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.nat({ max: 5 }).map(String),
);
const tilePath = fc.oneof(
  fc.tuple(segment, segment, segment, segment, segment, segment, segment, fc.constantFrom('.jpeg', '.png', '.webp', '.gif', '', '.', '.JPG')).map(([d, s, l, z, t, x, y, ext]) => `/v1/tiles/${d}/${s}/${l}/${z}/${t}/${x}/${y}${ext}?wait=0`),
  fc.array(segment, { maxLength: 8 }).map((segs) => `/tiles/${segs.join('/')}.png`),
  // Stored-tile keys of both shapes (the spec a directory, or part of the name since session 8) with any part bent.
  fc.tuple(segment, segment, segment, fc.constantFrom('/', '-', '--', '-/'), segment).map(([shard, d, v, join, name]) => `/tiles/${shard}/${d}/v${v}/s0123456789abcdef${join}${name}.png`),
  fc.array(segment, { maxLength: 3 }).map((segs) => `/v1/datasets/${segs.join('/')}`),
  // The raw-pixel Zarr view: keys, chunk coordinates and dataset names of every shape.
  fc.tuple(segment, segment, fc.array(segment, { maxLength: 5 })).map(([d, l, c]) => `/zarr/${d}.zarr/${l}/${c.join('.')}`),
  fc.tuple(segment, fc.constantFrom('.zgroup', '.zattrs', '0/.zarray', '9/.zarray', '0/0.0.0.0.0', '0/0.0.0.0', '0/0.5.0.0.0', '../x')).map(([d, k]) => `/zarr/${d}.zarr/${k}`),
  // Slash-separated chunk keys of the test's dataset and others, with signature, expiry and spec queries.
  fc.tuple(fc.oneof(fc.constant('fuzz'), segment), fc.array(segment, { maxLength: 7 }), fc.string({ maxLength: 50 })).map(([d, k, q]) => `/zarr/${d}.zarr/${k.join('/')}?sig=${encodeURIComponent(q)}&exp=${encodeURIComponent(q.slice(0, 12))}&spec=${encodeURIComponent(q)}`),
  segment.map((s) => `/v1/specs/${s}`),
  fc.tuple(segment, segment, segment, fc.string({ maxLength: 40 })).map(([d, z, t, q]) => `/webgateway/render_image_region/${d}/${z}/${t}/?tile=${encodeURIComponent(q)}&c=${encodeURIComponent(q)}`),
  fc.string({ maxLength: 60 }).map((s) => `/${encodeURIComponent(s)}`),
);
// Issue 12's grammars: IIIF Image API 3.0, Deep Zoom, CATMAID, from tokens near the valid forms.
const num = fc.oneof(fc.nat({ max: 400 }).map(String), fc.constantFrom('-1', '0', '1e3', '1.5', '99999999999', '', '%20', 'NaN', '%2C'));
const iiifRegion = fc.oneof(fc.constantFrom('full', 'square', 'pct:', 'FULL'), fc.array(num, { maxLength: 5 }).map((n) => n.join(',')), fc.array(num, { maxLength: 5 }).map((n) => `pct:${n.join(',')}`));
const iiifSize = fc.oneof(fc.constantFrom('max', '^max', 'full', '!', '^', 'pct:', 'pct:0', 'pct:101', 'pct:50'), fc.tuple(fc.constantFrom('', '!', '^', '^!'), num, num).map(([p, a, b]) => `${p}${a},${b}`));
const iiifId = fc.oneof(fc.constantFrom('fuzz', 'fuzz~z1', 'fuzz~z9', 'fuzz~t0', 'fuzz~s0000000000000000', 'fuzz~~', 'fuzz~z1~z1', '~', 'nope'), segment);
const protocolPath = fc.oneof(
  fc.tuple(iiifId, iiifRegion, iiifSize, fc.constantFrom('0', '90', '!0', '-0', '360', '1e1', ''), fc.constantFrom('default', 'color', 'gray', 'bitonal', 'native', ''), fc.constantFrom('.jpg', '.png', '.webp', '.tif', '.gif', '', '.', '.jpg.png')).map(([id, r, sz, rot, q, f]) => `/iiif/3/${id}/${encodeURI(r)}/${encodeURI(sz)}/${rot}/${q}${f}`),
  iiifId.map((id) => `/iiif/3/${id}/info.json`),
  fc.tuple(iiifId, num, num, num, fc.constantFrom('.jpeg', '.jpg', '.png', '.gif', '')).map(([id, l, c, r, e]) => `/dzi/${id}_files/${l}/${c}_${r}${e}`),
  iiifId.map((id) => `/dzi/${id}.dzi`),
  fc.tuple(fc.constantFrom('fuzz', 'fuzz/s0000000000000000', 'nope', 'FUZZ'), fc.array(num, { maxLength: 6 }), fc.constantFrom('_', '/'), fc.constantFrom('.jpg', '.png', '.bmp', ''), fc.constantFrom('', '?color=red', '?color=red,green,blue,cyan', '?min=1,x&max=0', '?gamma=0', '?quality=101', '?color=%23ff0000&min=1&max=2')).map(
    ([base, nums, sep, ext, q]) => `/catmaid/${base}/${nums.join(sep)}${ext}${q}`,
  ),
  fc.tuple(fc.constantFrom('fuzz', 'nope'), fc.constantFrom('small.jpg', 'small/0.jpg', '0/small.png', 'small/x.jpg', 'small/9.jpg')).map(([d, rest]) => `/catmaid/${d}/${rest}`),
);
const position = fc.record({ level: fc.oneof(fc.nat({ max: 3 }), fc.anything()), z: fc.oneof(fc.nat({ max: 3 }), fc.integer()), t: fc.oneof(fc.constant(0), fc.anything()), x: fc.nat({ max: 3 }), y: fc.oneof(fc.nat({ max: 3 }), fc.double()) }, { requiredKeys: [] });
const socketEvent = fc.oneof(
  fc.record({ event: fc.constant('tiles:request'), payload: fc.oneof(fc.record({ dataset: fc.oneof(fc.constant('fuzz'), fc.string()), spec, tiles: fc.oneof(fc.array(position, { maxLength: 6 }), fc.anything()) }, { requiredKeys: [] }), fc.anything()) }),
  fc.record({ event: fc.constant('viewport'), payload: fc.oneof(fc.record({ dataset: fc.oneof(fc.constant('fuzz'), fc.string()), spec, level: fc.integer({ min: -1, max: 40 }), z: fc.integer(), t: fc.integer(), x0: fc.integer(), y0: fc.integer(), x1: fc.integer({ min: -1, max: 2_000_000 }), y1: fc.integer() }, { requiredKeys: [] }), fc.anything()) }),
  fc.record({ event: fc.constant('tiles:cancel'), payload: fc.oneof(fc.record({ keys: fc.array(fc.string(), { maxLength: 5 }) }), fc.anything()) }),
  fc.record({ event: fc.constantFrom('nonsense', 'constructor', 'toString', '__proto__', 'hasOwnProperty'), payload: fc.anything() }),
);

function send(base: string, method: string, path: string, body?: Buffer, contentType = 'application/json'): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path, method, headers: body ? { 'content-type': contentType, 'content-length': body.length } : {}, timeout: TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1').slice(0, 4000) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('hang')));
    req.on('error', reject);
    req.end(body);
  });
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return 'null';
  }
}

describe('malformed input at the running API and gateway', () => {
  let system: TestSystem;
  const problems: Outcome[] = [];
  const counts: Record<string, number> = {};
  const statuses: Record<string, number> = {};

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, datasets: [DATASET], env: { EVENTS_PER_SECOND: '100000', TILE_WAIT_MS: '3000', LOG_LEVEL: 'warn' } });
  }, 120_000);
  afterAll(() => system?.stop());

  async function http(what: string, method: string, path: string, body?: Buffer, contentType?: string): Promise<void> {
    counts[what] = (counts[what] ?? 0) + 1;
    try {
      const res = await send(system.apiUrl, method, path, body, contentType);
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      // 501 is IIIF's own answer to a valid request for a feature not offered (rotation, bitonal...).
      const notImplemented = res.status === 501 && path.startsWith('/iiif/') && res.body.includes('"not_implemented"');
      if ((res.status >= 500 && !notImplemented) || res.status < 200) problems.push({ what, input: `${method} ${path} ${body?.toString('utf8').slice(0, 200) ?? ''}`, problem: `${res.status} ${res.body.slice(0, 200)}` });
      else if (LEAKY.test(res.body) && !res.body.startsWith('\u0089PNG') && res.status >= 400) problems.push({ what, input: path, problem: `leaky body: ${res.body.slice(0, 200)}` });
    } catch (e) {
      problems.push({ what, input: `${method} ${path}`, problem: String(e) });
    }
  }

  it('answers over 10,000 generated inputs with 2xx/4xx only, and every process survives', async () => {
    const started = Date.now();
    for (const s of fc.sample(spec, { numRuns: 2500, seed: SEED })) await http('spec', 'POST', '/v1/specs', Buffer.from(jsonOf(s)));
    for (const f of fc.sample(formula, { numRuns: 2000, seed: SEED + 1 })) {
      await http('formula', 'POST', '/v1/specs', Buffer.from(jsonOf({ channels: [{ formula: f }], format: 'png' })));
    }
    for (const p of fc.sample(tilePath, { numRuns: 2500, seed: SEED + 2 })) await http('url', 'GET', p);
    for (const p of fc.sample(protocolPath, { numRuns: 1000, seed: SEED + 7 })) await http('protocol url', 'GET', p);
    const raw = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => ({ body: Buffer.from(b), type: 'application/json' })),
      fc.string({ maxLength: 200 }).map((s) => ({ body: Buffer.from(s), type: 'application/json' })),
      fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/json; charset=koi8-r').map((type) => ({ body: Buffer.from('{"channels":[{"index":0}]}'), type })),
      fc.constant({ body: Buffer.from(`{"channels":[${'{"index":0},'.repeat(8000)}{"index":0}]}`), type: 'application/json' }),
    );
    for (const r of fc.sample(raw, { numRuns: 500, seed: SEED + 3 })) await http('raw body', 'POST', '/v1/specs', r.body, r.type);
    // The routes issue 11 added: tile URL signing, dataset deletion.
    for (const r of fc.sample(raw, { numRuns: 200, seed: SEED + 5 })) await http('tile-urls body', 'POST', '/v1/tile-urls', r.body, r.type);
    for (const paths of fc.sample(fc.array(tilePath, { maxLength: 4 }), { numRuns: 300, seed: SEED + 6 })) await http('tile-urls', 'POST', '/v1/tile-urls', Buffer.from(JSON.stringify({ paths })));
    // Specs checked against a dataset when saved (POST /v1/specs?dataset=).
    for (const [d, sp] of fc.sample(fc.tuple(fc.oneof(fc.constant('fuzz'), segment), spec), { numRuns: 200, seed: SEED + 22 })) await http('spec for dataset', 'POST', `/v1/specs?dataset=${d}`, Buffer.from(jsonOf(sp)));
    // Issue 13: signing OME-Zarr view roots.
    for (const r of fc.sample(raw, { numRuns: 100, seed: SEED + 20 })) await http('zarr-urls body', 'POST', '/v1/zarr-urls', r.body, r.type);
    const zarrUrls = fc.oneof(fc.record({ datasets: fc.array(fc.oneof(fc.constant('fuzz'), segment.map(decodeURIComponentSafe)), { maxLength: 120 }) }), fc.record({ datasets: fc.anything() }), fc.anything());
    for (const b of fc.sample(zarrUrls, { numRuns: 200, seed: SEED + 21 })) await http('zarr-urls', 'POST', '/v1/zarr-urls', Buffer.from(jsonOf(b)));
    // Never the test's own dataset: every id here starts with "fz".
    for (const s of fc.sample(segment, { numRuns: 200, seed: SEED + 7 })) await http('delete', 'DELETE', `/v1/datasets/fz${s}`);
    // Saved render settings (issue 14): names, dataset ids, specs and raw bodies.
    const settingsName = fc.oneof(segment, fc.constantFrom('default', 'my%20look', '%2e%2e', '..%2Fx', 'a'.repeat(81), '%E2%80%AE', ''));
    for (const [d, n] of fc.sample(fc.tuple(fc.oneof(fc.constant('fuzz'), segment), settingsName), { numRuns: 300, seed: SEED + 8 })) {
      await http('settings', 'GET', `/v1/datasets/${d}/settings`);
      await http('settings', 'PUT', `/v1/datasets/${d}/settings/${n}`, Buffer.from(jsonOf({ spec: { channels: [{ index: 0 }] } })));
      await http('settings', 'DELETE', `/v1/datasets/${d}/settings/${n}`);
    }
    for (const s of fc.sample(fc.oneof(spec.map((x) => ({ spec: x })), fc.anything()), { numRuns: 400, seed: SEED + 9 })) await http('settings body', 'PUT', '/v1/datasets/fuzz/settings/fz', Buffer.from(jsonOf(s)));
    for (const r of fc.sample(raw, { numRuns: 100, seed: SEED + 10 })) await http('settings body', 'PUT', '/v1/datasets/fuzz/settings/fz', r.body, r.type);
    // Uploads (issue 14): declarations, part numbers and bodies, ids, completion and cancel of
    // real and made-up uploads. Ids start with "fz" (never the test's dataset).
    const declaration = fc.oneof(
      fc.record({ id: fc.oneof(fc.constant('fzup'), segment.map((s) => `fz${s}`)), filename: fc.oneof(fc.constantFrom('a.ome.tif', 'a.TIFF', 'a.png', '../a.tif', 'a\u0000.tif', '.tif', 'x'.repeat(300) + '.tif'), fc.string()), size: fc.oneof(fc.integer({ min: -1, max: 3 * 2 ** 20 }), fc.constantFrom(0, 1e300, 2 ** 53, 5e9), fc.double(), fc.string()), name: fc.option(fc.string(), { nil: undefined }), ignoreOmeXml: fc.option(fc.anything(), { nil: undefined }) }, { requiredKeys: [] }),
      fc.anything(),
    );
    const real: string[] = [];
    for (const d of fc.sample(declaration, { numRuns: 300, seed: SEED + 11 })) {
      const res = await send(system.apiUrl, 'POST', '/v1/uploads', Buffer.from(jsonOf(d))).catch(() => undefined);
      counts.uploads = (counts.uploads ?? 0) + 1;
      if (res && res.status === 201) real.push((JSON.parse(res.body) as { uploadId: string }).uploadId);
      else if (!res || res.status >= 500 || (LEAKY.test(res.body) && res.status >= 400)) problems.push({ what: 'uploads', input: jsonOf(d).slice(0, 200), problem: `${res?.status} ${res?.body.slice(0, 200)}` });
    }
    const uploadId = fc.oneof(fc.constantFrom(...(real.length ? real : ['ing-fzup-x'])), segment, fc.constantFrom('ing-fuzz-000', 'ing-', 'ing-..', 'ing-a%2Fb'));
    const partNumber = fc.oneof(fc.nat({ max: 4 }).map(String), segment);
    for (const [id, n, body] of fc.sample(fc.tuple(uploadId, partNumber, fc.uint8Array({ maxLength: 64 })), { numRuns: 400, seed: SEED + 12 })) {
      await http('uploads', 'PUT', `/v1/uploads/${id}/parts/${n}`, Buffer.from(body), 'application/octet-stream');
      await http('uploads', 'GET', `/v1/uploads/${id}`);
    }
    for (const id of fc.sample(uploadId, { numRuns: 100, seed: SEED + 13 })) {
      await http('uploads', 'POST', `/v1/uploads/${id}/complete`);
      await http('uploads', 'DELETE', `/v1/uploads/${id}`);
    }
    for (const r of fc.sample(raw, { numRuns: 100, seed: SEED + 14 })) await http('uploads', 'POST', '/v1/uploads', r.body, r.type);

    // Socket payloads: one viewer, every event acknowledged (or ignored), the connection kept.
    const viewer = new TestViewer(system.gatewayUrl(0));
    await viewer.connected();
    let disconnects = 0;
    let lastInput = '';
    viewer.socket.on('disconnect', (reason) => {
      disconnects++;
      problems.push({ what: 'socket', input: lastInput, problem: `disconnected: ${reason}` });
    });
    const acks: Record<string, number> = {};
    try {
      for (const { event, payload } of fc.sample(socketEvent, { numRuns: 2600, seed: SEED + 4 })) {
        counts.socket = (counts.socket ?? 0) + 1;
        lastInput = `${event} ${jsonOf(payload).slice(0, 300)}`;
        if (!viewer.socket.connected) await viewer.connected();
        const known = event === 'tiles:request' || event === 'viewport' || event === 'tiles:cancel';
        if (!known) {
          viewer.socket.emit(event as 'tiles:cancel', payload as never); // unknown events get no answer; they must do no harm
          continue;
        }
        try {
          const ack = (await viewer.socket.timeout(TIMEOUT_MS).emitWithAck(event as 'tiles:cancel', payload as never)) as { ok: boolean; error?: { code: string; message: string } };
          const code = ack.ok ? 'ok' : ack.error?.code ?? 'none';
          acks[code] = (acks[code] ?? 0) + 1;
          // A code from the wire: unknown ones count as failures (status 0).
          const status = ack.ok ? 200 : ((ERROR_TABLE as Record<string, { status: number } | undefined>)[ack.error?.code ?? '']?.status ?? 0);
          if (status >= 500 || status === 0) problems.push({ what: 'socket', input: `${event} ${jsonOf(payload).slice(0, 200)}`, problem: jsonOf(ack) });
          else if (!ack.ok && LEAKY.test(ack.error!.message)) problems.push({ what: 'socket', input: event, problem: `leaky message: ${ack.error!.message}` });
        } catch (e) {
          problems.push({ what: 'socket', input: `${event} ${jsonOf(payload).slice(0, 200)}`, problem: `no ack: ${String(e)}` });
        }
      }
    } finally {
      viewer.socket.off('disconnect');
      viewer.close();
    }

    // Everyone is still alive and well.
    for (const p of system.processes) expect([p.name, p.child.exitCode, p.child.signalCode]).toEqual([p.name, null, null]);
    expect((await fetch(`${system.apiUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${system.gatewayUrl(0)}/healthz`)).status).toBe(200);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(`FAULT FIGURES malformed input: ${JSON.stringify({ seed: SEED, inputsTried: total, byKind: counts, httpStatuses: statuses, socketAcks: acks, disconnects, problems: problems.length, seconds: (Date.now() - started) / 1000 })}`);
    if (problems.length > 0) console.log(problems.slice(0, 15));
    expect(total).toBeGreaterThanOrEqual(10_000);
    expect(problems).toEqual([]);
    expect(disconnects).toBe(0);
  }, 600_000);
});

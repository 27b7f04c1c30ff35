import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSourceTile } from '@tilefarm/datasets';
import type { UploadStatusBody } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';

// Issue 14, upload: a file sent to /v1/uploads in parts (S3 multipart on s3rver), resumed after a
// gap, ingested by the workers and published; what is left in the bucket is looked at directly
// (s3rver's files, multipart parts included). Cancelled, refused and failed uploads leave nothing.
// Tenants: another tenant's upload answers like a missing one.

const FIXTURES = resolve(__dirname, '../../../shared/fixtures');
const TOKEN_A = 'alpha-token-0123456789abcdef';
const TOKEN_B = 'beta-token-0123456789abcdefgh';
const MiB = 2 ** 20;

describe('browser uploads over HTTP, S3 storage', () => {
  let system: TestSystem;
  const auth = (token = TOKEN_A) => ({ authorization: `Bearer ${token}` });
  const json = { 'content-type': 'application/json' };
  const uploadFiles = () => system.storedFiles().filter((f) => f.startsWith('uploads/') || f.includes('._S3rver_uploads'));

  const begin = async (body: Record<string, unknown>, token = TOKEN_A) => {
    const res = await fetch(`${system.apiUrl}/v1/uploads`, { method: 'POST', headers: { ...json, ...auth(token) }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as UploadStatusBody & { error?: { code: string; message: string } } };
  };
  const part = async (u: UploadStatusBody, n: number, file: Buffer, token = TOKEN_A) =>
    fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}/parts/${n}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...auth(token) }, body: new Uint8Array(file.subarray((n - 1) * u.partSize, n * u.partSize)) });
  const ingested = (jobId: string) => system.ingestEnded(jobId, { token: TOKEN_A, timeoutMs: 240_000 });

  beforeAll(async () => {
    system = await TestSystem.start({
      workers: 1,
      gateways: 1,
      storage: 's3',
      env: { ACCESS_TOKENS: `${TOKEN_A}:alpha,${TOKEN_B}:beta`, UPLOAD_PART_MB: '5', UPLOAD_MAX_MB: '40' },
    });
  }, 120_000);
  afterAll(() => system?.stop());

  it('uploads the pyramid fixture in 5 MiB parts (resumed after a gap), ingests it, and keeps nothing of the upload', async () => {
    const file = readFileSync(join(FIXTURES, 'pyramid-4c-3z.ome.tif'));
    const started = await begin({ id: 'uploaded-pyr', filename: 'pyramid-4c-3z.ome.tif', size: file.length });
    expect(started.status).toBe(201);
    const u = started.body;
    expect(u).toMatchObject({ dataset: 'uploaded-pyr', size: file.length, partSize: 5 * MiB, parts: Math.ceil(file.length / (5 * MiB)), received: [] });
    // Out of order, one part twice, then a pause: GET says what arrived, the rest follows.
    for (const n of [3, 1, 3]) expect((await part(u, n, file)).status).toBe(200);
    const midway = (await (await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}`, { headers: auth() })).json()) as UploadStatusBody;
    expect(midway.received).toEqual([1, 3]);
    // Completing with parts missing is refused and changes nothing.
    const early = await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}/complete`, { method: 'POST', headers: auth() });
    expect(early.status).toBe(400);
    expect(((await early.json()) as { error: { message: string } }).error.message).toMatch(/parts have not arrived/);
    // A part of the wrong size is refused.
    const wrong = await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}/parts/2`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...auth() }, body: new Uint8Array(10) });
    expect(wrong.status).toBe(400);
    // S3 multipart parts sit in s3rver's uploads area until completed, not in the bucket's objects.
    expect(system.storedFiles().some((f) => f.includes('._S3rver_uploads'))).toBe(true);
    for (let n = 1; n <= u.parts; n++) if (!midway.received.includes(n)) expect((await part(u, n, file)).status).toBe(200);
    const done = await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}/complete`, { method: 'POST', headers: auth() });
    expect(done.status).toBe(202);
    const accepted = (await done.json()) as { jobId: string; statusUrl: string };
    expect(accepted.jobId).toBe(u.uploadId);
    // Completing again, or cancelling now, is refused: the ingest owns the upload.
    expect((await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}`, { method: 'DELETE', headers: auth() })).status).toBe(409);
    const result = await ingested(accepted.jobId);
    expect(result).toMatchObject({ state: 'completed', dataset: 'uploaded-pyr' });
    // The published dataset is the file: the fixture README's known value, z=1 c=0 y=123 x=456 → 211.
    const manifest = await system.catalog.get('uploaded-pyr');
    expect(manifest).toMatchObject({ tenant: 'alpha', width: 1300, height: 900, sizeZ: 3, name: 'pyramid-4c-3z' });
    expect(manifest.channels.map((c) => c.label)).toEqual(['DAPI', 'GFP', 'mCherry', 'Cy5']);
    const tile = await readSourceTile(system.store, 'uploaded-pyr', manifest.version, { level: 0, t: 0, z: 1, c: 0, x: 1, y: 0 });
    expect(tile.data[123 * tile.width + (456 - 256)]).toBe(211);
    // It renders: a tile over HTTP.
    const spec = await (await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { ...json, ...auth() }, body: JSON.stringify({ channels: [{ index: 0, color: '#ffffff', window: [0, 2000] }], format: 'png' }) })).json() as { id: string };
    expect((await fetch(`${system.apiUrl}/v1/tiles/uploaded-pyr/${spec.id}/0/1/0/1/0.png`, { headers: auth() })).status).toBe(200);
    // Nothing of the upload is left: no record, no part, no assembled file, no multipart parts.
    const deadline = Date.now() + 20_000;
    while (uploadFiles().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(uploadFiles()).toEqual([]);
    expect((await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}`, { headers: auth() })).status).toBe(404);
  }, 300_000);

  it('a cancelled upload leaves no object and no multipart part in the bucket', async () => {
    const before = system.storedFiles();
    const file = Buffer.alloc(12 * MiB, 7);
    const { body: u } = await begin({ id: 'cancelled', filename: 'big.ome.tif', size: file.length });
    expect((await part(u, 1, file)).status).toBe(200);
    expect((await part(u, 3, file)).status).toBe(200);
    expect(system.storedFiles().length).toBeGreaterThan(before.length);
    expect((await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}`, { method: 'DELETE', headers: auth() })).status).toBe(204);
    expect(system.storedFiles()).toEqual(before);
    expect(uploadFiles()).toEqual([]);
    expect((await part(u, 2, file)).status).toBe(404);
  });

  it('a file that is not a TIFF fails its ingest and leaves nothing either; the size limit is enforced', async () => {
    const file = Buffer.from('this is not a TIFF file at all, just text pretending to be one');
    const { body: u } = await begin({ id: 'not-a-tiff', filename: 'fake.ome.tif', size: file.length });
    expect((await part(u, 1, file)).status).toBe(200);
    const done = await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}/complete`, { method: 'POST', headers: auth() });
    expect(done.status).toBe(202);
    expect((await ingested(u.uploadId)).state).toBe('failed');
    const deadline = Date.now() + 20_000;
    while (uploadFiles().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(uploadFiles()).toEqual([]);
    // UPLOAD_MAX_MB=40: a 41 MiB file is refused before anything is stored.
    const big = await begin({ id: 'too-big', filename: 'big.ome.tif', size: 41 * MiB });
    expect([big.status, big.body.error?.code]).toEqual([413, 'payload_too_large']);
    expect(big.body.error?.message).toMatch(/40 MB/);
    // Not a TIFF by name: refused.
    expect((await begin({ id: 'png', filename: 'x.png', size: 10 })).status).toBe(400);
    expect(uploadFiles()).toEqual([]);
  }, 120_000);

  it('tenants: another tenant\'s upload answers like a missing one; no token, nothing; ids of others cannot be taken', async () => {
    const file = Buffer.alloc(6 * MiB, 1);
    const { body: u } = await begin({ id: 'alphas-upload', filename: 'a.ome.tif', size: file.length });
    const missing = 'ing-alphas-upload-zzzzzzzz000000';
    const tries: Array<[string, string, RequestInit]> = [
      ['GET', `/v1/uploads/${u.uploadId}`, {}],
      ['PUT', `/v1/uploads/${u.uploadId}/parts/1`, { body: new Uint8Array(file.subarray(0, 5 * MiB)), headers: { 'content-type': 'application/octet-stream' } }],
      ['POST', `/v1/uploads/${u.uploadId}/complete`, {}],
      ['DELETE', `/v1/uploads/${u.uploadId}`, {}],
    ];
    for (const [method, path, init] of tries) {
      const theirs = await fetch(`${system.apiUrl}${path}`, { ...init, method, headers: { ...(init.headers as Record<string, string> | undefined), ...auth(TOKEN_B) } });
      const none = await fetch(`${system.apiUrl}${path.replace(u.uploadId, missing)}`, { ...init, method, headers: { ...(init.headers as Record<string, string> | undefined), ...auth(TOKEN_B) } });
      expect([method, path, theirs.status, await theirs.text()]).toEqual([method, path, 404, await none.text()]);
      expect((await fetch(`${system.apiUrl}${path}`, { ...init, method })).status).toBe(401);
    }
    // Alpha's upload is untouched, and beta cannot start an upload into alpha's dataset id.
    const mine = (await (await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}`, { headers: auth() })).json()) as UploadStatusBody;
    expect(mine.received).toEqual([]);
    expect((await begin({ id: 'uploaded-pyr', filename: 'b.ome.tif', size: 100 }, TOKEN_B)).status).toBe(409);
    expect((await fetch(`${system.apiUrl}/v1/uploads/${u.uploadId}`, { method: 'DELETE', headers: auth() })).status).toBe(204);
  });
});

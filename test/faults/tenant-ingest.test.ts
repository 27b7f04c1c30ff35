import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { TestSystem } from '../support/system';

// A dataset ingested with a tenant's token belongs to that tenant: its owner sees it, another
// tenant gets exactly what a missing dataset gets.

const TOKEN_A = 'alpha-token-0123456789abcdef';
const TOKEN_B = 'beta-token-0123456789abcdefgh';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('ingest through the API under tenant tokens', () => {
  let system: TestSystem;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tilefarm-tenant-ingest-'));
    const pixels = Buffer.alloc(64 * 48 * 3, 0);
    for (let i = 0; i < pixels.length; i += 3) pixels[i] = (i / 3) % 256;
    await sharp(pixels, { raw: { width: 64, height: 48, channels: 3 } }).png().toFile(join(root, 'small.png'));
    system = await TestSystem.start({ workers: 1, env: { ACCESS_TOKENS: `${TOKEN_A}:alpha,${TOKEN_B}:beta`, INGEST_ROOT: root } });
  }, 60_000);
  afterAll(async () => {
    await system?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('gives the new dataset to the ingesting tenant and hides it from others', async () => {
    const res = await fetch(`${system.apiUrl}/v1/datasets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(TOKEN_A) },
      body: JSON.stringify({ id: 'alpha-small', source: 'small.png' }),
    });
    expect(res.status).toBe(202);
    const deadline = Date.now() + 30_000;
    let mine = await fetch(`${system.apiUrl}/v1/datasets/alpha-small`, { headers: bearer(TOKEN_A) });
    while (mine.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      mine = await fetch(`${system.apiUrl}/v1/datasets/alpha-small`, { headers: bearer(TOKEN_A) });
    }
    expect(mine.status).toBe(200);
    expect((await system.catalog.get('alpha-small')).tenant).toBe('alpha');
    const theirs = await fetch(`${system.apiUrl}/v1/datasets/alpha-small`, { headers: bearer(TOKEN_B) });
    expect(theirs.status).toBe(404);
    const list = (await (await fetch(`${system.apiUrl}/v1/datasets`, { headers: bearer(TOKEN_B) })).json()) as { datasets: Array<{ id: string }> };
    expect(list.datasets.map((d) => d.id)).not.toContain('alpha-small');
  });

  it('saves named render settings for the owning tenant only, validated against the dataset', async () => {
    const url = `${system.apiUrl}/v1/datasets/alpha-small/settings`;
    const json = { 'content-type': 'application/json' };
    const spec = { channels: [{ index: 0, color: '#ff00ff', window: [0, 200] }] };
    const saved = await fetch(`${url}/${encodeURIComponent('my look')}`, { method: 'PUT', headers: { ...json, ...bearer(TOKEN_A) }, body: JSON.stringify({ spec }) });
    expect(saved.status).toBe(200);
    expect(((await saved.json()) as { name: string }).name).toBe('my look');
    expect((await fetch(`${url}/default`, { method: 'PUT', headers: { ...json, ...bearer(TOKEN_A) }, body: JSON.stringify({ spec }) })).status).toBe(200);
    const list = (await (await fetch(url, { headers: bearer(TOKEN_A) })).json()) as { settings: Array<{ name: string; spec: { channels: Array<{ color?: string }> } }> };
    expect(list.settings.map((x) => x.name)).toEqual(['default', 'my look']);
    expect(list.settings[1]!.spec.channels[0]!.color).toBe('#ff00ff');
    // Another tenant: as if the dataset did not exist, for reading and writing.
    expect((await fetch(url, { headers: bearer(TOKEN_B) })).status).toBe(404);
    expect((await fetch(`${url}/x`, { method: 'PUT', headers: { ...json, ...bearer(TOKEN_B) }, body: JSON.stringify({ spec }) })).status).toBe(404);
    // Bad input: a clear 400 naming the problem.
    const badName = await fetch(`${url}/${encodeURIComponent('../etc')}`, { method: 'PUT', headers: { ...json, ...bearer(TOKEN_A) }, body: JSON.stringify({ spec }) });
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { error: { message: string } }).error.message).toMatch(/name/);
    const badSpec = await fetch(`${url}/x`, { method: 'PUT', headers: { ...json, ...bearer(TOKEN_A) }, body: JSON.stringify({ spec: { channels: [{ index: 9 }] } }) });
    expect(badSpec.status).toBe(400);
    expect(((await badSpec.json()) as { error: { message: string } }).error.message).toMatch(/index/);
    expect((await fetch(`${url}/${encodeURIComponent('my look')}`, { method: 'DELETE', headers: bearer(TOKEN_A) })).status).toBe(204);
  });
});

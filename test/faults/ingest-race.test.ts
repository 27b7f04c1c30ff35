import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { readSourceTile } from '@tilefarm/datasets';
import { TestSystem } from '../support/system';

// Issue 11 item 7: `npm run ingest` of one file and POST /v1/datasets of another with the same id
// both wrote v1, and the manifest of one was served over tiles of the other. Every ingest path now
// takes the same per-id lock and reserves versions from one counter: run both at once, several
// times, and check every published version holds the tiles of the file it says it came from.

const ROOT = resolve(dirname(require.resolve('@tilefarm/api/package.json')), '../..');
const SIZE = 1536;
// Noisy (a flat image would be refused as a decompression bomb), in disjoint ranges: dark < 128 <= bright.
const VALUE = { 'dark.png': 40, 'bright.png': 180 } as const;
type FileName = keyof typeof VALUE;

describe('CLI ingest racing a queued ingest of the same id', () => {
  let system: TestSystem;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tilefarm-race-'));
    for (const [name, value] of Object.entries(VALUE)) {
      const pixels = Buffer.alloc(SIZE * SIZE);
      for (let i = 0; i < pixels.length; i++) pixels[i] = value + Math.floor(Math.random() * 40);
      await sharp(pixels, { raw: { width: SIZE, height: SIZE, channels: 1 } }).png().toFile(join(root, name));
    }
    system = await TestSystem.start({ workers: 1, env: { INGEST_ROOT: root, LOG_LEVEL: 'warn' } });
  }, 120_000);
  afterAll(async () => {
    await system?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs the CLI; `writing` resolves once it is planning (it holds the id from then on). */
  const cli = (file: FileName) => {
    let started!: () => void;
    const writing = new Promise<void>((r) => (started = r));
    const finished = new Promise<{ code: number | null; out: string }>((done) => {
      const child = spawn(process.execPath, [join(ROOT, 'apps/ingest/dist/main.js'), join(root, file), '--id', 'race'], {
        env: { PATH: process.env.PATH ?? '', ...system.env, ENV_FILE: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/: plan|tiles/.test(out)) started();
      });
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', (code) => {
        started();
        done({ code, out });
      });
    });
    return { writing, finished };
  };

  /** Queues an ingest (it holds the id from the 202 on); `finished` resolves with its outcome. */
  const queued = async (file: FileName) => {
    const res = await fetch(`${system.apiUrl}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'race', source: file }) });
    if (res.status !== 202) return { writing: Promise.resolve(), finished: Promise.resolve({ state: 'refused', version: undefined as number | undefined }) };
    const { jobId } = (await res.json()) as { jobId: string };
    const writing = Promise.resolve();
    const finished = system.ingestEnded(jobId, { timeoutMs: 180_000 });
    return { writing, finished };
  };

  it('never publishes one file\'s manifest over another file\'s tiles, nor two ingests as one version', async () => {
    const published: Array<{ version: number; file: FileName; by: string }> = [];
    let refused = 0;
    for (let round = 0; round < 3; round++) {
      const [cliFile, apiFile]: [FileName, FileName] = round % 2 ? ['dark.png', 'bright.png'] : ['bright.png', 'dark.png'];
      // One starts, and the other is started while the first is writing tiles: they overlap.
      let c: { code: number | null; out: string };
      let q: { state: string; version?: number };
      if (round % 2 === 0) {
        const first = cli(cliFile);
        await first.writing;
        const second = await queued(apiFile);
        [c, q] = await Promise.all([first.finished, second.finished]);
      } else {
        const first = await queued(apiFile);
        await first.writing;
        const second = cli(cliFile);
        [c, q] = await Promise.all([second.finished, first.finished]);
      }
      const v = /ingested race v(\d+)/.exec(c.out);
      if (c.code === 0 && v) published.push({ version: Number(v[1]), file: cliFile, by: 'cli' });
      else if (/not available|being ingested/.test(c.out)) refused++;
      else throw new Error(`CLI failed unexpectedly: ${c.out.slice(-1000)}`);
      if (q.state === 'completed') published.push({ version: q.version!, file: apiFile, by: 'queue' });
      else refused++;
    }
    console.log(`FAULT FIGURES cli+queued ingest race: ${JSON.stringify({ rounds: 3, published: published.length, refused })}`);
    expect(published.length).toBeGreaterThan(0);
    // One version per publish.
    expect(new Set(published.map((p) => p.version)).size).toBe(published.length);
    // Each version's manifest and its source tiles come from the same file. Retired versions may
    // be gone already (grace period); the current one must be there.
    const current = await system.catalog.get('race');
    expect(published.map((p) => p.version)).toContain(current.version);
    for (const p of published) {
      const manifest = await system.catalog.getVersion('race', p.version).catch(() => undefined);
      if (!manifest) continue;
      expect(manifest.name).toBe(p.file);
      for (const [x, y] of [[0, 0], [5, 5], [2, 4]] as const) {
        const tile = await readSourceTile(system.store, 'race', p.version, { level: 0, t: 0, z: 0, c: 0, x, y });
        const dark = Array.from(tile.data.slice(0, 1000)).every((v) => v < 128);
        expect([p.version, p.by, x, y, dark]).toEqual([p.version, p.by, x, y, p.file === 'dark.png']);
      }
    }
  }, 600_000);
});

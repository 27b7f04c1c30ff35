import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createDatasets, freePort } from '../support/system';
import { REDIS_URL, dropPrefix, uniquePrefix } from '../support/redis';
import { TestViewer } from '../support/socket-client';

// Issue 11 item 8: `npm start` (the launcher) supervises its children. Workers the launcher
// started itself are killed with SIGKILL 10 times during 1,000 renders: the launcher restarts
// them, nothing else stops, and no tile is lost. A child stuck in a crash loop stops everything.

const ROOT = resolve(__dirname, '../..');
const DATASET = { id: 'burst', width: 512, height: 512, sizeZ: 2, tileSize: 256 as const, dtype: 'uint8' as const };
const LEVELS = [
  { level: 0, cols: 2, rows: 2 },
  { level: 1, cols: 1, rows: 1 },
];
const TILES = 1000;
const KILLS = 10;

interface Launcher {
  child: ChildProcess;
  output: string[];
  apiUrl: string;
  gatewayUrl: string;
  dataDir: string;
  prefix: string;
}

async function startLauncher(env: Record<string, string> = {}): Promise<Launcher> {
  const [port, gatewayPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), 'tilefarm-launcher-'));
  const prefix = uniquePrefix('launch');
  await createDatasets({ kind: 'local', dir: dataDir }, [DATASET]);
  const apiUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(ROOT, 'apps/launcher/dist/main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL,
      REDIS_PREFIX: prefix,
      STORAGE: 'local',
      DATA_DIR: dataDir,
      PORT: String(port),
      GATEWAY_PORT: String(gatewayPort),
      HOST: '127.0.0.1',
      TILE_BASE_URL: apiUrl,
      DEMO_DATASET: 'false',
      WORKERS: '2',
      WORKER_CONCURRENCY: '2',
      RENDER_LOCK_MS: '2000',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  return { child, output, apiUrl, gatewayUrl: `http://127.0.0.1:${gatewayPort}`, dataDir, prefix };
}

async function waitUntilUp(url: string, launcher: Launcher): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered; launcher said:\n${launcher.output.join('').slice(-3000)}`);
}

/** The launcher's own children (from /proc), with the script each one runs. */
function childrenOf(pid: number): Array<{ pid: number; script: string }> {
  const out: Array<{ pid: number; script: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push({ pid: Number(entry), script: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ') });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

async function stopLauncher(l: Launcher | undefined): Promise<number | null> {
  if (!l) return null;
  let code: number | null = l.child.exitCode;
  if (code === null && l.child.signalCode === null) {
    const exited = new Promise<number | null>((r) => l.child.once('exit', (c) => r(c)));
    l.child.kill('SIGTERM');
    const timer = setTimeout(() => l.child.kill('SIGKILL'), 20_000);
    code = await exited;
    clearTimeout(timer);
  }
  rmSync(l.dataDir, { recursive: true, force: true });
  await dropPrefix(l.prefix).catch(() => undefined);
  return code;
}

describe('npm start supervises its processes', () => {
  let launcher: Launcher | undefined;
  let viewer: TestViewer | undefined;
  afterEach(async () => {
    viewer?.close();
    viewer = undefined;
    await stopLauncher(launcher);
    launcher = undefined;
  });

  it(`restarts workers killed ${KILLS} times during ${TILES} renders; 0 tiles lost, api and gateway untouched`, async () => {
    launcher = await startLauncher();
    const l = launcher;
    await waitUntilUp(`${l.apiUrl}/readyz`, l);
    await waitUntilUp(`${l.gatewayUrl}/healthz`, l);
    const before = childrenOf(l.child.pid!);
    const apiAndGateway = before.filter((c) => !c.script.includes('apps/worker/')).map((c) => c.pid).sort();
    expect(before.filter((c) => c.script.includes('apps/worker/'))).toHaveLength(2);

    viewer = new TestViewer(l.gatewayUrl);
    await viewer.connected();
    const keys: string[] = [];
    const started = Date.now();
    for (let s = 0; s < TILES / 10; s++) {
      const spec = { channels: [{ index: 0, color: '#ff00ff', window: [0, 100 + s] }, { index: 1, color: '#00ff00', window: [0, 150] }], format: 'jpeg', quality: 80 };
      const tiles = [];
      for (let z = 0; z < DATASET.sizeZ; z++) for (const lv of LEVELS) for (let y = 0; y < lv.rows; y++) for (let x = 0; x < lv.cols; x++) tiles.push({ level: lv.level, z, t: 0, x, y });
      const ack = await viewer.request({ dataset: DATASET.id, spec, tiles });
      if (!ack.ok) throw new Error(JSON.stringify(ack.error));
      keys.push(...ack.ready.map((r) => r.key), ...ack.pending.map((p) => p.key));
    }
    expect(new Set(keys).size).toBe(TILES);

    // SIGKILL a worker the launcher started (one that has run at least 1 s) every ~800 ms.
    const firstSeen = new Map<number, number>();
    const killed: number[] = [];
    while (killed.length < KILLS && Date.now() - started < 120_000) {
      await new Promise((r) => setTimeout(r, 800));
      const workers = childrenOf(l.child.pid!).filter((c) => c.script.includes('apps/worker/'));
      for (const w of workers) if (!firstSeen.has(w.pid)) firstSeen.set(w.pid, Date.now());
      const victim = workers.filter((w) => Date.now() - firstSeen.get(w.pid)! >= 1000).sort((a, b) => firstSeen.get(a.pid)! - firstSeen.get(b.pid)!)[0];
      if (!victim) continue;
      process.kill(victim.pid, 'SIGKILL');
      killed.push(victim.pid);
    }
    const deliveredDuringKills = viewer.delivered.size;
    expect(killed).toHaveLength(KILLS);

    await viewer.waitFor(keys, 120_000);
    const lost = keys.filter((k) => !viewer!.delivered.has(k));
    // The launcher logs a restart when it sees the exit: the last kill's line may still be on its way.
    const restartLinesNow = () => l.output.join('').split('\n').filter((x) => /\[launcher\] worker-\d exited \(SIGKILL\).*restarting in \d+ ms/.test(x));
    for (const until = Date.now() + 15_000; restartLinesNow().length < KILLS && Date.now() < until; ) await new Promise((r) => setTimeout(r, 200));
    const restartLines = restartLinesNow();
    // Workers killed last may still be in their restart backoff (it doubles per crash): wait for both.
    const workersRunning = () => childrenOf(l.child.pid!).filter((c) => c.script.includes('apps/worker/')).length;
    for (const until = Date.now() + 30_000; workersRunning() < 2 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 200));
    const after = childrenOf(l.child.pid!);
    const figures = {
      kills: killed.length,
      restartsLogged: restartLines.length,
      tilesRequested: TILES,
      tilesDeliveredWhileKilling: deliveredDuringKills,
      tilesLost: lost.length,
      failed: viewer.failed.size,
      duplicateDeliveries: viewer.deliveries.length - new Set(viewer.deliveries).size,
      seconds: (Date.now() - started) / 1000,
    };
    console.log(`FAULT FIGURES launcher kill -9: ${JSON.stringify(figures)}`);
    expect(lost).toEqual([]);
    expect(viewer.failed.size).toBe(0);
    expect(figures.duplicateDeliveries).toBe(0);
    expect(restartLines).toHaveLength(KILLS);
    expect(l.child.exitCode).toBeNull();
    // The API and the gateway are the same processes as before; two workers run again.
    expect(after.filter((c) => !c.script.includes('apps/worker/')).map((c) => c.pid).sort()).toEqual(apiAndGateway);
    expect(after.filter((c) => c.script.includes('apps/worker/'))).toHaveLength(2);

    // SIGTERM still stops everything: the launcher exits 0 and leaves no child behind.
    const children = after.map((c) => c.pid);
    expect(await stopLauncher(l)).toBe(0);
    launcher = undefined;
    expect(children.filter((pid) => childrenOf(l.child.pid!).some((c) => c.pid === pid))).toEqual([]);
    for (const pid of children) expect(() => process.kill(pid, 0)).toThrow();
  }, 240_000);

  it('stops everything, exit code 1, when a child crashes in a loop', async () => {
    // Workers refuse this setting at start (a config error), every time: a crash loop.
    launcher = await startLauncher({ WORKER_CONCURRENCY: '0', RESTART_BACKOFF_MS: '50', CRASH_LOOP_COUNT: '3' });
    const l = launcher;
    const code = await new Promise<number | null>((r) => l.child.once('exit', (c) => r(c)));
    const text = l.output.join('');
    expect(code).toBe(1);
    expect(text).toMatch(/\[launcher\] worker-\d exited \(code 1\).*restarting in 50 ms/);
    expect(text).toMatch(/\[launcher\] worker-\d exited \(code 1\), crash 3 within 60 s: crash loop, stopping everything/);
  }, 120_000);
});

import { spawn } from 'node:child_process';

/**
 * A separate process fetching `url` in a sequential loop until stopped, so the latency it sees is
 * the server's, not this (busy) process's event loop. `stop()` returns every latency in ms.
 * Strict (the default): a non-200 answer ends the probe and `stop()` throws.
 */
export function startLatencyProbe(url: string, options: { strict?: boolean } = {}) {
  const strict = options.strict ?? true;
  const code = `
    const lat = []; let stop = false;
    process.stdin.on('end', () => { stop = true; }); process.stdin.resume();
    (async () => {
      while (!stop) {
        const t0 = performance.now();
        try {
          const res = await fetch(${JSON.stringify(url)});
          await res.arrayBuffer();
          if (${strict} && res.status !== 200) { console.log(JSON.stringify({ error: res.status })); process.exit(1); }
        } catch (e) {
          if (${strict}) { console.log(JSON.stringify({ error: String(e) })); process.exit(1); }
        }
        lat.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
      console.log(JSON.stringify(lat));
    })();`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    async stop(): Promise<number[]> {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      await exited;
      const parsed = JSON.parse(out) as number[] | { error: number | string };
      if (!Array.isArray(parsed)) throw new Error(`health check answered ${parsed.error}`);
      return parsed;
    },
  };
}

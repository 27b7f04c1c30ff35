import { spawn } from 'node:child_process';
import { join } from 'node:path';

// The one way api, gateway and worker start and stop, run in a real child process.

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(mode: string, signalAfterStart?: NodeJS.Signals, script = 'runner-child.js', env: Record<string, string> = {}): Promise<Outcome> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(__dirname, 'support', script)], { env: { ...process.env, MODE: mode, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (signalAfterStart && stdout.includes('"msg":"started"')) {
      child.kill(signalAfterStart);
      signalAfterStart = undefined;
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, ms: performance.now() - started })));
}

describe('runProcess', () => {
  it('a bad configuration prints every problem and exits 1 before starting anything', async () => {
    const out = await run('bad-config');
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('PORT: too big');
    expect(out.stderr).toContain('REDIS_URL: not a URL');
    expect(out.stdout).not.toContain('started');
  });

  it('a failed start is logged and exits 1', async () => {
    const out = await run('start-fails');
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/"level":60.*start failed/);
    expect(out.stdout).toContain('redis refused');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s stops once, with the configured deadline, and exits 0', async (signal) => {
    const out = await run('normal', signal);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`"signal":"${signal}"`);
    expect(out.stdout).toContain('{"stopCalled":true,"deadlineMs":200,"stopping":true}');
  });

  it('a SIGTERM while the modules still load stops the process once started, exit 0 (the apps import early-signals first)', async () => {
    const out = await run('normal', undefined, 'early-signal-child.js');
    expect({ code: out.code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
    expect(out.stdout).toContain('"msg":"started"');
    expect(out.stdout).toContain('"signal":"SIGTERM"');
    expect(out.stdout).toContain('{"stopCalled":true,"deadlineMs":200,"stopping":true}');
  });

  it('without that first import, the same signal kills the process as it loads: nothing drained, no exit code', async () => {
    const out = await run('normal', undefined, 'early-signal-child.js', { EARLY: '0' });
    expect(out.code).toBeNull();
    expect(out.stdout).not.toContain('started');
  });

  it('a stop that never ends is abandoned after its deadline plus 5 s, exit 1', async () => {
    const out = await run('stop-hangs', 'SIGTERM');
    expect(out.code).toBe(1);
    expect(out.stdout).toContain('stop overran its deadline');
    expect(out.ms).toBeGreaterThan(5000);
  }, 20_000);
});

import { Supervisor, type RestartPolicy, type SupervisedProcess, type SupervisorClock } from '../src/supervisor';

// Issue 11 item 8: the launcher restarts crashed children with backoff and stops only on a crash
// loop or when told to. Fake processes and a fake clock: this is the policy alone.

class FakeProcess implements SupervisedProcess {
  private listener?: (code: number | null, signal: string | null) => void;
  readonly signals: string[] = [];
  constructor(readonly name: string) {}
  onExit(listener: (code: number | null, signal: string | null) => void): void {
    this.listener = listener;
  }
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    this.exit(null, signal);
  }
  exit(code: number | null, signal: string | null = null): void {
    this.listener?.(code, signal);
  }
}

class FakeClock implements SupervisorClock {
  t = 0;
  timers: Array<{ at: number; run: () => void; cancelled: boolean }> = [];
  now(): number {
    return this.t;
  }
  setTimeout(run: () => void, ms: number): { cancel(): void } {
    const timer = { at: this.t + ms, run, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => !x.cancelled && x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = next.at;
      next.cancelled = true;
      next.run();
    }
    this.t = until;
  }
}

const POLICY: RestartPolicy = { initialBackoffMs: 100, maxBackoffMs: 1000, stableAfterMs: 10_000, crashLoopCount: 4, crashLoopWindowMs: 5000 };

function setup(policy = POLICY) {
  const clock = new FakeClock();
  const started: FakeProcess[] = [];
  const lines: string[] = [];
  const gaveUp: string[] = [];
  const supervisor = new Supervisor(
    (name) => {
      const p = new FakeProcess(name);
      started.push(p);
      return p;
    },
    (l) => lines.push(l),
    (name) => gaveUp.push(name),
    policy,
    clock,
  );
  const latest = (name: string) => started.filter((p) => p.name === name).pop()!;
  return { clock, started, lines, gaveUp, supervisor, latest };
}

describe('Supervisor', () => {
  it('restarts a crashed child after a backoff, and logs it', () => {
    const { clock, started, lines, supervisor, latest } = setup();
    supervisor.start('api');
    supervisor.start('worker-1');
    latest('worker-1').exit(null, 'SIGKILL');
    expect(started).toHaveLength(2);
    clock.advance(99);
    expect(started).toHaveLength(2);
    clock.advance(1);
    expect(started.map((p) => p.name)).toEqual(['api', 'worker-1', 'worker-1']);
    expect(lines).toEqual([expect.stringMatching(/^worker-1 exited \(SIGKILL\) after 0\.0 s; restarting in 100 ms \(crash 1 within 5 s\)$/)]);
    expect(supervisor.restarts.get('worker-1')).toBe(1);
  });

  it('doubles the backoff per crash in a row, capped, and starts over once a child ran stably', () => {
    const { clock, lines, supervisor, latest } = setup({ ...POLICY, crashLoopCount: 100 });
    supervisor.start('gateway');
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      latest('gateway').exit(1);
      delays.push(Number(/restarting in (\d+) ms/.exec(lines.at(-1)!)![1]));
      clock.advance(2000);
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    clock.advance(10_000); // ran stably
    latest('gateway').exit(1);
    expect(lines.at(-1)).toMatch(/restarting in 100 ms/);
  });

  it('gives up on a crash loop: crashLoopCount crashes of one child within the window', () => {
    const { clock, gaveUp, lines, supervisor, latest, started } = setup();
    supervisor.start('worker-1');
    for (let i = 0; i < 3; i++) {
      latest('worker-1').exit(1);
      clock.advance(1000);
    }
    expect(gaveUp).toEqual([]);
    latest('worker-1').exit(1);
    expect(gaveUp).toEqual(['worker-1']);
    expect(lines.at(-1)).toMatch(/crash 4 within 5 s: crash loop, stopping everything/);
    clock.advance(10_000);
    expect(started).toHaveLength(4); // no restart after giving up's crash
  });

  it('does not count crashes older than the window towards a loop', () => {
    const { clock, gaveUp, supervisor, latest } = setup();
    supervisor.start('worker-1');
    for (let i = 0; i < 10; i++) {
      latest('worker-1').exit(null, 'SIGKILL');
      clock.advance(2000); // 10 crashes, never 4 within 5 s
    }
    expect(gaveUp).toEqual([]);
    expect(supervisor.restarts.get('worker-1')).toBe(10);
  });

  it('stop() signals children in order, never restarts them, and cancels a pending restart', async () => {
    const { clock, supervisor, latest, started } = setup();
    supervisor.start('api');
    supervisor.start('worker-1');
    latest('worker-1').exit(null, 'SIGKILL'); // restart pending
    await supervisor.stop();
    expect(latest('api').signals).toEqual(['SIGTERM']);
    clock.advance(10_000);
    expect(started).toHaveLength(2);
  });
});

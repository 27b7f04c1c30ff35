/** One running child as the supervisor sees it (a real OS process in main.ts, a fake in tests). */
export interface SupervisedProcess {
  /** Called once, when the process has exited (code or signal). */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(signal: NodeJS.Signals): void;
}

/** Starts the named child; called again for every restart. */
export type StartProcess = (name: string) => SupervisedProcess;

export interface SupervisorClock {
  now(): number;
  setTimeout(run: () => void, ms: number): { cancel(): void };
}

export interface RestartPolicy {
  /** Delay before the first restart after a crash; doubles with each crash in a row. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** A child that ran this long before it crashed is "stable" again: its backoff starts over. */
  stableAfterMs: number;
  /** This many crashes of one child within crashLoopWindowMs is a crash loop: everything stops. */
  crashLoopCount: number;
  crashLoopWindowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialBackoffMs: 250,
  maxBackoffMs: 10_000,
  stableAfterMs: 30_000,
  crashLoopCount: 10,
  crashLoopWindowMs: 60_000,
};

interface Child {
  name: string;
  process?: SupervisedProcess;
  startedAt: number;
  crashesInARow: number;
  recentCrashes: number[];
  pendingRestart?: { cancel(): void };
  exited: Promise<void>;
  markExited: () => void;
}

/**
 * Keeps a set of named children running: a child that exits while the supervisor is not stopping
 * is restarted after an exponential backoff (logged); a child that crashes crashLoopCount times in
 * crashLoopWindowMs makes the supervisor give up and stop everything (onGiveUp). stop() (SIGTERM)
 * stops children in the order given and never restarts them.
 */
export class Supervisor {
  private readonly children = new Map<string, Child>();
  private stopping = false;

  constructor(
    private readonly startProcess: StartProcess,
    private readonly log: (line: string) => void,
    private readonly onGiveUp: (name: string) => void,
    private readonly policy: RestartPolicy = DEFAULT_RESTART_POLICY,
    private readonly clock: SupervisorClock = realClock,
  ) {}

  get isStopping(): boolean {
    return this.stopping;
  }

  /** How many times each child has been restarted so far. */
  readonly restarts = new Map<string, number>();

  start(name: string): void {
    if (this.children.has(name)) throw new Error(`${name} is already supervised`);
    const child: Child = { name, startedAt: 0, crashesInARow: 0, recentCrashes: [], exited: Promise.resolve(), markExited: () => undefined };
    this.children.set(name, child);
    this.launch(child);
  }

  /** Stops the named children (all, in start order, when none named) and resolves once they exited. */
  async stop(names: string[] = [...this.children.keys()], signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    const targets = names.map((n) => this.children.get(n)).filter((c): c is Child => c !== undefined);
    for (const c of targets) {
      c.pendingRestart?.cancel();
      c.pendingRestart = undefined;
      c.process?.kill(signal);
    }
    await Promise.all(targets.map((c) => c.exited));
  }

  private launch(child: Child): void {
    child.startedAt = this.clock.now();
    let running = true;
    child.exited = new Promise((r) => (child.markExited = () => ((running = false), r())));
    const proc = this.startProcess(child.name);
    child.process = proc;
    proc.onExit((code, signal) => {
      if (!running) return;
      child.markExited();
      child.process = undefined;
      if (!this.stopping) this.crashed(child, code, signal);
    });
  }

  private crashed(child: Child, code: number | null, signal: string | null): void {
    const now = this.clock.now();
    const ranMs = now - child.startedAt;
    child.crashesInARow = ranMs >= this.policy.stableAfterMs ? 1 : child.crashesInARow + 1;
    child.recentCrashes = [...child.recentCrashes.filter((t) => now - t < this.policy.crashLoopWindowMs), now];
    const how = signal ?? `code ${code}`;
    if (child.recentCrashes.length >= this.policy.crashLoopCount) {
      this.log(`${child.name} exited (${how}), crash ${child.recentCrashes.length} within ${this.policy.crashLoopWindowMs / 1000} s: crash loop, stopping everything`);
      this.onGiveUp(child.name);
      return;
    }
    const delay = Math.min(this.policy.maxBackoffMs, this.policy.initialBackoffMs * 2 ** (child.crashesInARow - 1));
    this.log(`${child.name} exited (${how}) after ${(ranMs / 1000).toFixed(1)} s; restarting in ${delay} ms (crash ${child.recentCrashes.length} within ${this.policy.crashLoopWindowMs / 1000} s)`);
    child.pendingRestart = this.clock.setTimeout(() => {
      child.pendingRestart = undefined;
      if (this.stopping) return;
      this.restarts.set(child.name, (this.restarts.get(child.name) ?? 0) + 1);
      this.launch(child);
    }, delay);
  }
}

const realClock: SupervisorClock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const t = setTimeout(run, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

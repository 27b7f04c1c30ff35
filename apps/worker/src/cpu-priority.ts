import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Lowers this process's CPU priority to `nice` (0-19; never raises it). On Linux a nice value
 * belongs to each thread, so every thread that exists now is lowered (V8's and libuv's included);
 * threads started later (sharp's, libuv's pool) inherit it from the thread that starts them.
 * Returns how many threads it saw, or the reason it could not.
 */
export function lowerCpuPriority(nice: number): { threads: number } | { error: string } {
  try {
    let threads: number[];
    try {
      threads = readdirSync('/proc/self/task').map(Number);
    } catch {
      threads = [0]; // not Linux: the whole process
    }
    for (const tid of threads) {
      if (getPriority(tid) < nice) setPriority(tid, nice);
    }
    return { threads: threads.length };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

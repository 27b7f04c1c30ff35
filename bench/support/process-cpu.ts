import { readFileSync, readdirSync } from 'node:fs';

/** CPU seconds (user + system) of one process: all its threads, and its main (JS) thread alone. */
export interface ProcessCpu {
  total: number;
  main: number;
}

/** The fields of a /proc stat file after the command name (field 3 of proc(5) is index 0). */
function statFields(path: string): string[] {
  // The command name may contain spaces and parentheses: fields start after the last ") ".
  const text = readFileSync(path, 'utf8');
  return text.slice(text.lastIndexOf(') ') + 2).split(' ');
}

function statSeconds(path: string): number {
  const fields = statFields(path);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Minor page faults of one process so far (memory touched for the first time); Linux only. */
export function minorFaults(pid: number | 'self' = 'self'): number {
  return Number(statFields(`/proc/${pid}/stat`)[7]);
}

/** Linux only (/proc). The process total includes threads that have already exited. */
export function processCpu(pid: number): ProcessCpu {
  try {
    return { total: statSeconds(`/proc/${pid}/stat`), main: statSeconds(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return { total: NaN, main: NaN };
  }
}

/** CPU seconds per thread name (comm) of one process, e.g. libuv's pool vs V8's helpers vs libvips. */
export function threadCpuByName(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const key = tid === String(pid) ? 'main' : name;
      out.set(key, (out.get(key) ?? 0) + statSeconds(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // the thread ended between listing and reading
    }
  }
  return out;
}

export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

import IORedis from 'ioredis';

/** What one Redis server has done so far: calls per command, network bytes, CPU seconds. */
export interface RedisSnapshot {
  calls: Map<string, number>;
  inputBytes: number;
  outputBytes: number;
  cpuSeconds: number;
}

function fields(info: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of info.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** Read with INFO; the INFO calls themselves are subtracted by `diffRedis` (one per snapshot). */
export async function redisSnapshot(url: string): Promise<RedisSnapshot> {
  const redis = new IORedis(url, { maxRetriesPerRequest: 1 });
  try {
    const info = fields(await redis.info('all'));
    const calls = new Map<string, number>();
    for (const [k, v] of info) {
      if (!k.startsWith('cmdstat_')) continue;
      calls.set(k.slice('cmdstat_'.length), Number(/calls=(\d+)/.exec(v)?.[1] ?? 0));
    }
    return {
      calls,
      inputBytes: Number(info.get('total_net_input_bytes') ?? NaN),
      outputBytes: Number(info.get('total_net_output_bytes') ?? NaN),
      cpuSeconds: Number(info.get('used_cpu_user') ?? NaN) + Number(info.get('used_cpu_sys') ?? NaN),
    };
  } finally {
    redis.disconnect();
  }
}

export interface RedisDelta {
  calls: Map<string, number>;
  totalCalls: number;
  inputBytes: number;
  outputBytes: number;
  cpuSeconds: number;
}

export function diffRedis(a: RedisSnapshot, b: RedisSnapshot): RedisDelta {
  const calls = new Map<string, number>();
  for (const [k, v] of b.calls) {
    const d = v - (a.calls.get(k) ?? 0) - (k === 'info' ? 1 : 0);
    if (d > 0) calls.set(k, d);
  }
  return {
    calls,
    totalCalls: [...calls.values()].reduce((s, v) => s + v, 0),
    inputBytes: b.inputBytes - a.inputBytes,
    outputBytes: b.outputBytes - a.outputBytes,
    cpuSeconds: b.cpuSeconds - a.cpuSeconds,
  };
}

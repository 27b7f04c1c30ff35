/**
 * Splits a V8 .cpuprofile (node --cpu-prof: the main JS thread only) into the stages of a tile's
 * life. Each sample goes to the first rule that matches its own frame; a frame no rule names
 * (node internals, anonymous callbacks) takes the stage of the nearest caller that has one.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface StageRule {
  stage: string;
  url?: RegExp;
  fn?: RegExp;
}

/**
 * Milliseconds of main-thread CPU per stage ('idle' left out), counting only samples inside
 * `window` (µs of CLOCK_MONOTONIC, which V8's profile timestamps and process.hrtime share on Linux).
 */
export function stageTimes(profile: CpuProfile, rules: StageRule[], fallback = 'other (node internals, timers)', window?: { fromUs: number; toUs: number }): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map<number, string>();
  const own = (n: ProfileNode): string | undefined => {
    const { url, functionName } = n.callFrame;
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(garbage collector)') return 'garbage collection';
    if (functionName === '(program)') return 'native, outside JS (program)';
    for (const r of rules) {
      if ((r.url === undefined || r.url.test(url)) && (r.fn === undefined || r.fn.test(functionName))) return r.stage;
    }
    return undefined;
  };
  const stageOf = (id: number): string => {
    const hit = memo.get(id);
    if (hit) return hit;
    const chain: number[] = [];
    let cur: number | undefined = id;
    let stage: string | undefined;
    while (cur !== undefined) {
      const known = memo.get(cur);
      if (known) {
        stage = known;
        break;
      }
      chain.push(cur);
      stage = own(byId.get(cur)!);
      if (stage) break;
      cur = parent.get(cur);
    }
    const s = stage ?? fallback;
    for (const c of chain) memo.set(c, s);
    return s;
  };
  const out = new Map<string, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    const s = stageOf(id);
    if (s === 'idle') return;
    out.set(s, (out.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return out;
}

const REDIS_CLIENT = /node_modules\/(ioredis|redis-parser|denque|cluster-key-slot|standard-as-callback|@ioredis)\//;

/** libuv file requests: the main thread's part (dispatch and completion) of every open/read/stat/write/close. */
const FILE_CALLS: StageRule = { stage: 'file system calls (source reads, tile write, existence check)', url: /^$/, fn: /^(open|read|close|fstat|stat|lstat|mkdir|rename|readFileUtf8)$/ };

/** Stages of a render worker's main thread. */
export const WORKER_STAGES: StageRule[] = [
  FILE_CALLS,
  { stage: 'source reads (fetch + decode)', url: /datasets\/dist\/(source-tile-codec|dataset-catalog|storage-layout)/ },
  { stage: 'source reads (fetch + decode)', url: /storage\/dist\/local-object-store/, fn: /^(get|read)/ },
  { stage: 'source reads (fetch + decode)', url: /render\/dist\/source-cache/ },
  { stage: 'storage write + existence check', url: /storage\/dist\/local-object-store/ },
  { stage: 'storage write + existence check', url: /storage\/dist\// },
  { stage: 'composite', url: /render\/dist\/(pixel-ops|pixel-kernels|formula|windows|render-plan)/ },
  { stage: 'encode (sharp, JS side)', url: /node_modules\/sharp\/|render\/dist\/sharp-tile-encoder/ },
  { stage: 'render pipeline glue', url: /render\/dist\/renderer/ },
  { stage: 'BullMQ job lifecycle', url: /node_modules\/bullmq\/|queue\/dist\/bullmq-/ },
  { stage: 'demand/event bookkeeping', url: /queue\/dist\/redis|worker\/dist\/render-service/ },
  { stage: 'Redis client (all commands)', url: REDIS_CLIENT },
  { stage: 'validation (zod)', url: /node_modules\/zod\// },
  { stage: 'metrics + logs', url: /node_modules\/(prom-client|pino|tdigest|bintrees)\/|telemetry\/dist/ },
  { stage: 'msgpack/JSON', url: /node_modules\/msgpackr/ },
];

/** Stages of a gateway's main thread. */
export const GATEWAY_STAGES: StageRule[] = [
  FILE_CALLS,
  { stage: 'socket emit + receive (socket.io, ws)', url: /node_modules\/(socket\.io|socket\.io-parser|socket\.io-adapter|engine\.io|engine\.io-parser|ws)\// },
  { stage: 'storage existence checks', url: /storage\/dist\// },
  { stage: 'BullMQ enqueue/withdraw', url: /node_modules\/bullmq\/|queue\/dist\/bullmq-/ },
  { stage: 'demand/event bookkeeping', url: /queue\/dist\/redis|tile-requests\/dist\/|gateway\/dist\// },
  { stage: 'Redis client (all commands)', url: REDIS_CLIENT },
  { stage: 'validation (zod)', url: /node_modules\/zod\// },
  { stage: 'planning (keys, specs, catalog)', url: /datasets\/dist\/|contracts\/dist\/|render\/dist\// },
  { stage: 'metrics + logs', url: /node_modules\/(prom-client|pino)\/|telemetry\/dist/ },
];

/** Stages of the API's main thread (under bench:e2e: one GET /tiles/<key> per tile, and the tile events it hears). */
export const API_STAGES: StageRule[] = [
  FILE_CALLS,
  { stage: 'tile GET route (stored tile, ETag)', url: /api\/dist\/routes\/tiles/ },
  { stage: 'access control (paths, signatures, tokens)', url: /api\/dist\/access|tile-requests\/dist\/tenant-access/ },
  { stage: 'security headers (helmet), CORS', url: /node_modules\/(helmet|cors)\/|api\/dist\/cors/ },
  { stage: 'storage read', url: /storage\/dist\// },
  { stage: 'tile events heard (pub/sub), sweep', url: /queue\/dist\/|tile-requests\/dist\// },
  { stage: 'Redis client (all commands)', url: REDIS_CLIENT },
  { stage: 'validation (zod)', url: /node_modules\/zod\// },
  { stage: 'metrics + logs', url: /node_modules\/(prom-client|pino|tdigest|bintrees)\/|telemetry\/dist/ },
  { stage: 'ETag hash (crypto)', url: /^node:internal\/crypto\// },
  { stage: 'body parsing (express.json)', url: /node_modules\/(body-parser|raw-body|type-is|content-type|media-typer|iconv-lite)\// },
  { stage: 'express: routing, request and response helpers', url: /node_modules\/(express|router|path-to-regexp|finalhandler|send|etag|fresh|range-parser|qs|parseurl|mime-types|mime-db|content-disposition|vary|on-finished|depd|encodeurl|escape-html|statuses|accepts|negotiator|cookie|proxy-addr|forwarded|ipaddr\.js)\// },
  { stage: 'node HTTP server and sockets', url: /^node:(_http_|net$|internal\/(http|stream_base_commons|streams\/)|stream$)/ },
];

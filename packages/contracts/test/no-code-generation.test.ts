import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

// No schema check may generate code at run time (zod compiles object-schema fast paths with
// `new Function`; index.ts turns that off). Counted in a fresh process whose Function constructor
// records every use; the control, plain zod without our setting, does use it.
function functionConstructions(load: string): { count: number; parsed: [boolean, boolean] } {
  const script = `
    let count = 0;
    const Real = Function;
    globalThis.Function = new Proxy(Real, { construct: (t, a) => (count++, Reflect.construct(t, a)), apply: (t, self, a) => (count++, Reflect.apply(t, self, a)) });
    ${load}
    const good = Schema.safeParse({ channels: [{ index: 0, color: '#ff0000', window: [0, 100] }], format: 'jpeg' });
    const bad = Schema.safeParse({ channels: 'nope' });
    for (let i = 0; i < 100; i++) Schema.safeParse({ channels: [{ index: i % 4 }], format: 'png' });
    console.log(JSON.stringify({ count, parsed: [good.success, bad.success] }));`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: resolve(__dirname, '../../..') });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout) as { count: number; parsed: [boolean, boolean] };
}

it('parsing and refusing with the contracts never constructs a Function (plain zod does)', () => {
  const ours = functionConstructions(`const { RenderSpec: Schema } = require(${JSON.stringify(resolve(__dirname, '../dist/index.js'))});`);
  expect(ours).toEqual({ count: 0, parsed: [true, false] });
  const plain = functionConstructions(`const { z } = require('zod'); const Schema = z.object({ channels: z.array(z.object({ index: z.number() }).passthrough()), format: z.string() });`);
  expect(plain.count).toBeGreaterThan(0);
});

import { z } from 'zod';

// zod compiles fast paths for object schemas with `new Function`. No tilefarm process or page
// generates code at run time (user formulas are parsed and interpreted, never evaluated): every
// process and the viewer load this package first, so code generation is off everywhere, and a
// strict Content-Security-Policy (no 'unsafe-eval') holds for the viewer.
z.config({ jitless: true });

export * from './errors';
export * from './zod-errors';
export * from './tile';
export * from './dataset';
export * from './render-spec';
export * from './jobs';
export * from './socket-events';
export * from './http';
export * from './pixels';
export * from './render-settings';
export * from './uploads';

import { z } from 'zod';
import { HexColor } from './dataset';
import { ImageFormat } from './tile';

export const LUT_NAMES = ['gray', 'fire', 'viridis', 'magma', 'inferno', 'cividis', 'ice'] as const;
export const LutName = z.enum(LUT_NAMES);
export type LutName = z.infer<typeof LutName>;

export const SPEC_LIMITS = {
  maxChannels: 64,
  maxFormulaLength: 512,
  maxFormulaNodes: 256,
  maxProjectionDepth: 1024,
} as const;

const AUTO_WINDOW = /^auto(?::(0(?:\.\d+)?))?$/;

/** `[lo, hi]` in raw units, `"auto"` (min..max of the plane) or `"auto:F"` (F..1-F percentiles). */
export const Window = z.union([
  z
    .tuple([z.number().finite(), z.number().finite()])
    .refine(([lo, hi]) => lo <= hi, { message: 'window lo must not exceed hi' }),
  z.string().regex(AUTO_WINDOW, 'must be [lo, hi], "auto" or "auto:F" with 0 <= F < 0.5').refine(
    (s) => {
      const f = AUTO_WINDOW.exec(s)?.[1];
      return f === undefined || Number(f) < 0.5;
    },
    { message: 'auto percentile trim must be below 0.5' },
  ),
]);
export type Window = z.infer<typeof Window>;

/** Parse "auto" / "auto:0.02" into the trimmed fraction, or undefined for explicit windows. */
export function autoWindowTrim(window: Window): number | undefined {
  if (typeof window !== 'string') return undefined;
  const f = AUTO_WINDOW.exec(window)?.[1];
  return f === undefined ? 0 : Number(f);
}

export const ChannelSpec = z
  .object({
    index: z.number().int().min(0).max(1023).optional(),
    label: z.string().min(1).max(128).optional(),
    formula: z.string().min(1).max(SPEC_LIMITS.maxFormulaLength).optional(),
    color: HexColor.optional(),
    lut: LutName.optional(),
    /** Omitted: the dataset's default window for source channels, "auto" for formulas. */
    window: Window.optional(),
    gamma: z.number().positive().max(10).default(1),
    invert: z.boolean().default(false),
    active: z.boolean().default(true),
  })
  .strict()
  .superRefine((c, ctx) => {
    const kinds = [c.index !== undefined, c.label !== undefined, c.formula !== undefined].filter(Boolean).length;
    if (kinds !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a channel needs exactly one of "index", "label" or "formula"' });
    }
    if (c.color !== undefined && c.lut !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'give "color" or "lut", not both' });
    }
  });
export type ChannelSpec = z.infer<typeof ChannelSpec>;

export const Projection = z
  .object({
    type: z.enum(['max', 'mean', 'sum']),
    z: z
      .tuple([z.number().int().min(0), z.number().int().min(0)])
      .refine(([a, b]) => a <= b, { message: 'projection z range must be [from, to] with from <= to' })
      .refine(([a, b]) => b - a < SPEC_LIMITS.maxProjectionDepth, { message: `projection spans at most ${SPEC_LIMITS.maxProjectionDepth} slices` }),
  })
  .strict();
export type Projection = z.infer<typeof Projection>;

/** Render spec v1: what a tile looks like. Its canonical form hashes to the spec id. */
export const RenderSpec = z
  .object({
    v: z.literal(1).default(1),
    channels: z.array(ChannelSpec).min(1).max(SPEC_LIMITS.maxChannels),
    composite: z.enum(['add', 'max']).default('add'),
    projection: Projection.optional(),
    format: ImageFormat.default('jpeg'),
    quality: z.number().int().min(1).max(100).default(85),
  })
  .strict();
export type RenderSpec = z.infer<typeof RenderSpec>;
export type RenderSpecInput = z.input<typeof RenderSpec>;

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Canonical JSON of a parsed spec (defaults filled, keys ordered): equal specs give equal strings. */
export function canonicalSpecJson(spec: RenderSpec): string {
  return JSON.stringify(sortKeys(spec));
}

import { type DatasetManifest, type RenderSpec } from '@tilefarm/contracts';
import { createHash } from 'node:crypto';
import { canonicalSpecJson } from '@tilefarm/contracts';
import { parseFormula } from './formula-parser';
import { resolveRenderPlan } from './render-plan';
import { type RenderCost, renderCostOf } from './render-cost';

/** 's' + the first 16 hex digits of sha256(canonical JSON): equal specs get equal ids. */
export function specIdOf(spec: RenderSpec): string {
  return `s${createHash('sha256').update(canonicalSpecJson(spec)).digest('hex').slice(0, 16)}`;
}

/** Dataset-independent: every formula parses. Throws TilefarmError('invalid_formula', 'channels.2.formula: ... at column N'). */
export function checkFormulaSyntax(spec: RenderSpec): void {
  spec.channels.forEach((c, i) => {
    if (c.formula !== undefined) parseFormula(c.formula, `channels.${i}.formula`);
  });
}

/** The spec fits the dataset: channel indices and labels exist, formulas parse and name real channels, projection within Z. */
export function validateSpecForDataset(spec: RenderSpec, manifest: DatasetManifest): RenderCost {
  return renderCostOf(resolveRenderPlan(spec, manifest));
}

/** Dataset channels a render of this spec reads (active channels and formula inputs), ascending. */
export function sourceChannelsNeeded(spec: RenderSpec, manifest: DatasetManifest): number[] {
  return resolveRenderPlan(spec, manifest).sourceChannels;
}

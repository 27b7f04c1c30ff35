import { TilefarmError } from '@tilefarm/contracts';
import type { FormulaNode } from './formula-ast';
import type { RenderPlan } from './render-plan';

/**
 * What one render of a plan costs, in sample operations: every pixel of every source channel is
 * read (and folded) once per z slice of the projection, every formula node runs once per pixel,
 * and every channel is windowed and painted once per pixel. Compositing time is close to linear
 * in this count (about 1–5 ns per operation on one core), so a ceiling on it is a ceiling on the
 * synchronous work one request can cause. Independent of the tile: multiply by its pixels.
 */
export interface RenderCost {
  /** Channels drawn (active channels of the spec). */
  channels: number;
  /** Dataset channels read. */
  sourceChannels: number;
  /** Formula nodes evaluated per pixel, over every active formula channel (after constant folding). */
  formulaNodes: number;
  /** Z slices read per source channel (1 without a projection). */
  zDepth: number;
  /** Sample operations per output pixel: sourceChannels × zDepth + formulaNodes + channels. */
  perPixel: number;
}

export function formulaNodeCount(node: FormulaNode): number {
  switch (node.type) {
    case 'neg':
      return 1 + formulaNodeCount(node.arg);
    case 'bin':
      return 1 + formulaNodeCount(node.left) + formulaNodeCount(node.right);
    case 'call':
      return node.args.reduce((n, a) => n + formulaNodeCount(a), 1);
    default:
      return 1;
  }
}

export function renderCostOf(plan: RenderPlan): RenderCost {
  const channels = plan.channels.length;
  const sourceChannels = plan.sourceChannels.length;
  const formulaNodes = plan.channels.reduce((n, ch) => n + (ch.input.kind === 'formula' ? formulaNodeCount(ch.input.ast) : 0), 0);
  const zDepth = plan.projection ? plan.projection.z1 - plan.projection.z0 + 1 : 1;
  return { channels, sourceChannels, formulaNodes, zDepth, perPixel: sourceChannels * zDepth + formulaNodes + channels };
}

const fmt = (n: number) => (n >= 1e6 ? n.toExponential(2).replace('e+', 'e') : n.toLocaleString('en-US'));

/**
 * Refuses a render whose cost over `pixels` output pixels exceeds `ceiling`, naming the factor that
 * dominates (z depth × source channels, formula nodes, channels, or the pixels of a large region).
 */
export function checkRenderCost(cost: RenderCost, pixels: number, ceiling: number, what = 'a tile'): void {
  const total = cost.perPixel * pixels;
  if (total <= ceiling) return;
  const terms: [string, number][] = [
    [`z depth: ${cost.zDepth} slices of ${cost.sourceChannels} source channel${cost.sourceChannels === 1 ? '' : 's'} read per pixel; project over fewer slices`, cost.sourceChannels * cost.zDepth],
    [`formula nodes: ${cost.formulaNodes} evaluated per pixel across the formula channels; use fewer or shorter formulas`, cost.formulaNodes],
    [`channels: ${cost.channels} drawn per pixel; draw fewer channels`, cost.channels],
  ];
  const [largest] = terms.sort((a, b) => b[1] - a[1]) as [[string, number]];
  const reason = pixels > 262_144 && total / pixels <= ceiling / 262_144 ? `pixels: ${fmt(pixels)} in ${what}; ask for a smaller region` : largest[0];
  throw new TilefarmError(
    'spec_too_expensive',
    `rendering ${what} of this spec costs ${fmt(total)} sample operations (${fmt(pixels)} pixels × (${cost.sourceChannels} source channels × ${cost.zDepth} z + ${cost.formulaNodes} formula nodes + ${cost.channels} channels)), over the ceiling of ${fmt(ceiling)} (MAX_RENDER_COST); the largest factor is ${reason}`,
  );
}

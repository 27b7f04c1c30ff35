import { type DatasetManifest, type ImageFormat, type LutName, type RenderSpec, SPEC_LIMITS, TilefarmError, type Window, autoWindowTrim } from '@tilefarm/contracts';
import { type FormulaNode, channelRefs } from './formula-ast';
import { foldConstants } from './formula-eval';
import { parseFormula } from './formula-parser';
import { LUT_TABLES } from './lut-data';

/**
 * A spec resolved against one dataset version: labels turned into indices, formulas parsed and
 * folded, colours decoded, defaults applied, inactive channels dropped. Built once per
 * (spec, dataset version) and cached; nothing here depends on the tile.
 */
export interface PlannedChannel {
  /** Position in spec.channels (for messages). */
  specIndex: number;
  /** A dataset channel, or a formula tree over dataset channels (labels resolved). */
  input: { kind: 'source'; channel: number } | { kind: 'formula'; ast: FormulaNode };
  /** Colour as 0..255 components, or a 768-entry RGB table. */
  paint: { kind: 'color'; rgb: readonly [number, number, number] } | { kind: 'lut'; name: LutName; table: Uint8Array };
  /** Explicit window, or the trim fraction of an "auto"/"auto:F" window. */
  window: { kind: 'explicit'; lo: number; hi: number } | { kind: 'auto'; trim: number };
  gamma: number;
  invert: boolean;
}

export interface PlannedProjection {
  type: 'max' | 'mean' | 'sum';
  /** Inclusive slice range, clamped to the dataset's sizeZ. */
  z0: number;
  z1: number;
}

export interface RenderPlan {
  manifest: DatasetManifest;
  channels: PlannedChannel[];
  /** Every dataset channel the render reads, ascending. */
  sourceChannels: number[];
  projection: PlannedProjection | undefined;
  composite: 'add' | 'max';
  /** Every channel is a colour and each RGB component gets at most one channel (see compositeSeparable). */
  separable: boolean;
  format: ImageFormat;
  quality: number;
}

/** Formulas and channels without a colour are drawn in white (same as the gray LUT). */
const DEFAULT_FORMULA_COLOR = '#ffffff';

function hexToRgb(hex: string): [number, number, number] {
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}

function invalid(message: string): never {
  throw new TilefarmError('invalid_spec', message);
}

function resolveLabels(node: FormulaNode, manifest: DatasetManifest, field: string): FormulaNode {
  switch (node.type) {
    case 'label': {
      const index = manifest.channels.findIndex((c) => c.label === node.label);
      if (index < 0) {
        throw new TilefarmError(
          'invalid_formula',
          `${field}: ch(${JSON.stringify(node.label)}) at column ${node.pos} is not a channel of this dataset (channels: ${manifest.channels.map((c) => c.label).join(', ')})`,
        );
      }
      return { type: 'chan', index, pos: node.pos };
    }
    case 'chan':
      if (node.index >= manifest.channels.length) {
        throw new TilefarmError('invalid_formula', `${field}: c${node.index} at column ${node.pos} but the dataset has ${manifest.channels.length} channels (c0..c${manifest.channels.length - 1})`);
      }
      return node;
    case 'num':
      return node;
    case 'neg':
      return { ...node, arg: resolveLabels(node.arg, manifest, field) };
    case 'bin':
      return { ...node, left: resolveLabels(node.left, manifest, field), right: resolveLabels(node.right, manifest, field) };
    case 'call':
      return { ...node, args: node.args.map((a) => resolveLabels(a, manifest, field)) };
  }
}

function planWindow(window: Window | undefined, fallback: Window): PlannedChannel['window'] {
  const w = window ?? fallback;
  const trim = autoWindowTrim(w);
  if (trim !== undefined) return { kind: 'auto', trim };
  const [lo, hi] = w as [number, number];
  return { kind: 'explicit', lo, hi };
}

/** Resolve a parsed spec against a manifest; throws TilefarmError naming the field on any mismatch. */
export function resolveRenderPlan(spec: RenderSpec, manifest: DatasetManifest): RenderPlan {
  const channels: PlannedChannel[] = [];
  const sources = new Set<number>();
  const nChannels = manifest.channels.length;

  spec.channels.forEach((c, i) => {
    const field = `channels.${i}`;
    let input: PlannedChannel['input'];
    let defaultColor = DEFAULT_FORMULA_COLOR;
    let defaultWindow: Window = 'auto';
    if (c.formula !== undefined) {
      // Parsed even when inactive, so a broken formula is reported whether or not it is shown.
      const ast = foldConstants(resolveLabels(parseFormula(c.formula, `${field}.formula`), manifest, `${field}.formula`));
      input = { kind: 'formula', ast };
    } else {
      let index: number;
      if (c.index !== undefined) {
        if (c.index >= nChannels) invalid(`${field}.index: ${c.index} but the dataset has ${nChannels} channel${nChannels === 1 ? '' : 's'} (0..${nChannels - 1})`);
        index = c.index;
      } else if (c.label !== undefined) {
        index = manifest.channels.findIndex((m) => m.label === c.label);
        if (index < 0) invalid(`${field}.label: ${JSON.stringify(c.label)} is not a channel of this dataset (channels: ${manifest.channels.map((m) => m.label).join(', ')})`);
      } else {
        invalid(`${field}: a channel needs exactly one of "index", "label" or "formula"`);
      }
      const info = manifest.channels[index];
      if (info) {
        defaultColor = info.color;
        defaultWindow = info.window;
      }
      input = { kind: 'source', channel: index };
    }
    if (!c.active) return;
    const paint: PlannedChannel['paint'] =
      c.lut !== undefined ? { kind: 'lut', name: c.lut, table: LUT_TABLES[c.lut] } : { kind: 'color', rgb: hexToRgb(c.color ?? defaultColor) };
    if (input.kind === 'source') sources.add(input.channel);
    else channelRefs(input.ast, sources);
    channels.push({ specIndex: i, input, paint, window: planWindow(c.window, defaultWindow), gamma: c.gamma, invert: c.invert });
  });

  if (sources.size > SPEC_LIMITS.maxChannels) {
    invalid(`channels: the spec reads ${sources.size} dataset channels; at most ${SPEC_LIMITS.maxChannels}`);
  }

  let projection: PlannedProjection | undefined;
  if (spec.projection) {
    const [from, to] = spec.projection.z;
    if (from >= manifest.sizeZ) invalid(`projection.z: starts at slice ${from} but the dataset has ${manifest.sizeZ} slice${manifest.sizeZ === 1 ? '' : 's'} (0..${manifest.sizeZ - 1})`);
    projection = { type: spec.projection.type, z0: from, z1: Math.min(to, manifest.sizeZ - 1) };
  }

  const painters = [0, 0, 0];
  let separable = true;
  for (const ch of channels) {
    if (ch.paint.kind !== 'color') separable = false;
    else ch.paint.rgb.forEach((v, k) => (painters[k] = (painters[k] as number) + (v !== 0 ? 1 : 0)));
  }
  separable = separable && painters.every((p) => p <= 1);

  return {
    manifest,
    channels,
    separable,
    sourceChannels: [...sources].sort((a, b) => a - b),
    projection,
    composite: spec.composite,
    format: spec.format,
    quality: spec.quality,
  };
}

// The pure entry: spec checks, plans, formulas, pixel ops. It never loads sharp, so the API and the
// gateways can check specs with it; the encoder that brings sharp is `@tilefarm/render/encoder`.
export { createTileRenderer } from './renderer';
export { fastestPixelKernels, javascriptPixelKernels, nativePixelKernels } from './pixel-kernels';
export type { PixelKernels } from './pixel-kernels';
export type { RowSamples } from './pixel-ops';
export type { RenderInput, RenderTimings, RenderedTile, TileRenderer, TileRendererOptions } from './renderer';
export { specIdOf, validateSpecForDataset, checkFormulaSyntax, sourceChannelsNeeded } from './spec-checks';
export { LruByteCache } from './source-cache';
export type { LruByteCacheOptions, LruByteCacheStats } from './source-cache';
export type { TileEncoder } from './tile-encoder';
export { parseFormula, MAX_FORMULA_DEPTH } from './formula-parser';
export { printFormula } from './formula-printer';
export type { FormulaNode, BinaryOp, FunctionName } from './formula-ast';
export { LUT_TABLES } from './lut-data';
export { regionSampling, sampleRegion, padRgb } from './region-sampling';
export type { RegionSampling } from './region-sampling';
export { renderCostOf, checkRenderCost, formulaNodeCount } from './render-cost';
export type { RenderCost } from './render-cost';

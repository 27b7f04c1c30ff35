import { LUT_NAMES, type LutName } from '@tilefarm/contracts';

/**
 * The GPU half of hybrid rendering (WebGL2). The per-value arithmetic is NOT redone in GLSL: each
 * channel's levels table (n for every possible raw value, or the LUT index; exactly the server's
 * `levelsTable` from packages/render) is uploaded as a 256×256 float texture layer, so the shader
 * only looks values up and composites, like the server's table-driven paths. What the shader adds
 * is the colour/LUT paint, add/max composite and the final clamp-and-round to 8 bits.
 */

export const MAX_GL_CHANNELS = 8;

export interface GlChannel {
  /** Layer of the tile texture holding this channel's samples (= dataset channel). */
  layer: number;
  /** 65536 (uint16) or 256 (uint8) entries: n in 0..1 for colours, the LUT index for LUTs. */
  table: Float32Array;
  /** Colour components 0..255, or a LUT. */
  paint: { kind: 'color'; rgb: readonly [number, number, number] } | { kind: 'lut'; name: LutName };
}

export interface GlPipeline {
  channels: GlChannel[];
  composite: 'add' | 'max';
}

/** A tile's raw samples on the GPU: one layer per dataset channel. */
export interface TileTexture {
  texture: WebGLTexture;
  layers: number;
  loaded: Set<number>;
}

/** Where to draw a tile: canvas pixels of its corners, and how many of its pixels are image. */
export interface TileDraw {
  tile: TileTexture;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  width: number;
  height: number;
}

const VERTEX = `#version 300 es
uniform vec4 u_rect;   // x0, y0, x1, y1 in clip space
uniform vec2 u_size;   // tile pixels covered
out vec2 v_px;
void main() {
  vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1));
  v_px = corner * u_size;
  gl_Position = vec4(mix(u_rect.xy, u_rect.zw, corner), 0.0, 1.0);
}`;

/** What every fragment shader here declares: the textures, the per-channel uniforms, the pixel. */
const FRAGMENT_HEAD = `#version 300 es
precision highp float;
precision highp int;
precision highp usampler2DArray;
precision highp sampler2DArray;
precision highp sampler2D;
uniform usampler2DArray u_tile;
uniform sampler2DArray u_levels;   // layer i: channel i's table, value v at (v & 255, v >> 8)
uniform sampler2D u_luts;          // row k: LUT k, 256 RGB entries
uniform int u_layer[${MAX_GL_CHANNELS}];
uniform vec3 u_color[${MAX_GL_CHANNELS}];
uniform int u_lut[${MAX_GL_CHANNELS}];
uniform vec2 u_size;
in vec2 v_px;
out vec4 outColor;`;

const FRAGMENT = `${FRAGMENT_HEAD}
uniform int u_count;
uniform bool u_max;
void main() {
  ivec2 p = min(ivec2(floor(v_px)), ivec2(u_size) - 1);
  vec3 acc = vec3(0.0);
  for (int i = 0; i < ${MAX_GL_CHANNELS}; i++) {
    if (i >= u_count) break;
    uint v = texelFetch(u_tile, ivec3(p, u_layer[i]), 0).r;
    float n = texelFetch(u_levels, ivec3(int(v & 255u), int(v >> 8u), i), 0).r;
    vec3 c;
    if (u_lut[i] >= 0) c = floor(texelFetch(u_luts, ivec2(int(n), u_lut[i]), 0).rgb * 255.0 + 0.5);
    else c = n * u_color[i];
    acc = u_max ? max(acc, c) : acc + c;
  }
  outColor = vec4(min(floor(acc + 0.5), vec3(255.0)) / 255.0, 1.0);
}`;

/**
 * The same shader written out for one pipeline's shape (channel count, which channels are LUTs,
 * add or max): no loop, no per-pixel branch on uniforms. On a software rasterizer (SwiftShader,
 * what headless Chromium and GPU-less machines use) every shaded pixel runs this code, and the
 * straight-line version is markedly cheaper; a GPU does not mind either way. Same arithmetic as
 * FRAGMENT, so the same pixels.
 */
function specializedFragment(luts: boolean[], max: boolean): string {
  const body = luts
    .map((lut, i) => {
      const v = `uint v${i} = texelFetch(u_tile, ivec3(p, u_layer[${i}]), 0).r;\n  float n${i} = texelFetch(u_levels, ivec3(int(v${i} & 255u), int(v${i} >> 8u), ${i}), 0).r;`;
      const c = lut ? `floor(texelFetch(u_luts, ivec2(int(n${i}), u_lut[${i}]), 0).rgb * 255.0 + 0.5)` : `n${i} * u_color[${i}]`;
      const acc = i === 0 ? `vec3 acc = ${c};` : max ? `acc = max(acc, ${c});` : `acc += ${c};`;
      return `  ${v}\n  ${acc}`;
    })
    .join('\n');
  return `${FRAGMENT_HEAD}
void main() {
  ivec2 p = min(ivec2(floor(v_px)), ivec2(u_size) - 1);
${luts.length === 0 ? '  vec3 acc = vec3(0.0);' : body}
  outColor = vec4(min(floor(acc + 0.5), vec3(255.0)) / 255.0, 1.0);
}`;
}

function compile(gl: WebGL2RenderingContext, type: number, source: string): WebGLShader {
  const s = gl.createShader(type) as WebGLShader;
  gl.shaderSource(s, source);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`shader: ${gl.getShaderInfoLog(s) ?? 'compile failed'}`);
  return s;
}

interface Program {
  program: WebGLProgram;
  u: Record<string, WebGLUniformLocation | null>;
}

const UNIFORMS = ['u_rect', 'u_size', 'u_tile', 'u_levels', 'u_luts', 'u_count', 'u_layer', 'u_color', 'u_lut', 'u_max'];

export class WebglCompositor {
  readonly canvas: HTMLCanvasElement;
  private readonly gl: WebGL2RenderingContext;
  /** Programs by pipeline shape; "generic" is the looping shader, built first (it proves the context can run the pipeline at all). */
  private readonly programs = new Map<string, Program>();
  private current: Program;
  private readonly levels: WebGLTexture;
  private readonly tables: (Float32Array | undefined)[] = [];
  private lutRows = new Map<LutName, number>();

  /** undefined when the browser has no WebGL2 (the viewer then stays server-rendered). */
  static create(): WebglCompositor | undefined {
    const canvas = document.createElement('canvas');
    // No preserveDrawingBuffer: keeping the buffer makes the compositor copy the whole canvas on
    // every frame instead of swapping it. Whoever reads the picture back (PNG export, tests) draws
    // it first, in the same task, which is always allowed.
    const gl = canvas.getContext('webgl2', { alpha: true, antialias: false, depth: false, stencil: false, preserveDrawingBuffer: false, premultipliedAlpha: true });
    if (!gl) return undefined;
    try {
      return new WebglCompositor(canvas, gl);
    } catch (e) {
      console.warn('WebGL2 pipeline unavailable:', e);
      return undefined;
    }
  }

  private constructor(canvas: HTMLCanvasElement, gl: WebGL2RenderingContext) {
    this.canvas = canvas;
    this.gl = gl;
    this.current = this.build('generic', FRAGMENT);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);

    this.levels = gl.createTexture() as WebGLTexture;
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D_ARRAY, this.levels);
    gl.texStorage3D(gl.TEXTURE_2D_ARRAY, 1, gl.R32F, 256, 256, MAX_GL_CHANNELS);
    this.nearest(gl.TEXTURE_2D_ARRAY);

    const luts = gl.createTexture() as WebGLTexture;
    gl.activeTexture(gl.TEXTURE2);
    gl.bindTexture(gl.TEXTURE_2D, luts);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RGBA8, 256, LUT_NAMES.length);
    this.nearest(gl.TEXTURE_2D);
    gl.activeTexture(gl.TEXTURE0);
  }

  private build(key: string, fragment: string): Program {
    const gl = this.gl;
    const program = gl.createProgram() as WebGLProgram;
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, fragment));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(`program: ${gl.getProgramInfoLog(program) ?? 'link failed'}`);
    const u: Program['u'] = {};
    for (const name of UNIFORMS) u[name] = gl.getUniformLocation(program, name);
    gl.useProgram(program);
    gl.uniform1i(u.u_tile ?? null, 0);
    gl.uniform1i(u.u_levels ?? null, 1);
    gl.uniform1i(u.u_luts ?? null, 2);
    const built = { program, u };
    this.programs.set(key, built);
    return built;
  }

  /** The program written for this pipeline's shape (built on first use, a handful per session). */
  private programFor(p: GlPipeline): Program {
    const luts = p.channels.map((c) => c.paint.kind === 'lut');
    const key = `${luts.map((l) => (l ? 'L' : 'C')).join('')}|${p.composite}`;
    return this.programs.get(key) ?? this.build(key, specializedFragment(luts, p.composite === 'max'));
  }

  /** LUT tables (768 RGB bytes each), uploaded once. */
  setLuts(tables: Readonly<Record<LutName, Uint8Array>>): void {
    const gl = this.gl;
    const rgba = new Uint8Array(256 * 4 * LUT_NAMES.length);
    LUT_NAMES.forEach((name, row) => {
      this.lutRows.set(name, row);
      const t = tables[name];
      for (let i = 0; i < 256; i++) {
        rgba.set([t[i * 3] ?? 0, t[i * 3 + 1] ?? 0, t[i * 3 + 2] ?? 0, 255], (row * 256 + i) * 4);
      }
    });
    gl.activeTexture(gl.TEXTURE2);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, 256, LUT_NAMES.length, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    gl.activeTexture(gl.TEXTURE0);
  }

  private nearest(target: number): void {
    const gl = this.gl;
    gl.texParameteri(target, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(target, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(target, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(target, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  }

  createTile(size: number, layers: number, dtype: 'uint8' | 'uint16'): TileTexture {
    const gl = this.gl;
    const texture = gl.createTexture() as WebGLTexture;
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D_ARRAY, texture);
    gl.texStorage3D(gl.TEXTURE_2D_ARRAY, 1, dtype === 'uint8' ? gl.R8UI : gl.R16UI, size, size, layers);
    this.nearest(gl.TEXTURE_2D_ARRAY);
    return { texture, layers, loaded: new Set() };
  }

  upload(tile: TileTexture, layer: number, size: number, samples: Uint8Array | Uint16Array): void {
    const gl = this.gl;
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D_ARRAY, tile.texture);
    const u8 = samples instanceof Uint8Array;
    gl.texSubImage3D(gl.TEXTURE_2D_ARRAY, 0, 0, 0, layer, size, size, 1, u8 ? gl.RED_INTEGER : gl.RED_INTEGER, u8 ? gl.UNSIGNED_BYTE : gl.UNSIGNED_SHORT, samples);
    tile.loaded.add(layer);
  }

  deleteTile(tile: TileTexture): void {
    this.gl.deleteTexture(tile.texture);
  }

  /** Uploads the levels tables that changed (by identity), then sets the per-channel uniforms. */
  private usePipeline(p: GlPipeline): void {
    const gl = this.gl;
    gl.activeTexture(gl.TEXTURE1);
    p.channels.forEach((ch, i) => {
      if (this.tables[i] === ch.table) return;
      this.tables[i] = ch.table;
      // uint8 tables fill the first row only (v >> 8 is always 0).
      const rows = ch.table.length / 256;
      gl.texSubImage3D(gl.TEXTURE_2D_ARRAY, 0, 0, 0, i, 256, rows, 1, gl.RED, gl.FLOAT, ch.table);
    });
    gl.activeTexture(gl.TEXTURE0);
    const program = this.programFor(p);
    if (program !== this.current) {
      this.current = program;
      gl.useProgram(program.program);
    }
    const u = program.u;
    const layers = new Int32Array(MAX_GL_CHANNELS);
    const colors = new Float32Array(MAX_GL_CHANNELS * 3);
    const luts = new Int32Array(MAX_GL_CHANNELS).fill(-1);
    p.channels.forEach((ch, i) => {
      layers[i] = ch.layer;
      if (ch.paint.kind === 'lut') luts[i] = this.lutRows.get(ch.paint.name) ?? 0;
      else colors.set(ch.paint.rgb, i * 3);
    });
    gl.uniform1i(u.u_count ?? null, p.channels.length);
    gl.uniform1iv(u.u_layer ?? null, layers);
    gl.uniform3fv(u.u_color ?? null, colors);
    gl.uniform1iv(u.u_lut ?? null, luts);
    gl.uniform1i(u.u_max ?? null, p.composite === 'max' ? 1 : 0);
  }

  /** Waits until the GPU has finished every draw issued (a 1-pixel read back): for timing. */
  sync(): void {
    const gl = this.gl;
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
  }

  /** Clears to transparent and draws the tiles (in order: later ones on top). */
  draw(width: number, height: number, pipeline: GlPipeline | undefined, tiles: TileDraw[]): void {
    const gl = this.gl;
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    gl.viewport(0, 0, width, height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!pipeline || tiles.length === 0) return;
    this.usePipeline(pipeline);
    gl.activeTexture(gl.TEXTURE0);
    for (const d of tiles) {
      gl.bindTexture(gl.TEXTURE_2D_ARRAY, d.tile.texture);
      // Canvas pixels (y down) to clip space (y up).
      gl.uniform4f(this.current.u.u_rect ?? null, (d.x0 / width) * 2 - 1, 1 - (d.y0 / height) * 2, (d.x1 / width) * 2 - 1, 1 - (d.y1 / height) * 2);
      gl.uniform2f(this.current.u.u_size ?? null, d.width, d.height);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    }
  }
}

/*
 * The composite's hot loops (pixel-ops.ts: fusedColor1-3, writeRgbTables) in C, for the worker, and
 * the row copy that assembles a tile from Zarr chunks (copyRows).
 *
 * Why: these loops are one table lookup per channel and pixel plus a few multiplies; V8 runs them at
 * ~20 ns per pixel for three channels (1.1-1.4 ms per 256² tile), C at ~5 ns (docs/capacity.md,
 * "Session 14"). Same arithmetic as the JavaScript, in double precision and in the same
 * order, compiled without FMA contraction (binding.gyp): the bytes are identical, which
 * packages/render/test/pixel-kernels.test.ts checks against pixel-ops.ts.
 *
 * Every argument is checked before a pixel is touched (types, lengths, table sizes covering every
 * sample value), so a wrong call throws a TypeError/RangeError instead of reading out of bounds.
 */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_ARGS 11

typedef struct {
  napi_typedarray_type type;
  void *data;
  size_t length;
} typed_view;

static napi_value throw_error(napi_env env, int range, const char *message) {
  if (range) napi_throw_range_error(env, NULL, message);
  else napi_throw_type_error(env, NULL, message);
  return NULL;
}

static int view_of(napi_env env, napi_value value, typed_view *out) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_value buffer;
  size_t offset;
  return napi_get_typedarray_info(env, value, &out->type, &out->length, &out->data, &buffer, &offset) == napi_ok;
}

/* Samples: a Uint8Array or Uint16Array; the first sets `*pixels`, every later one must have as many. */
static int samples_of(napi_env env, napi_value value, typed_view *out, size_t *pixels, int first) {
  if (!view_of(env, value, out) || (out->type != napi_uint8_array && out->type != napi_uint16_array)) return 0;
  if (first) *pixels = out->length;
  return out->length == *pixels;
}

/* A table read at every sample value of `samples`: 256 entries for uint8, 65536 for uint16. */
static int table_of(napi_env env, napi_value value, napi_typedarray_type type, const typed_view *samples, typed_view *out) {
  if (!view_of(env, value, out) || out->type != type) return 0;
  return out->length >= (samples->type == napi_uint8_array ? 256u : 65536u);
}

/* Colour components 0..255 as [r, g, b]. */
static int rgb_of(napi_env env, napi_value value, double rgb[3]) {
  bool is_array = false;
  uint32_t length = 0;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_array_length(env, value, &length) != napi_ok || length != 3) return 0;
  for (uint32_t k = 0; k < 3; k++) {
    napi_value item;
    if (napi_get_element(env, value, k, &item) != napi_ok || napi_get_value_double(env, item, &rgb[k]) != napi_ok) return 0;
    if (!(rgb[k] >= 0 && rgb[k] <= 255)) return 0;
  }
  return 1;
}

/* 'add' -> 0, 'max' -> 1, else -1. */
static int mode_of(napi_env env, napi_value value) {
  char mode[4];
  size_t length = 0;
  // The whole string's length first: a copy into `mode` would cut "added" to "add".
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok || length != 3) return -1;
  if (napi_get_value_string_utf8(env, value, mode, sizeof mode, &length) != napi_ok) return -1;
  if (memcmp(mode, "add", 3) == 0) return 0;
  if (memcmp(mode, "max", 3) == 0) return 1;
  return -1;
}

static inline unsigned sample_at(const typed_view *v, size_t i) {
  return v->type == napi_uint8_array ? ((const uint8_t *)v->data)[i] : ((const uint16_t *)v->data)[i];
}

/*
 * pixel-ops.ts to8 (v >= 255 ? 255 : (v + 0.5) | 0): the same bytes for every v the levels tables
 * and colours make (0 <= v <= 765). Clamped first (NaN to 0), so the conversion is defined for any
 * v. On x86 as max/min instructions: GCC turns the portable form into two branches, which noisy
 * samples mispredict (3x slower on a 256² tile).
 */
static inline uint8_t to8(double v) {
#if defined(__SSE2__)
  __m128d x = _mm_max_sd(_mm_set_sd(v), _mm_setzero_pd());
  x = _mm_min_sd(x, _mm_set_sd(255.0));
  return (uint8_t)_mm_cvttsd_si32(_mm_add_sd(x, _mm_set_sd(0.5)));
#else
  v = v > 0 ? v : 0;
  v = v < 255 ? v : 255;
  return (uint8_t)(int32_t)(v + 0.5);
#endif
}

typedef struct {
  typed_view src;
  const float *table;
  double rgb[3];
} colour_channel;

/*
 * fusedColor{1,2,3}: out[3i + k] = to8(sum or max over channels of table[src[i]] * rgb[k]).
 * The sum is accumulated left to right from the first channel, as the JavaScript's expression is.
 */
static void fused_colour(const colour_channel *ch, int channels, int max_mode, size_t pixels, uint8_t *out) {
  for (size_t i = 0; i < pixels; i++) {
    double x[3] = {0, 0, 0};
    for (int c = 0; c < channels; c++) x[c] = ch[c].table[sample_at(&ch[c].src, i)];
    for (int k = 0; k < 3; k++) {
      double v = x[0] * ch[0].rgb[k];
      for (int c = 1; c < channels; c++) {
        const double w = x[c] * ch[c].rgb[k];
        v = max_mode ? (w > v ? w : v) : v + w;
      }
      out[3 * i + k] = to8(v);
    }
  }
}

/* Specialised so the compiler unrolls the channel loops: uint16 samples, the usual case. */
static void fused_colour_u16(const colour_channel *ch, int channels, int max_mode, size_t pixels, uint8_t *out) {
  const uint16_t *a = ch[0].src.data, *b = channels > 1 ? ch[1].src.data : NULL, *c = channels > 2 ? ch[2].src.data : NULL;
  const float *ta = ch[0].table, *tb = channels > 1 ? ch[1].table : NULL, *tc = channels > 2 ? ch[2].table : NULL;
  const double ar = ch[0].rgb[0], ag = ch[0].rgb[1], ab = ch[0].rgb[2];
  if (channels == 3 && !max_mode) {
    const double br = ch[1].rgb[0], bg = ch[1].rgb[1], bb = ch[1].rgb[2], cr = ch[2].rgb[0], cg = ch[2].rgb[1], cb = ch[2].rgb[2];
    for (size_t i = 0; i < pixels; i++) {
      const double x = ta[a[i]], y = tb[b[i]], z = tc[c[i]];
      out[3 * i] = to8(x * ar + y * br + z * cr);
      out[3 * i + 1] = to8(x * ag + y * bg + z * cg);
      out[3 * i + 2] = to8(x * ab + y * bb + z * cb);
    }
  } else if (channels == 2 && !max_mode) {
    const double br = ch[1].rgb[0], bg = ch[1].rgb[1], bb = ch[1].rgb[2];
    for (size_t i = 0; i < pixels; i++) {
      const double x = ta[a[i]], y = tb[b[i]];
      out[3 * i] = to8(x * ar + y * br);
      out[3 * i + 1] = to8(x * ag + y * bg);
      out[3 * i + 2] = to8(x * ab + y * bb);
    }
  } else if (channels == 1) {
    for (size_t i = 0; i < pixels; i++) {
      const double x = ta[a[i]];
      out[3 * i] = to8(x * ar);
      out[3 * i + 1] = to8(x * ag);
      out[3 * i + 2] = to8(x * ab);
    }
  } else {
    fused_colour(ch, channels, max_mode, pixels, out);
  }
}

/*
 * fusedColor(mode, out, src0, table0, rgb0[, src1, table1, rgb1[, src2, table2, rgb2]]):
 * 1 to 3 colour channels, Float32 level tables, `out` 3 bytes per pixel.
 */
static napi_value fused_color(napi_env env, napi_callback_info info) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 5 && argc != 8 && argc != 11) return throw_error(env, 0, "fusedColor takes (mode, out, then src, table, rgb for 1 to 3 channels)");
  const int max_mode = mode_of(env, argv[0]);
  if (max_mode < 0) return throw_error(env, 0, "fusedColor: mode must be 'add' or 'max'");
  const int channels = (int)(argc - 2) / 3;
  colour_channel ch[3];
  // Colours first: reading an array's elements can run script, which must not run once the
  // typed arrays' memory has been taken.
  for (int c = 0; c < channels; c++) {
    if (!rgb_of(env, argv[4 + 3 * c], ch[c].rgb)) return throw_error(env, 0, "fusedColor: each colour must be [r, g, b] within 0..255");
  }
  typed_view out;
  if (!view_of(env, argv[1], &out) || out.type != napi_uint8_array) return throw_error(env, 0, "fusedColor: out must be a Uint8Array");
  size_t pixels = 0;
  int all_u16 = 1;
  for (int c = 0; c < channels; c++) {
    typed_view table;
    if (!samples_of(env, argv[2 + 3 * c], &ch[c].src, &pixels, c == 0)) return throw_error(env, 0, "fusedColor: each channel's samples must be a Uint8Array or Uint16Array, all of one length");
    if (!table_of(env, argv[3 + 3 * c], napi_float32_array, &ch[c].src, &table)) return throw_error(env, 1, "fusedColor: each table must be a Float32Array covering every sample value (256 entries for uint8, 65536 for uint16)");
    ch[c].table = table.data;
    all_u16 &= ch[c].src.type == napi_uint16_array;
  }
  if (out.length < 3 * pixels) return throw_error(env, 1, "fusedColor: out must hold 3 bytes per pixel");
  if (all_u16) fused_colour_u16(ch, channels, max_mode, pixels, out.data);
  else fused_colour(ch, channels, max_mode, pixels, out.data);
  return NULL;
}

/* writeRgbTables(r, tr, g, tg, b, tb, out): out[3i + k] = table_k[src_k[i]], byte tables. */
static napi_value write_rgb_tables(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 7) return throw_error(env, 0, "writeRgbTables takes (r, tr, g, tg, b, tb, out)");
  typed_view src[3], table[3], out;
  size_t pixels = 0;
  for (int k = 0; k < 3; k++) {
    if (!samples_of(env, argv[2 * k], &src[k], &pixels, k == 0)) return throw_error(env, 0, "writeRgbTables: each component's samples must be a Uint8Array or Uint16Array, all of one length");
    if (!table_of(env, argv[2 * k + 1], napi_uint8_array, &src[k], &table[k])) return throw_error(env, 1, "writeRgbTables: each table must be a Uint8Array covering every sample value (256 entries for uint8, 65536 for uint16)");
  }
  if (!view_of(env, argv[6], &out) || out.type != napi_uint8_array) return throw_error(env, 0, "writeRgbTables: out must be a Uint8Array");
  if (out.length < 3 * pixels) return throw_error(env, 1, "writeRgbTables: out must hold 3 bytes per pixel");
  const uint8_t *tr = table[0].data, *tg = table[1].data, *tb = table[2].data;
  uint8_t *o = out.data;
  if (src[0].type == napi_uint16_array && src[1].type == napi_uint16_array && src[2].type == napi_uint16_array) {
    const uint16_t *r = src[0].data, *g = src[1].data, *b = src[2].data;
    for (size_t i = 0; i < pixels; i++) {
      o[3 * i] = tr[r[i]];
      o[3 * i + 1] = tg[g[i]];
      o[3 * i + 2] = tb[b[i]];
    }
  } else {
    for (size_t i = 0; i < pixels; i++) {
      o[3 * i] = tr[sample_at(&src[0], i)];
      o[3 * i + 1] = tg[sample_at(&src[1], i)];
      o[3 * i + 2] = tb[sample_at(&src[2], i)];
    }
  }
  return NULL;
}

static size_t element_size(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;
  }
}

/* A whole number 0..2^32 (counts and offsets), else 0. */
static int count_of(napi_env env, napi_value value, size_t *out) {
  double v;
  if (napi_get_value_double(env, value, &v) != napi_ok || !(v >= 0 && v <= 4294967296.0) || v != (double)(uint64_t)v) return 0;
  *out = (size_t)v;
  return 1;
}

/* Rows [offset, offset + (rows - 1) * stride + width) lie inside `length` elements. */
static int rows_inside(size_t offset, size_t stride, size_t width, size_t rows, size_t length) {
  if (rows == 0 || width == 0) return 1;
  const uint64_t last = (uint64_t)offset + (uint64_t)(rows - 1) * stride + width;
  return last <= length;
}

/*
 * copyRows(dst, dstOffset, dstStride, src, srcOffset, srcStride, width, rows): `rows` rows of
 * `width` elements from src to dst, typed arrays of one kind. A tile over 64³ chunks is 16 chunks
 * of 64 rows; the JavaScript's set() per row costs a call and a subarray each (pixel-ops.ts
 * copyRows), this one call per chunk.
 */
static napi_value copy_rows(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 8) return throw_error(env, 0, "copyRows takes (dst, dstOffset, dstStride, src, srcOffset, srcStride, width, rows)");
  size_t dst_offset, dst_stride, src_offset, src_stride, width, rows;
  if (!count_of(env, argv[1], &dst_offset) || !count_of(env, argv[2], &dst_stride) || !count_of(env, argv[4], &src_offset) || !count_of(env, argv[5], &src_stride) || !count_of(env, argv[6], &width) || !count_of(env, argv[7], &rows)) {
    return throw_error(env, 1, "copyRows: offsets, strides, width and rows must be whole numbers within 0..2^32");
  }
  typed_view dst, src;
  if (!view_of(env, argv[0], &dst) || !view_of(env, argv[3], &src)) return throw_error(env, 0, "copyRows: dst and src must be typed arrays");
  if (dst.type != src.type) return throw_error(env, 0, "copyRows: dst and src must be typed arrays of one kind");
  if (!rows_inside(dst_offset, dst_stride, width, rows, dst.length)) return throw_error(env, 1, "copyRows: the rows do not lie inside dst");
  if (!rows_inside(src_offset, src_stride, width, rows, src.length)) return throw_error(env, 1, "copyRows: the rows do not lie inside src");
  if (rows == 0 || width == 0) return NULL;
  const size_t size = element_size(dst.type);
  uint8_t *to = (uint8_t *)dst.data + dst_offset * size;
  const uint8_t *from = (const uint8_t *)src.data + src_offset * size;
  // memmove: dst and src may be views of one buffer.
  for (size_t r = 0; r < rows; r++) memmove(to + r * dst_stride * size, from + r * src_stride * size, width * size);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor functions[] = {
      {"fusedColor", NULL, fused_color, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeRgbTables", NULL, write_rgb_tables, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyRows", NULL, copy_rows, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

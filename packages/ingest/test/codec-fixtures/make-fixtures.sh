#!/usr/bin/env bash
# Writes the codec fixtures of ../codecs.test.ts with Debian's libvips CLI (apt-get install
# libvips-tools; written with vips 8.14.1), an independent writer: our code never made these bytes.
# sharp's bundled libvips has no zstd or JPEG 2000 in its libtiff, so these are committed; the
# JPEG and WebP files are written by sharp in the test itself.
#   source-grey16.png, source-rgb8.png   the pixels (lossless PNG), the reference for lossless codecs
#   zstd-grey16-tiled-pyramid.tif        uint16, zstd + horizontal predictor, 256² tiles, SubIFD pyramid
#   zstd-rgb8-strips.tif                 RGB uint8, zstd + horizontal predictor, strips
#   jp2k-*.tif                           the same sources, JPEG 2000 tiles (lossless)
#   jpeg-rgb-photometric-strips.tif      RGB JPEG stored as RGB (not YCbCr), by Pillow/libtiff
set -euo pipefail
cd "$(dirname "$0")"
command -v vips >/dev/null || { echo "needs the vips CLI: apt-get install libvips-tools" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
W=520 H=300
# Smooth ramps plus a sine texture, deterministic (no noise generator): x = band 0, y = band 1 of xyz.
vips xyz "$tmp/xy.v" $W $H
vips extract_band "$tmp/xy.v" "$tmp/x.v" 0
vips extract_band "$tmp/xy.v" "$tmp/y.v" 1
vips linear "$tmp/x.v" "$tmp/x10.v" 10 0
vips math "$tmp/x10.v" "$tmp/sx.v" sin
vips linear "$tmp/y.v" "$tmp/y7.v" 7 0
vips math "$tmp/y7.v" "$tmp/cy.v" cos
vips multiply "$tmp/sx.v" "$tmp/cy.v" "$tmp/tex.v"
# grey16: 500 + 50 x + 40 y + 3000 sin(10x°) cos(7y°), within 0..65535
vips linear "$tmp/x.v" "$tmp/gx.v" 50 500
vips linear "$tmp/y.v" "$tmp/gy.v" 40 0
vips linear "$tmp/tex.v" "$tmp/gt.v" 3000 3000
vips sum "$tmp/gx.v $tmp/gy.v $tmp/gt.v" "$tmp/g.v"
vips cast "$tmp/g.v" "$tmp/grey16.v" ushort
vips copy "$tmp/grey16.v" "$tmp/grey16i.v" --interpretation grey16
vips pngsave "$tmp/grey16i.v" source-grey16.png --compression 9 --filter all
# rgb8: red = x ramp, green = y ramp, blue = texture
vips linear "$tmp/x.v" "$tmp/r.v" 0.36 0
vips linear "$tmp/y.v" "$tmp/gr.v" 0.48 0
vips linear "$tmp/tex.v" "$tmp/b.v" 100 128
vips bandjoin "$tmp/r.v $tmp/gr.v $tmp/b.v" "$tmp/rgbf.v"
vips cast "$tmp/rgbf.v" "$tmp/rgb8.v" uchar
vips copy "$tmp/rgb8.v" "$tmp/rgb8i.v" --interpretation srgb
vips pngsave "$tmp/rgb8i.v" source-rgb8.png --compression 9 --filter all

vips tiffsave source-grey16.png zstd-grey16-tiled-pyramid.tif --compression zstd --predictor horizontal --tile --tile-width 256 --tile-height 256 --pyramid --subifd
vips tiffsave source-rgb8.png zstd-rgb8-strips.tif --compression zstd --predictor horizontal
vips tiffsave source-grey16.png jp2k-grey16-tiled.tif --compression jp2k --lossless --tile --tile-width 256 --tile-height 256
vips tiffsave source-rgb8.png jp2k-rgb8-tiled-pyramid.tif --compression jp2k --lossless --tile --tile-width 256 --tile-height 256 --pyramid --subifd
ls -l ./*.png ./*.tif

# JPEG with Photometric RGB (no YCbCr conversion), which libvips does not write: Pillow through
# libtiff (Debian python3-pil), from the same RGB source.
/usr/bin/python3 - <<'PY'
from PIL import Image
Image.open('source-rgb8.png').convert('RGB').save('jpeg-rgb-photometric-strips.tif', compression='jpeg', quality=90)
PY
ls -l jpeg-rgb-photometric-strips.tif

#!/usr/bin/python3
"""Writes the same microscopy-like image as OME-Zarr (NGFF 0.4, Python zarr, Blosc lz4) in several
chunkings, for `npm run bench:zarr` (and, with a size, the registration RSS bench).

  zarr-bench-image.py OUT_DIR SIZE_C SIZE_Z SIDE LEVELS NAME:CHUNK_Z:CHUNK_YX [NAME:...]

Each NAME.zarr holds t=1 × c × z × side × side uint16 with chunks (1, CHUNK_Z, CHUNK_YX, CHUNK_YX)
over (c, z, y, x), and LEVELS levels (2× subsampled). Written plane by plane, so memory stays at a
few planes whatever the size. Content: a camera offset, noise and bright blobs, so chunks compress
as real fluorescence does (not as zeros would).
"""
import sys

import numcodecs
import numpy as np
import zarr


def plane(rng, c, z, side):
    # Blobs on a coarse random grid upsampled (smooth structures), plus shot-like noise.
    coarse = rng.random((side // 32 + 1, side // 32 + 1))
    coarse = np.where(coarse > 0.8, coarse * 6000 * (c + 1), 0.0)
    big = np.kron(coarse, np.ones((32, 32)))[:side, :side]
    yy = np.arange(side)[:, None]
    xx = np.arange(side)[None, :]
    wave = 300 + 200 * np.sin((xx + 7 * z) / 41.0 + c) * np.cos((yy - 3 * z) / 53.0)
    noise = rng.normal(0, 25, (side, side))
    return np.clip(100 + wave + big + noise, 0, 65535).astype('<u2')


def main():
    out, size_c, size_z, side, levels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    layouts = [(n, int(cz), int(cyx)) for n, cz, cyx in (a.split(':') for a in sys.argv[6:])]
    roots = []
    for name, cz, cyx in layouts:
        store = zarr.DirectoryStore(f'{out}/{name}.zarr', dimension_separator='/')
        root = zarr.group(store=store, overwrite=True)
        arrays = []
        for k in range(levels):
            s = -(-side // 2 ** k)
            arrays.append(root.create(str(k), shape=(size_c, size_z, s, s), chunks=(1, min(cz, size_z), min(cyx, s), min(cyx, s)), dtype='<u2',
                                      compressor=numcodecs.Blosc(cname='lz4', clevel=5, shuffle=numcodecs.Blosc.SHUFFLE), fill_value=0, dimension_separator='/'))
        axes = [{'name': 'c', 'type': 'channel'}] + [{'name': a, 'type': 'space', 'unit': 'micrometer'} for a in 'zyx']
        root.attrs['multiscales'] = [{'version': '0.4', 'name': name, 'axes': axes, 'datasets': [
            {'path': str(k), 'coordinateTransformations': [{'type': 'scale', 'scale': [1, 1.0, 0.5 * 2 ** k, 0.5 * 2 ** k]}]} for k in range(levels)]}]
        root.attrs['omero'] = {'version': '0.4', 'channels': [
            {'label': f'ch{c}', 'color': ['00FF00', 'FF00FF', 'FFFF00', '00FFFF'][c % 4], 'active': True,
             'window': {'start': 100, 'end': 3000 * (c + 1), 'min': 0, 'max': 65535}} for c in range(size_c)]}
        roots.append((cz, arrays))
    # Plane by plane for 2-D chunks; a slab of CHUNK_Z planes at a time where chunks span z.
    slab = max(cz for _, cz, _ in layouts)
    rng = np.random.default_rng(1)
    for c in range(size_c):
        for z0 in range(0, size_z, slab):
            z1 = min(size_z, z0 + slab)
            block = np.stack([plane(rng, c, z, side) for z in range(z0, z1)])
            for _, arrays in roots:
                for k, arr in enumerate(arrays):
                    arr[c, z0:z1] = block[:, ::2 ** k, ::2 ** k]
            print(f'c={c} z={z1}/{size_z}', flush=True)


main()

{
  "targets": [
    {
      "target_name": "pixel_kernels",
      "sources": ["pixel-kernels.c"],
      "cflags": ["-O3", "-ffp-contract=off", "-fno-fast-math"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}

# One image for every tilefarm process; docker-compose.yml picks the command per service:
#   node apps/api/dist/main.js | node apps/gateway/dist/main.js | node apps/worker/dist/main.js
FROM node:20-bookworm-slim AS build
# A C compiler for the worker's pixel kernels (packages/render/native, built by node-gyp in npm run build).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# npm ci installs exactly the lock file (the AWS SDK is pinned there for Node 20); the build
# compiles every workspace (tsc -b) and bundles the viewer the API serves at "/".
RUN npm ci && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    # sharp on glibc: fewer malloc arenas keep a long-running worker's RSS flat (sharp's docs on glibc memory).
    MALLOC_ARENA_MAX=2 \
    # MALLOC_TUNABLES in packages/config: large allocations as transparent huge pages (11 % less CPU
    # per cold tile), freed memory kept in the heap instead of given back (no re-zeroed pages).
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
# c-blosc, libzstd and liblz4 decode linked OME-Zarrs' Blosc, zstd and lz4 chunks (through koffi).
# Required: the apps refuse code generation from strings, which numcodecs' wasm fallback needs.
RUN apt-get update && apt-get install -y --no-install-recommends libblosc1 libzstd1 liblz4-1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
EXPOSE 8080 8081
# SIGTERM reaches node directly (exec form): every app drains and exits 0 within SHUTDOWN_TIMEOUT_MS.
CMD ["node", "--disallow-code-generation-from-strings", "apps/api/dist/main.js"]

// Creates synthetic datasets in a plain node process from the built packages: generating pixels
// inside jest's module sandbox is about ten times slower. Usage: node create-synthetic.js '<json>'
// with {"store": ObjectStoreSettings, "datasets": SyntheticOptions[]}.
const { openObjectStore } = require('@tilefarm/storage');
const { DatasetCatalog, createSyntheticDataset } = require('@tilefarm/datasets');

async function main() {
  const { store: settings, datasets } = JSON.parse(process.argv[2]);
  const store = openObjectStore(settings);
  const catalog = new DatasetCatalog(store, 0);
  for (const d of datasets) await createSyntheticDataset(catalog, d);
  await store.close?.();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

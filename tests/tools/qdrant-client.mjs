// Drives vectord's Qdrant-compatible API with the official Qdrant JS client
// (@qdrant/js-client-rest, pinned in package.json) and prints one JSON
// object: each call's result, or the error it raised ({error, status}).
// Usage: node qdrant-client.mjs URL [API_KEY]. tests/integration/test_qdrant.py
// reads the output and checks it.
import { QdrantClient } from "@qdrant/js-client-rest";

const [url, apiKey] = process.argv.slice(2);
const client = new QdrantClient({ url, apiKey, checkCompatibility: true });
const out = {};

async function step(name, fn) {
  try {
    out[name] = { ok: await fn() };
  } catch (e) {
    out[name] = { error: String(e?.message ?? e), status: e?.status ?? null, data: e?.data ?? null };
  }
}

await step("versionInfo", () => client.versionInfo());
await step("createCollection", () =>
  client.createCollection("memories", {
    vectors: { size: 4, distance: "Cosine" },
    hnsw_config: { m: 16, ef_construct: 100 },
    optimizers_config: { default_segment_number: 2 },
    on_disk_payload: true,
  }));
await step("createQuantized", () =>
  client.createCollection("quantized", {
    vectors: { size: 4, distance: "Euclid" },
    quantization_config: { scalar: { type: "int8", quantile: 0.99, always_ram: true } },
  }));
await step("createExisting", () => client.createCollection("memories", { vectors: { size: 4, distance: "Cosine" } }));
await step("createManhattan", () => client.createCollection("m", { vectors: { size: 4, distance: "Manhattan" } }));
await step("createNamed", () => client.createCollection("n", { vectors: { a: { size: 4, distance: "Dot" } } }));
await step("getCollections", () => client.getCollections());
await step("collectionExists", () => client.collectionExists("memories"));
await step("collectionMissing", () => client.collectionExists("nope"));
await step("getCollection", () => client.getCollection("memories"));
await step("getQuantized", () => client.getCollection("quantized"));
await step("getMissing", () => client.getCollection("nope"));
await step("deleteCollection", () => client.deleteCollection("quantized"));
await step("afterDelete", () => client.getCollections());
console.log(JSON.stringify(out));

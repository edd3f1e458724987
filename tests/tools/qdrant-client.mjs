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
const uuid = "5C56C793-69F3-4FBF-87E6-C4BF54C28C26"; // any spelling; stored canonically
await step("upsertList", () =>
  client.upsert("memories", {
    wait: true,
    points: [
      { id: 1, vector: [1, 0, 0, 0], payload: { userId: "u1", n: 1 } },
      { id: uuid, vector: [0, 1, 0, 0], payload: { userId: "u2" } },
    ],
  }));
await step("upsertBatch", () =>
  client.upsert("memories", {
    wait: true,
    batch: { ids: [2, 3], vectors: [[0, 0, 1, 0], [0, 0, 0, 1]], payloads: [{ userId: "u1" }, { userId: "u3" }] },
  }));
await step("upsertBadId", () => client.upsert("memories", { points: [{ id: "not-a-uuid", vector: [1, 0, 0, 0] }] }));
await step("retrieve", () =>
  client.retrieve("memories", { ids: [1, uuid.toLowerCase(), 99], with_payload: true, with_vector: true }));
await step("countAll", () => client.count("memories", { exact: true }));
await step("countFiltered", () =>
  client.count("memories", { exact: true, filter: { must: [{ key: "userId", match: { value: "u1" } }] } }));
await step("scrollPage1", () => client.scroll("memories", { limit: 2, with_payload: true }));
await step("scrollPage2", async () => {
  const first = await client.scroll("memories", { limit: 2 });
  return client.scroll("memories", { limit: 2, offset: first.next_page_offset });
});
await step("scrollFiltered", () =>
  client.scroll("memories", { filter: { must: [{ key: "userId", match: { value: "u1" } }] }, with_payload: false }));
await step("search", () =>
  client.search("memories", { vector: [1, 0.1, 0, 0], limit: 2, with_payload: true }));
await step("searchFiltered", () =>
  client.search("memories", {
    vector: [0, 0, 1, 0], limit: 3, offset: 1, with_payload: ["userId"], with_vector: true,
    filter: { must: [{ key: "userId", match: { value: "u1" } }] }, params: { hnsw_ef: 64, exact: false },
  }));
await step("searchThreshold", () =>
  client.search("memories", { vector: [1, 0, 0, 0], limit: 10, score_threshold: 0.5 }));
await step("searchBatch", () =>
  client.searchBatch("memories", {
    searches: [
      { vector: [0, 1, 0, 0], limit: 1, with_payload: { exclude: ["n"] } },
      { vector: [0, 0, 0, 1], limit: 1 },
    ],
  }));
await step("query", () => client.query("memories", { query: [1, 0.1, 0, 0], limit: 2, with_payload: ["userId"] }));
await step("queryById", () => client.query("memories", { query: 1, limit: 1 }));
await step("queryMmr", () =>
  client.query("memories", { query: { nearest: [1, 0.1, 0, 0], mmr: { diversity: 0.9, candidates_limit: 4 } }, limit: 2 }));
await step("queryBatch", () =>
  client.queryBatch("memories", { searches: [{ query: [0, 0, 0, 1], limit: 1 }, { query: { nearest: 3 }, limit: 1 }] }));
// Hybrid-style queries: prefetches fused by rank or score, or re-ranked by a vector.
// Query vectors without ties: qa ranks 1, uuid, 2, 3; qb ranks 2, 3, uuid, 1.
const qa = [1, 0.5, 0.25, 0.1], qb = [0.1, 0.2, 1, 0.4];
await step("queryFusion", () =>
  client.query("memories", {
    prefetch: [{ query: qa, limit: 3 }, { query: qb, limit: 3 }], query: { fusion: "rrf" }, limit: 4, with_payload: true,
  }));
await step("queryRrfK", () =>
  client.query("memories", {
    prefetch: [{ query: qa, limit: 2 }, { query: qb, limit: 2, filter: { must: [{ key: "userId", match: { value: "u1" } }] } }],
    query: { rrf: { k: 60, weights: [1, 3] } }, limit: 3,
  }));
await step("queryDbsf", () =>
  client.query("memories", { prefetch: [{ query: qa, limit: 3 }, { query: qb, limit: 3 }], query: { fusion: "dbsf" }, limit: 2 }));
await step("queryRescore", () =>
  client.query("memories", { prefetch: { query: qa, limit: 3 }, query: [0.1, 0.2, 1, 0], limit: 2, with_vector: true }));
await step("queryFusionFiltered", () =>
  client.query("memories", {
    prefetch: [{ query: qa, limit: 4 }, { query: qb, limit: 4 }],
    query: { fusion: "rrf" }, filter: { must: [{ key: "userId", match: { value: "u1" } }] }, limit: 4,
  }));
await step("queryFusionNested", () =>
  client.query("memories", { prefetch: [{ prefetch: [{ query: qa }], query: qa }], query: { fusion: "rrf" } }));
await step("queryFusionBatch", () =>
  client.queryBatch("memories", {
    searches: [
      { prefetch: [{ query: qa, limit: 2 }, { query: [0.1, 0.2, 0.4, 1], limit: 2 }], query: { fusion: "rrf" }, limit: 2 },
      { query: [0, 0, 0, 1], limit: 1 },
    ],
  }));
await step("searchNamed", () => client.search("memories", { vector: { name: "a", vector: [1, 0, 0, 0] }, limit: 1 }));
await step("deleteIds", () => client.delete("memories", { wait: true, points: [2] }));
await step("deleteFilter", () =>
  client.delete("memories", { wait: true, filter: { must: [{ key: "userId", match: { value: "u3" } }] } }));
await step("afterDeletes", () => client.retrieve("memories", { ids: [1, 2, 3, uuid], with_payload: false }));
await step("createIndex", () => client.createPayloadIndex("memories", { field_name: "userId", field_schema: "keyword", wait: true }));
await step("createIndexAgain", () => client.createPayloadIndex("memories", { field_name: "userId", field_schema: "keyword" }));
await step("createIndexNumeric", () => client.createPayloadIndex("memories", { field_name: "n", field_schema: { type: "integer" } }));
await step("getCollection", () => client.getCollection("memories"));
await step("getQuantized", () => client.getCollection("quantized"));
await step("getMissing", () => client.getCollection("nope"));
await step("updateCollection", () =>
  client.updateCollection("memories", { optimizers_config: { indexing_threshold: 10000 } }));
await step("updateHnsw", () => client.updateCollection("memories", { hnsw_config: { m: 32 } }));
// Changing stored points: payload set / overwrite / delete / clear, vector updates.
const editsUuid = "6a0c1e4b-0a1c-4f7e-9d8e-2f1b3c4d5e6f";
await step("editsCreate", async () => {
  await client.createCollection("edits", { vectors: { size: 4, distance: "Dot" } });
  await client.createPayloadIndex("edits", { field_name: "tag", field_schema: "keyword", wait: true });
  return client.upsert("edits", {
    wait: true,
    points: [
      { id: 1, vector: [1, 0, 0, 0], payload: { tag: "a", n: 1, m: { x: 1 } } },
      { id: 2, vector: [0, 1, 0, 0], payload: { tag: "a", n: 2 } },
      { id: editsUuid, vector: [0, 0, 1, 0], payload: { tag: "b", n: 3 } },
    ],
  });
});
await step("setPayload", () => client.setPayload("edits", { payload: { tag: "c", extra: true }, points: [1], wait: true }));
await step("setPayloadKey", () => client.setPayload("edits", { payload: { y: 2 }, key: "m", points: [1] }));
await step("setPayloadFilter", () =>
  client.setPayload("edits", { payload: { seen: 1 }, filter: { must: [{ key: "tag", match: { value: "a" } }] } }));
await step("setPayloadMissing", () => client.setPayload("edits", { payload: { z: 1 }, points: [404] }));
await step("overwritePayload", () =>
  client.overwritePayload("edits", { payload: { tag: "d" }, points: [editsUuid.toUpperCase()], wait: true }));
await step("deletePayload", () => client.deletePayload("edits", { keys: ["n", "seen"], points: [2] }));
await step("clearPayload", () => client.clearPayload("edits", { points: [1] }));
await step("updateVectors", () =>
  client.updateVectors("edits", { points: [{ id: 2, vector: [0, 0, 0, 5] }], wait: true }));
await step("updateVectorsMissing", () => client.updateVectors("edits", { points: [{ id: 77, vector: [1, 1, 1, 1] }] }));
await step("deleteVectors", () => client.deleteVectors("edits", { points: [2], vector: [""] }));
await step("afterEdits", () => client.retrieve("edits", { ids: [1, 2, editsUuid], with_payload: true, with_vector: true }));
await step("countTagC", () => client.count("edits", { filter: { must: [{ key: "tag", match: { value: "c" } }] } }));
await step("retrieveInclude", () => client.retrieve("edits", { ids: [2], with_payload: { include: ["tag"] } }));
await step("scrollExclude", () => client.scroll("edits", { limit: 1, offset: 2, with_payload: { exclude: ["tag"] } }));
await step("scrollFields", () => client.scroll("edits", { limit: 1, offset: 2, with_payload: ["missing", "tag"] }));
// Scroll in payload order.
await step("orderedCreate", async () => {
  await client.createCollection("ordered", { vectors: { size: 2, distance: "Dot" } });
  return client.upsert("ordered", {
    wait: true,
    points: [
      { id: 1, vector: [1, 0], payload: { n: 3, at: "2026-12-01T00:00:00Z" } },
      { id: 2, vector: [1, 0], payload: { n: 1, at: "2026-12-03T00:00:00Z" } },
      { id: 3, vector: [1, 0], payload: { n: 2, at: "2026-11-01T00:00:00+01:00" } },
      { id: 4, vector: [1, 0], payload: { other: true } },
      { id: 5, vector: [1, 0], payload: { n: [5, 0] } },
    ],
  });
});
await step("orderedIndexBool", () => client.createPayloadIndex("ordered", { field_name: "other", field_schema: "bool" }));
await step("orderedIndexTime", () =>
  client.createPayloadIndex("ordered", { field_name: "at", field_schema: "datetime", wait: true }));
await step("orderedIndexText", () => client.createPayloadIndex("ordered", { field_name: "at", field_schema: "text" }));
await step("countTimeRange", () =>
  client.count("ordered", { filter: { must: [{ key: "at", range: { gte: "2026-12-01T00:00:00Z" } }] } }));
await step("countBool", () => client.count("ordered", { filter: { must: [{ key: "other", match: { value: true } }] } }));
await step("deleteIndex", () => client.deletePayloadIndex("ordered", "other", { wait: true }));
await step("deleteIndexMissing", () => client.deletePayloadIndex("ordered", "nothing"));
await step("countBoolUnindexed", () =>
  client.count("ordered", { filter: { must: [{ key: "other", match: { value: true } }] } }));
await step("orderedInfo", () => client.getCollection("ordered"));
await step("scrollOrderAsc", () => client.scroll("ordered", { order_by: "n", limit: 10, with_payload: false }));
await step("scrollOrderDesc", () =>
  client.scroll("ordered", { order_by: { key: "n", direction: "desc" }, limit: 3, with_payload: false }));
await step("scrollOrderFrom", () =>
  client.scroll("ordered", { order_by: { key: "n", start_from: 2 }, limit: 10, with_payload: false,
    filter: { must_not: [{ has_id: [3] }] } }));
await step("scrollOrderTime", () =>
  client.scroll("ordered", { order_by: { key: "at", direction: "desc", start_from: "2026-12-02" }, with_payload: false }));
await step("scrollOrderOffset", () => client.scroll("ordered", { order_by: "n", offset: 1 }));
await step("countHasId", () =>
  client.count("edits", { filter: { must: [{ has_id: [1, editsUuid.toUpperCase().replaceAll("-", "")] }] } }));
await step("scrollHasId", () => client.scroll("edits", { filter: { must_not: [{ has_id: [1] }] }, with_payload: false }));
await step("searchHasId", () =>
  client.search("edits", { vector: [1, 0, 0, 0], limit: 3, filter: { must: [{ has_id: [2, editsUuid] }] } }));
await step("deleteHasId", () => client.delete("edits", { filter: { must: [{ has_id: [editsUuid.toUpperCase()] }] } }));
await step("afterDeleteHasId", () => client.count("edits", {}));
await step("deleteCollection", () => client.deleteCollection("quantized"));
await step("afterDelete", () => client.getCollections());
console.log(JSON.stringify(out));

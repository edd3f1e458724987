/**
 * smoke.ts — drives VectorStore against a running vectord (the integration
 * test tests/integration/test_ts_client.py compiles and runs it):
 *   node smoke.js http://127.0.0.1:PORT [API_KEY]
 * Prints "ok" and exits 0, or prints what failed and exits 1.
 */
import { VectorStore, VectorStoreError } from "./vector-store";

// Node's globals, declared here so the example needs no @types/node.
declare const process: { argv: string[]; exit(code: number): never };

function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function main(): Promise<void> {
  const [baseUrl, apiKey] = process.argv.slice(2);
  const vs = new VectorStore({ baseUrl, apiKey, timeoutMs: 2000, retries: 2, backoffMs: 10 });
  check(await vs.healthy(), "healthy");
  check(await vs.ready(), "ready");
  await vs.createCollection("memories", { dim: 4, metric: "cosine",
    payload_indexes: { userId: "keyword" } });
  const r = await vs.upsert("memories", [
    { id: "m1", vector: [1, 0, 0, 0], payload: { userId: "u1", type: "fact" } },
    { id: "m2", vector: [0.9, 0.1, 0, 0], payload: { userId: "u1", type: "event" } },
    { id: "m3", vector: [0, 1, 0, 0], payload: { userId: "u2", type: "fact" } },
  ]);
  check(r.inserted === 3, "inserted 3");
  const hits = await vs.search("memories", [1, 0, 0, 0], { k: 2,
    filter: { must: [{ key: "userId", match: { value: "u1" } }] } });
  check(hits.length === 2 && hits[0].id === "m1" && hits[1].id === "m2", "filtered search");
  check(hits[0].payload?.type === "fact", "payload returned");
  const sh = await vs.shadowSearch("memories", [1, 0, 0, 0], ["m1", "m3"], 12.5, { k: 2 });
  check(sh.shadow.common === 1 && sh.shadow.overlap === 0.5, "shadow overlap");
  check(sh.points.length === 2, "shadow points");
  check((await vs.get("memories", "m3"))?.id === "m3", "get");
  check((await vs.delete("memories", ["m3"])) === 1, "delete");
  check((await vs.get("memories", "m3")) === null, "get after delete");
  try {
    await vs.search("memories", [1, 0, 0]);
    check(false, "dimension error expected");
  } catch (e) {
    check(e instanceof VectorStoreError && e.code === "dimension_mismatch" && e.status === 400,
      `dimension_mismatch error, got ${String(e)}`);
  }
  try {
    await vs.collection("nope");
    check(false, "404 expected");
  } catch (e) {
    check(e instanceof VectorStoreError && e.code === "collection_not_found", "404 code");
  }
  // Nothing listens here: a network error after the retries.
  const down = new VectorStore({ baseUrl: "http://127.0.0.1:1", timeoutMs: 500, retries: 1,
    backoffMs: 5 });
  try {
    await down.search("memories", [1, 0, 0, 0]);
    check(false, "network error expected");
  } catch (e) {
    check(e instanceof VectorStoreError && e.code === "network" && e.status === 0, "network code");
  }
  // The same search with vectors as JSON arrays gives the same answer.
  const plain = new VectorStore({ baseUrl, apiKey, base64Vectors: false });
  const again = await plain.search("memories", [1, 0, 0, 0], { k: 2,
    filter: { must: [{ key: "userId", match: { value: "u1" } }] } });
  check(JSON.stringify(again.map((h) => h.id)) === JSON.stringify(hits.map((h) => h.id)), "json vectors");
  check((await plain.upsert("memories", [{ id: "m4", vector: [0, 0, 1, 0] }])).inserted === 1, "json upsert");
  check((await vs.search("memories", [0, 0, 1, 0], { k: 1 }))[0].id === "m4", "b64 finds json upsert");
  check((await vs.delete("memories", ["m4"])) === 1, "delete m4");
  const info = await vs.collection("memories");
  check(info.points_count === 2, "points_count");
  await vs.dropCollection("memories");
  console.log("ok");
}

main().catch((e) => {
  console.error(String(e?.stack ?? e));
  process.exit(1);
});

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
  const baseUrl = process.argv[2] ?? "http://127.0.0.1:6480";
  const apiKey = process.argv[3];
  const auth = apiKey !== undefined ? { apiKey } : {};
  const vs = new VectorStore({ baseUrl, ...auth, timeoutMs: 2000, retries: 2, backoffMs: 10 });
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
  check(hits.length === 2 && hits[0]?.id === "m1" && hits[1]?.id === "m2", "filtered search");
  check(hits[0]?.payload?.["type"] === "fact", "payload returned");
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
    check(e instanceof VectorStoreError && /^[0-9a-f]{20}$/.test(e.requestId ?? ""),
      `the error names its request id, got ${String((e as VectorStoreError).requestId)}`);
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
  const plain = new VectorStore({ baseUrl, ...auth, base64Vectors: false });
  const again = await plain.search("memories", [1, 0, 0, 0], { k: 2,
    filter: { must: [{ key: "userId", match: { value: "u1" } }] } });
  check(JSON.stringify(again.map((h) => h.id)) === JSON.stringify(hits.map((h) => h.id)), "json vectors");
  check((await plain.upsert("memories", [{ id: "m4", vector: [0, 0, 1, 0] }])).inserted === 1, "json upsert");
  check((await vs.search("memories", [0, 0, 1, 0], { k: 1 }))[0]?.id === "m4", "b64 finds json upsert");
  check((await vs.delete("memories", ["m4"])) === 1, "delete m4");
  const info = await vs.collection("memories");
  check(info["points_count"] === 2, "points_count");
  // A string id and a number id are different points, both ways.
  await vs.upsert("memories", [{ id: "42", vector: [0, 0, 0, 1] }, { id: 7, vector: [0, 0, 1, 1] }]);
  check((await vs.get("memories", "42"))?.id === "42", "get string id 42");
  check((await vs.get("memories", 42)) === null, "number 42 is not string 42");
  check((await vs.get("memories", 7))?.id === 7, "get number id 7");
  check((await vs.get("memories", "7")) === null, "string 7 is not number 7");
  // Versions: an older write is skipped and counted.
  await vs.upsert("memories", [{ id: "v", vector: [1, 1, 0, 0], version: 10 }]);
  const stale = await vs.upsert("memories", [{ id: "v", vector: [1, 1, 1, 0], version: 3 }]);
  check(stale.stale === 1 && stale.inserted === 0 && stale.updated === 0, `stale counted, got ${JSON.stringify(stale)}`);
  // Batch search, and the nprobe / oversampling options (accepted, answers in order).
  const batch = await vs.searchBatch("memories", [
    { vector: [1, 0, 0, 0], k: 1 }, { vector: [0, 0, 0, 1], k: 1, nprobe: 4, oversampling: 2 }]);
  check(batch.length === 2 && batch[0]?.[0]?.id === "m1" && batch[1]?.[0]?.id === "42", "batch search");
  for (const id of ["42", "v"]) await vs.delete("memories", [id]);
  await vs.delete("memories", [7]);
  await vs.dropCollection("memories");
  await retries();
  console.log("ok");
}

/** What is retried, with a fetch that answers as vectord would. */
async function retries(): Promise<void> {
  let calls = 0;
  const answering = (status: number, code: string) => async (): Promise<Response> => {
    calls++;
    return new Response(JSON.stringify({ error: { code, message: code } }),
      { status, headers: { "Content-Type": "application/json" } });
  };
  const store = (status: number, code: string) => new VectorStore({ baseUrl: "http://x", retries: 2,
    backoffMs: 1, fetch: answering(status, code) as unknown as typeof fetch });
  for (const [status, code, want] of [[503, "overloaded", 3], [504, "feed_timeout", 1],
    [504, "deadline_exceeded", 1], [400, "invalid_request", 1]] as const) {
    calls = 0;
    try {
      await store(status, code).search("m", [1], { feedXid: 5 });
      check(false, `${code} expected`);
    } catch (e) {
      check(e instanceof VectorStoreError && e.code === code, `code ${code}`);
    }
    check(calls === want, `${code}: ${calls} attempts, want ${want}`);
  }
  // A feed wait longer than the client's timeout: the client waits for the server's answer.
  let seenTimeout = 0;
  const slow = new VectorStore({ baseUrl: "http://x", timeoutMs: 50, retries: 0,
    fetch: (async (_url: string, init: RequestInit) => {
      await new Promise((r) => setTimeout(r, 150));
      seenTimeout = init.signal?.aborted ? -1 : 1;
      return new Response(JSON.stringify({ result: [] }), { status: 200 });
    }) as unknown as typeof fetch });
  check((await slow.search("m", [1], { feedLsn: "0/1", feedTimeoutMs: 100 })).length === 0, "feed wait answered");
  check(seenTimeout === 1, "not aborted before the server's feed timeout");
}

main().catch((e) => {
  console.error(String(e?.stack ?? e));
  process.exit(1);
});

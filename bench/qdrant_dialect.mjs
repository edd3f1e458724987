// What the Qdrant dialect costs: the same searches on the same collection
// through vectord's native route (fetch), the Qdrant route (fetch), and the
// official Qdrant JS client, interleaved round by round on one keep-alive
// connection each. Prints a table of p50/p99 in ms.
// Usage (bench/qdrant_dialect.py starts the server and loads the data):
//   node bench/qdrant_dialect.mjs NATIVE_URL QDRANT_URL COLLECTION DIM QUERIES ROUNDS
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../tests/tools/package.json"));
const { QdrantClient } = await import(require.resolve("@qdrant/js-client-rest"));

const [nativeUrl, qdrantUrl, coll, dimArg, nqArg, roundsArg] = process.argv.slice(2);
const dim = Number(dimArg), nq = Number(nqArg), rounds = Number(roundsArg);
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
const queries = Array.from({ length: nq }, () => Array.from({ length: dim }, rand));
const client = new QdrantClient({ url: qdrantUrl, checkCompatibility: false });

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}
const ways = {
  "native route (fetch)": (q) => post(`${nativeUrl}/collections/${coll}/search`, { vector: q, k: 10, with_payload: false }),
  "Qdrant route (fetch)": (q) => post(`${qdrantUrl}/collections/${coll}/points/search`, { vector: q, limit: 10 }),
  "Qdrant JS client search()": (q) => client.search(coll, { vector: q, limit: 10 }),
};
const times = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
for (const q of queries.slice(0, 20)) for (const f of Object.values(ways)) await f(q); // warm up
for (let r = 0; r < rounds; r++)
  for (const [name, f] of Object.entries(ways))
    for (const q of queries) {
      const t = process.hrtime.bigint();
      await f(q);
      times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
const pct = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
console.log(`| ${dim}-d, k 10, ${nq} queries × ${rounds} rounds | p50 ms | p99 ms |\n|---|---|---|`);
for (const [name, a] of Object.entries(times)) console.log(`| ${name} | ${pct(a, 0.5).toFixed(3)} | ${pct(a, 0.99).toFixed(3)} |`);

// LangChain's Qdrant vector store (@langchain/qdrant, pinned in package.json)
// against vectord's Qdrant-compatible API, with a deterministic fake embedding
// (each text's letters counted into 8 dimensions). Prints one JSON object of
// results for tests/integration/test_qdrant.py. Usage: node langchain-qdrant.mjs URL
import { Embeddings } from "@langchain/core/embeddings";
import { Document } from "@langchain/core/documents";
import { QdrantVectorStore } from "@langchain/qdrant";

class LetterEmbeddings extends Embeddings {
  constructor() {
    super({});
  }
  embed(text) {
    const v = new Array(8).fill(0);
    for (const ch of text.toLowerCase()) {
      const c = ch.charCodeAt(0);
      if (c >= 97 && c <= 122) v[(c - 97) % 8] += 1;
    }
    v[7] += 0.01; // never the zero vector
    return v;
  }
  async embedDocuments(texts) {
    return texts.map((t) => this.embed(t));
  }
  async embedQuery(text) {
    return this.embed(text);
  }
}

const url = process.argv[2];
const embeddings = new LetterEmbeddings();
const out = {};
async function step(name, fn) {
  try {
    out[name] = { ok: await fn() };
  } catch (e) {
    out[name] = { error: String(e?.message ?? e) };
  }
}
const show = (pairs) => pairs.map(([d, s]) => ({ id: d.id, text: d.pageContent, metadata: d.metadata, score: s }));

const store = new QdrantVectorStore(embeddings, { url, collectionName: "lc_docs" });
const ids = [
  "0b8f7a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
  "1c9a8b5f-2d3e-4f6a-9b0c-1d2e3f4a5b6c",
  "2daa9c6a-3e4f-4a7b-8c1d-2e3f4a5b6c7d",
  "3ebbad7b-4f5a-4b8c-9d2e-3f4a5b6c7d8e",
];
await step("addDocuments", async () => {
  await store.addDocuments(
    [
      new Document({ pageContent: "apples and bananas", metadata: { source: "fruit", n: 1 } }),
      new Document({ pageContent: "apple pie with bananas", metadata: { source: "fruit", n: 2 } }),
      new Document({ pageContent: "quick brown fox", metadata: { source: "animals", n: 3 } }),
      new Document({ pageContent: "lazy dog sleeps", metadata: { source: "animals", n: 4 } }),
    ],
    { ids },
  );
  return true;
});
await step("similarity", async () => show(await store.similaritySearchWithScore("apples bananas", 2)));
await step("filtered", async () =>
  show(await store.similaritySearchWithScore("apples bananas", 2, {
    must: [{ key: "metadata.source", match: { value: "animals" } }],
  })));
await step("mmr", async () =>
  (await store.maxMarginalRelevanceSearch("apples bananas", { k: 2, fetchK: 4, lambda: 0.5 })).map((d) => d.pageContent));
await step("delete", async () => {
  await store.delete({ ids: [ids[0]] });
  return true;
});
await step("existing", async () => {
  const again = await QdrantVectorStore.fromExistingCollection(embeddings, { url, collectionName: "lc_docs" });
  return show(await again.similaritySearchWithScore("apples bananas", 4));
});
await step("deleteByFilter", async () => {
  await store.delete({ filter: { must: [{ key: "metadata.source", match: { value: "animals" } }] } });
  return show(await store.similaritySearchWithScore("fox dog", 4));
});
console.log(JSON.stringify(out));

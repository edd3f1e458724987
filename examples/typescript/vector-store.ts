/**
 * vector-store.ts — a small typed client for vectord, for MemoryService.
 *
 * fetch-based (Node 18+ or a browser), no dependencies. Every call has a
 * timeout (AbortController); idempotent calls are retried on network errors
 * and on 502/503/504 (overloaded, not_ready, wal_disk_full) with exponential
 * backoff that honours Retry-After, but not on a timeout or on the 504s that
 * waiting again would repeat (feed_timeout, deadline_exceeded). Errors surface as VectorStoreError with vectord's
 * stable error code (docs/API.md). Vectors travel as base64 float32
 * ("vector_b64") by default: vectord parses that about 0.2 ms faster per
 * 1536-d search than a JSON array of numbers (docs/BENCHMARKS.md).
 */

export type Metric = "cosine" | "dot" | "l2";
export type PointId = string | number;
export type Payload = Record<string, unknown>;

/** A filter in vectord's filter language (docs/API.md "Filters"). */
export interface Filter {
  must?: Condition[];
  should?: Condition[];
  must_not?: Condition[];
}
export type Condition =
  | Filter
  | { key: string; match: { value: string | number | boolean } | { any: (string | number)[] } }
  | { key: string; range: { gt?: number; gte?: number; lt?: number; lte?: number } };

export interface CollectionConfig {
  dim: number;
  metric?: Metric;
  shards?: number;
  index?: { type: "flat" } | { type: "hnsw"; m?: number; ef_construction?: number; ef_search?: number };
  payload_indexes?: Record<string, "keyword" | "numeric">;
}

export interface Point {
  id: PointId;
  vector: number[];
  payload?: Payload;
  version?: number;
}

export interface Hit {
  id: PointId;
  score: number;
  version: number;
  payload?: Payload;
  vector?: number[];
}

export interface SearchOptions {
  k?: number;
  filter?: Filter;
  withPayload?: boolean;
  withVector?: boolean;
  scoreThreshold?: number;
  ef?: number;
  /** IVF collections: lists probed. */
  nprobe?: number;
  /** Quantized collections: candidates re-ranked per result. */
  oversampling?: number;
  exact?: boolean;
  /** Read-your-writes, outbox feed: wait until the feed has applied this transaction id
   * (pg_current_xact_id() in the writing transaction). */
  feedXid?: string | number;
  /** Read-your-writes, logical-replication feed: wait until the feed has applied every change
   * committed before this LSN (pg_current_wal_lsn() after the commit), e.g. "16/B374D848". */
  feedLsn?: string;
  /** How long the server waits for the feed (default 5000 ms there). */
  feedTimeoutMs?: number;
}

/** One search of a batch: its vector and options (feed waits apply to the whole batch). */
export interface BatchSearch extends Omit<SearchOptions, "feedXid" | "feedLsn" | "feedTimeoutMs"> {
  vector: number[];
}

export interface ShadowResult {
  points: Hit[];
  shadow: {
    k: number;
    overlap: number;
    common: number;
    vectord_count: number;
    baseline_count: number;
    missing: PointId[];
    extra: PointId[];
    latency_ms: number;
    baseline_latency_ms: number;
  };
}

export interface UpsertResult {
  inserted: number;
  updated: number;
  /** Points skipped because the stored version is newer (vectord's skipped_stale). */
  stale: number;
}

export interface VectorStoreOptions {
  /** e.g. "http://vectord:6480" */
  baseUrl: string;
  /** Sent as "Authorization: Bearer <key>". */
  apiKey?: string;
  /** Per attempt, in ms (default 10000). A search that waits for the feed gets at least its
   * feed timeout plus a second, so the server's feed_timeout answer arrives first. */
  timeoutMs?: number;
  /** Retries after the first attempt for idempotent calls (default 2). */
  retries?: number;
  /** First backoff in ms, doubled per retry (default 50). */
  backoffMs?: number;
  /** Send vectors as base64 float32 (default true) or as JSON arrays. */
  base64Vectors?: boolean;
  fetch?: typeof fetch;
}

export class VectorStoreError extends Error {
  constructor(
    message: string,
    /** vectord's error code ("collection_not_found", "overloaded", …), or "network" / "timeout". */
    readonly code: string,
    /** HTTP status, 0 when no answer came. */
    readonly status: number,
    /** The request's X-Request-Id (in vectord's log lines too), when an answer came. */
    readonly requestId?: string,
  ) {
    super(message);
    this.name = "VectorStoreError";
  }
}

const RETRYABLE_STATUS = new Set([502, 503, 504]);
/** Answers that waiting again would only repeat: the feed or the request ran out of time. */
const FINAL_CODES = new Set(["feed_timeout", "deadline_exceeded"]);
const FEED_TIMEOUT_DEFAULT_MS = 5000;

export class VectorStore {
  private readonly base: string;
  private readonly opts: Required<Omit<VectorStoreOptions, "apiKey" | "fetch">> & {
    apiKey?: string;
    fetch: typeof fetch;
  };

  constructor(options: VectorStoreOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.opts = {
      baseUrl: this.base,
      ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
      timeoutMs: options.timeoutMs ?? 10000,
      retries: options.retries ?? 2,
      backoffMs: options.backoffMs ?? 50,
      base64Vectors: options.base64Vectors ?? true,
      fetch: options.fetch ?? fetch,
    };
  }

  /** true when the process is up (GET /healthz). */
  async healthy(): Promise<boolean> {
    try {
      await this.call("GET", "/healthz", undefined, true);
      return true;
    } catch {
      return false;
    }
  }

  /** true when vectord has recovered and its feeds are within their lag bound. */
  async ready(): Promise<boolean> {
    try {
      await this.call("GET", "/readyz", undefined, false);
      return true;
    } catch {
      return false;
    }
  }

  async createCollection(name: string, config: CollectionConfig): Promise<unknown> {
    return this.call("PUT", `/collections/${enc(name)}`, config, false);
  }

  async collection(name: string): Promise<Record<string, unknown>> {
    return this.call("GET", `/collections/${enc(name)}`, undefined, true);
  }

  async dropCollection(name: string): Promise<void> {
    await this.call("DELETE", `/collections/${enc(name)}`, undefined, true);
  }

  /** Upserts are idempotent (same id, same data), so they are retried. */
  async upsert(collection: string, points: Point[]): Promise<UpsertResult> {
    const body = points.map(({ vector, ...rest }) => ({ ...rest, ...this.vectorField(vector) }));
    const r = await this.call<{ inserted: number; updated: number; skipped_stale?: number }>(
      "PUT", `/collections/${enc(collection)}/points`, { points: body }, true);
    return { inserted: r.inserted, updated: r.updated, stale: r.skipped_stale ?? 0 };
  }

  /** The point with this id: a string id and a number id are different points ("42" ≠ 42). */
  async get(collection: string, id: PointId): Promise<Hit | null> {
    const idType = typeof id === "number" ? "int" : "string";
    try {
      return await this.call("GET",
        `/collections/${enc(collection)}/points/${enc(String(id))}?id_type=${idType}`, undefined, true);
    } catch (e) {
      if (e instanceof VectorStoreError && e.code === "point_not_found") return null;
      throw e;
    }
  }

  async delete(collection: string, ids: PointId[]): Promise<number> {
    const r = await this.call<{ deleted: number }>("POST",
      `/collections/${enc(collection)}/points/delete`, { ids }, true);
    return r.deleted;
  }

  async deleteWhere(collection: string, filter: Filter): Promise<number> {
    const r = await this.call<{ deleted: number }>("POST",
      `/collections/${enc(collection)}/points/delete`, { filter }, true);
    return r.deleted;
  }

  async search(collection: string, vector: number[], options: SearchOptions = {}): Promise<Hit[]> {
    return this.call("POST", `/collections/${enc(collection)}/search${feedQuery(options)}`,
      { ...searchBody(options), ...this.vectorField(vector) }, true, feedWaitMs(options));
  }

  /** Several searches in one request; the answers in the same order. */
  async searchBatch(collection: string, searches: BatchSearch[],
    feed: Pick<SearchOptions, "feedXid" | "feedLsn" | "feedTimeoutMs"> = {}): Promise<Hit[][]> {
    const body = searches.map(({ vector, ...o }) => ({ ...searchBody(o), ...this.vectorField(vector) }));
    return this.call("POST", `/collections/${enc(collection)}/search/batch${feedQuery(feed)}`,
      { searches: body }, true, feedWaitMs(feed));
  }

  /**
   * The shadow phase: run vectord's search and compare it with the ids the
   * current implementation returned (best first); vectord records overlap@k.
   */
  async shadowSearch(collection: string, vector: number[], baselineIds: PointId[],
    baselineLatencyMs: number, options: SearchOptions = {}): Promise<ShadowResult> {
    const body = { ...searchBody(options), ...this.vectorField(vector),
      baseline: { ids: baselineIds, latency_ms: baselineLatencyMs } };
    return this.call("POST", `/collections/${enc(collection)}/search/shadow${feedQuery(options)}`,
      body, true, feedWaitMs(options));
  }

  private vectorField(vector: number[]): { vector: number[] } | { vector_b64: string } {
    return this.opts.base64Vectors ? { vector_b64: float32Base64(vector) } : { vector };
  }

  private async call<T>(method: string, path: string, body: unknown, idempotent: boolean,
    serverWaitMs = 0): Promise<T> {
    const attempts = idempotent ? this.opts.retries + 1 : 1;
    // A search that waits for the feed may take that long on the server: wait for its answer.
    const timeoutMs = Math.max(this.opts.timeoutMs, serverWaitMs ? serverWaitMs + 1000 : 0);
    let last: VectorStoreError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(this.delay(attempt, last));
      try {
        return await this.once<T>(method, path, body, timeoutMs);
      } catch (e) {
        if (!(e instanceof VectorStoreError)) throw e;
        last = e;
        const retryable = (e.status === 0 && e.code !== "timeout") ||
          (RETRYABLE_STATUS.has(e.status) && !FINAL_CODES.has(e.code));
        if (!retryable) throw e;
      }
    }
    throw last as VectorStoreError;
  }

  private retryAfterMs = new WeakMap<VectorStoreError, number>();

  private delay(attempt: number, last: VectorStoreError | undefined): number {
    const backoff = this.opts.backoffMs * 2 ** (attempt - 1);
    const hinted = last ? this.retryAfterMs.get(last) : undefined;
    // Retry-After is in seconds; do not wait longer than one attempt's timeout.
    return Math.min(Math.max(backoff, hinted ?? 0), this.opts.timeoutMs);
  }

  private async once<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.opts.apiKey) headers["Authorization"] = `Bearer ${this.opts.apiKey}`;
    let res: Response;
    let text: string;
    try {
      res = await this.opts.fetch(this.base + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: ctl.signal,
      });
      text = await res.text();
    } catch (e) {
      const aborted = ctl.signal.aborted;
      throw new VectorStoreError(
        aborted ? `${method} ${path}: no answer within ${timeoutMs} ms`
          : `${method} ${path}: ${(e as Error).message}`,
        aborted ? "timeout" : "network", 0);
    } finally {
      clearTimeout(timer);
    }
    let doc: { result?: T; error?: { code: string; message: string; request_id?: string } };
    try {
      doc = JSON.parse(text);
    } catch {
      throw new VectorStoreError(`${method} ${path}: HTTP ${res.status}, not JSON`, "bad_response",
        res.status);
    }
    if (!res.ok || doc.error) {
      const err = new VectorStoreError(doc.error?.message ?? `HTTP ${res.status}`,
        doc.error?.code ?? "http_error", res.status,
        doc.error?.request_id ?? res.headers.get("X-Request-Id") ?? undefined);
      const ra = Number(res.headers.get("Retry-After"));
      if (Number.isFinite(ra) && ra > 0) this.retryAfterMs.set(err, ra * 1000);
      throw err;
    }
    return doc.result as T;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Little-endian float32 bytes, base64-encoded (vectord's "vector_b64"). */
export function float32Base64(vector: number[]): string {
  const view = new DataView(new ArrayBuffer(vector.length * 4));
  vector.forEach((x, i) => view.setFloat32(i * 4, x, true));
  const bytes = new Uint8Array(view.buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function searchBody(o: SearchOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { k: o.k ?? 10 };
  if (o.filter) body.filter = o.filter;
  if (o.withPayload !== undefined) body.with_payload = o.withPayload;
  if (o.withVector !== undefined) body.with_vector = o.withVector;
  if (o.scoreThreshold !== undefined) body.score_threshold = o.scoreThreshold;
  if (o.ef !== undefined) body.ef = o.ef;
  if (o.nprobe !== undefined) body.nprobe = o.nprobe;
  if (o.oversampling !== undefined) body.oversampling = o.oversampling;
  if (o.exact !== undefined) body.exact = o.exact;
  return body;
}

type FeedWait = Pick<SearchOptions, "feedXid" | "feedLsn" | "feedTimeoutMs">;

function feedQuery(o: FeedWait): string {
  const q = new URLSearchParams();
  if (o.feedXid !== undefined) q.set("feed_xid", String(o.feedXid));
  if (o.feedLsn !== undefined) q.set("feed_lsn", o.feedLsn);
  if (!q.toString()) return "";
  if (o.feedTimeoutMs !== undefined) q.set("feed_timeout_ms", String(o.feedTimeoutMs));
  return `?${q.toString()}`;
}

/** How long the server may hold a search that waits for the feed (0: it does not wait). */
function feedWaitMs(o: FeedWait): number {
  return o.feedXid === undefined && o.feedLsn === undefined ? 0 : o.feedTimeoutMs ?? FEED_TIMEOUT_DEFAULT_MS;
}

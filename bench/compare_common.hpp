// compare_common.hpp — what the in-process HNSW libraries' benchmarks for
// bench/compare-hnsw share (hnsw_hnswlib.cpp, hnsw_usearch.cpp): reading the
// data directory, the command line, and the search sweep that prints one JSON
// line per (ef, filter) exactly as bench_hnsw_vectord does.
//
// A data directory holds base.fvecs, query.fvecs and the top-k ground truth
// gt.ivecs (no filter) and gt_f1/gt_f10/gt_f50.ivecs (points with
// id % 100 < 1, 10, 50). Rows are (int32 d, d values).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace bench {

inline double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename T> std::vector<T> read_vecs(const std::string &path, size_t &n, size_t &d)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        fprintf(stderr, "cannot open %s (run bench/datagen.py or bench/compare-hnsw --real)\n", path.c_str());
        exit(1);
    }
    int32_t dim;
    f.read(reinterpret_cast<char *>(&dim), 4);
    f.seekg(0, std::ios::end);
    size_t bytes = f.tellg();
    f.seekg(0);
    d = dim;
    n = bytes / (4 * (d + 1));
    std::vector<T> out(n * d);
    for (size_t i = 0; i < n; i++) {
        f.read(reinterpret_cast<char *>(&dim), 4);
        f.read(reinterpret_cast<char *>(&out[i * d]), 4 * d);
    }
    return out;
}

inline long rss_bytes()
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* Scales every row of a (n × d) to unit length: cosine becomes inner product. */
inline void normalize_rows(std::vector<float> &a, size_t d)
{
    for (size_t i = 0; i < a.size() / d; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)a[i * d + j] * a[i * d + j];
        float inv = s > 0 ? (float)(1.0 / std::sqrt(s)) : 0.f;
        for (size_t j = 0; j < d; j++)
            a[i * d + j] *= inv;
    }
}

struct args {
    std::string dir, metric = "cosine", efs = "16,32,64,128,256";
    size_t m = 16, efc = 200, threads = 2;
    bool serve = false; /* --serve 1: after the build, passes as stdin asks (see sweep) */
};

inline args parse_args(int argc, char **argv)
{
    args a;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR [--m M] [--efc EFC] [--threads T] [--ef LIST] "
                        "[--metric cosine|l2] [--serve 1]\n", argv[0]);
        exit(2);
    }
    a.dir = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--m") a.m = atoi(argv[i + 1]);
        else if (k == "--efc") a.efc = atoi(argv[i + 1]);
        else if (k == "--threads") a.threads = atoi(argv[i + 1]);
        else if (k == "--ef") a.efs = argv[i + 1];
        else if (k == "--metric") a.metric = argv[i + 1];
        else if (k == "--serve") a.serve = atoi(argv[i + 1]) != 0;
    }
    return a;
}

struct data {
    size_t n, dim, nq, k;
    std::vector<float> base, queries;
    std::vector<int32_t> gt[4];
};

constexpr int filter_pct[] = {100, 1, 10, 50};

/* Reads the directory; with cosine, base and queries are normalised. */
inline data load(const args &a)
{
    data d;
    size_t qd, ng;
    d.base = read_vecs<float>(a.dir + "/base.fvecs", d.n, d.dim);
    d.queries = read_vecs<float>(a.dir + "/query.fvecs", d.nq, qd);
    const char *names[] = {"gt.ivecs", "gt_f1.ivecs", "gt_f10.ivecs", "gt_f50.ivecs"};
    for (int f = 0; f < 4; f++)
        d.gt[f] = read_vecs<int32_t>(a.dir + "/" + names[f], ng, d.k);
    if (a.metric == "cosine") {
        normalize_rows(d.base, d.dim);
        normalize_rows(d.queries, d.dim);
    }
    return d;
}

inline void print_build(const char *system, const args &a, const data &d, double seconds,
                        double index_bytes_per_vector, long rss_grown)
{
    printf("{\"system\":\"%s\",\"phase\":\"build\",\"n\":%zu,\"dim\":%zu,\"m\":%zu,\"efc\":%zu,"
           "\"threads\":%zu,\"seconds\":%.3f,\"vectors_per_s\":%.1f,\"index_bytes_per_vector\":%.1f,"
           "\"rss_bytes_per_vector\":%.1f}\n",
           system, d.n, d.dim, a.m, a.efc, a.threads, seconds, d.n / seconds, index_bytes_per_vector,
           (double)rss_grown / d.n);
    fflush(stdout);
}

/* One search: the query, k, ef, the filter's percentage (100 = none);
 * returns the ids found, nearest first. */
using search_fn = std::function<void(const float *q, size_t k, size_t ef, int pct, std::vector<size_t> &out)>;

/* One timed pass: every query at ef with filter number f (filter_pct),
 * single thread; prints recall@k, QPS and latency as one JSON line. */
inline void one_pass(const char *system, const data &d, const search_fn &search, size_t ef, int f)
{
    std::vector<double> lat(d.nq);
    std::vector<size_t> found;
    double hits = 0;
    double tq = now_s();
    for (size_t q = 0; q < d.nq; q++) {
        double t = now_s();
        found.clear();
        search(&d.queries[q * d.dim], d.k, ef, filter_pct[f], found);
        lat[q] = (now_s() - t) * 1e3;
        for (size_t id : found)
            for (size_t j = 0; j < d.k; j++)
                if ((int32_t)id == d.gt[f][q * d.k + j])
                    hits++;
    }
    double wall = now_s() - tq;
    std::sort(lat.begin(), lat.end());
    printf("{\"system\":\"%s\",\"phase\":\"search\",\"ef\":%zu,\"filter_pct\":%d,"
           "\"recall\":%.4f,\"qps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           system, ef, filter_pct[f], hits / (d.nq * d.k), d.nq / wall, lat[d.nq / 2],
           lat[d.nq * 99 / 100]);
    fflush(stdout);
}

/* One timed chunk (queries first .. first+count-1) for --serve: one JSON line
 * with the hits, the wall time and every query's latency. */
inline void one_chunk(const char *system, const data &d, const search_fn &search, size_t ef, int f,
                      size_t first, size_t count)
{
    std::vector<size_t> found;
    first = std::min(first, d.nq);
    count = std::min(count, d.nq - first);
    std::vector<double> lat(count);
    double hits = 0, tq = now_s();
    for (size_t q = first; q < first + count; q++) {
        double t = now_s();
        found.clear();
        search(&d.queries[q * d.dim], d.k, ef, filter_pct[f], found);
        lat[q - first] = (now_s() - t) * 1e3;
        for (size_t id : found)
            for (size_t j = 0; j < d.k; j++)
                if ((int32_t)id == d.gt[f][q * d.k + j])
                    hits++;
    }
    double wall = now_s() - tq;
    printf("{\"system\":\"%s\",\"phase\":\"chunk\",\"ef\":%zu,\"filter_pct\":%d,\"k\":%zu,"
           "\"count\":%zu,\"hits\":%.0f,\"wall_s\":%.9f,\"lat_ms\":[",
           system, ef, filter_pct[f], d.k, count, hits, wall);
    for (size_t i = 0; i < count; i++)
        printf("%s%.4f", i ? "," : "", lat[i]);
    printf("]}\n");
    fflush(stdout);
}

/* With --serve 1: reads "EF PCT FIRST COUNT" lines from stdin and answers
 * each with one chunk, until EOF. bench/compare-hnsw keeps every system's
 * index built in its own process and alternates their chunks, a few
 * milliseconds each, so a slow spell of this shared machine falls on all of
 * them alike. Without it: for each ef of the sweep and each filter, one
 * pass, after an untimed warm-up pass over every query at the sweep's first
 * ef (the build leaves caches, the allocator and the page tables cold;
 * bench_hnsw_vectord does the same). */
inline void sweep(const char *system, const args &a, const data &d, const search_fn &search)
{
    if (a.serve) {
        size_t ef, first, count;
        int pct;
        while (scanf("%zu %d %zu %zu", &ef, &pct, &first, &count) == 4)
            for (int f = 0; f < 4; f++)
                if (filter_pct[f] == pct)
                    one_chunk(system, d, search, ef, f, first, count);
        return;
    }
    std::vector<size_t> found;
    size_t warm_ef = atoi(a.efs.c_str());
    for (size_t q = 0; q < d.nq; q++) {
        found.clear();
        search(&d.queries[q * d.dim], d.k, warm_ef, 100, found);
    }
    std::stringstream ss(a.efs);
    std::string tok;
    while (std::getline(ss, tok, ','))
        for (int f = 0; f < 4; f++)
            one_pass(system, d, search, atoi(tok.c_str()), f);
}

} // namespace bench

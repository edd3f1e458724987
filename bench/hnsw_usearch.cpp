// hnsw_usearch.cpp — USearch's HNSW (its C++ headers, from the npm package
// `usearch`, which ships include/usearch/) on the same data as
// bench_hnsw_vectord, for bench/compare-hnsw. Built by that script with
// -O3 -march=native, as hnswlib's side is.
//
//   bench_hnsw_usearch DATA_DIR [--m 16] [--efc 200] [--threads 2] [--ef LIST] [--metric cosine|l2]
//
// float32 vectors (no quantization); cosine is inner product over rows
// normalised beforehand. Filters use USearch's own filtered search (a
// predicate on the key: id % 100 < s), which walks the graph keeping only
// matching nodes, as vectord's does.
#include <usearch/index_dense.hpp>

#include <atomic>
#include <thread>

#include "compare_common.hpp"

using namespace unum::usearch;

int main(int argc, char **argv)
{
    bench::args a = bench::parse_args(argc, argv);
    bench::data d = bench::load(a);
    metric_kind_t kind = a.metric == "l2" ? metric_kind_t::l2sq_k : metric_kind_t::ip_k;
    metric_punned_t metric(d.dim, kind, scalar_kind_t::f32_k);
    index_dense_config_t config(a.m, 2 * a.m);
    config.expansion_add = a.efc;
    long rss0 = bench::rss_bytes();
    auto made = index_dense_t::make(metric, config);
    if (!made) {
        fprintf(stderr, "usearch: %s\n", made.error.release());
        return 1;
    }
    index_dense_t index = std::move(made.index);
    index.reserve(index_limits_t(d.n, std::max<size_t>(a.threads, 1)));
    double t0 = bench::now_s();
    std::vector<std::thread> pool;
    std::atomic<size_t> next(0);
    for (size_t t = 0; t < std::max<size_t>(a.threads, 1); t++)
        pool.emplace_back([&, t] {
            for (size_t i; (i = next++) < d.n;)
                index.add(i, &d.base[i * d.dim], t);
        });
    for (auto &t : pool)
        t.join();
    double build_s = bench::now_s() - t0;
    bench::print_build("usearch", a, d, build_s,
                       (double)index.memory_usage() / d.n - 4.0 * d.dim, bench::rss_bytes() - rss0);

    std::vector<index_dense_t::vector_key_t> keys(1);
    bench::sweep("usearch", a, d, [&](const float *q, size_t k, size_t ef, int pct, std::vector<size_t> &out) {
        index.change_expansion_search(std::max(ef, k));
        auto res = pct < 100
                       ? index.filtered_search(q, k, [pct](auto const &key) { return (int)((std::uint64_t)key % 100) < pct; })
                       : index.search(q, k);
        keys.resize(k);
        size_t found = res.dump_to(keys.data(), k);
        out.assign(keys.begin(), keys.begin() + found);
    });
    return 0;
}

// hnsw_hnswlib.cpp — hnswlib (Debian's header-only libhnswlib-dev) on the same
// data as bench_hnsw_vectord, for bench/compare-hnsw. Built by that script
// with -O3 -march=native (bench only; vectord itself never uses -march=native).
//
//   bench_hnsw_hnswlib DATA_DIR [--m 16] [--efc 200] [--threads 2] [--ef LIST] [--metric cosine|l2]
//
// Cosine is inner product over rows normalised beforehand (what hnswlib's
// users do). hnswlib 0.6 has no filtered search, so filters are answered the
// way its users do: over-fetch 2·k·100/s candidates and keep those with
// g = id % 100 < s.
#include <hnswlib/hnswlib.h>

#include <atomic>
#include <memory>
#include <thread>

#include "compare_common.hpp"

int main(int argc, char **argv)
{
    bench::args a = bench::parse_args(argc, argv);
    bench::data d = bench::load(a);
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    if (a.metric == "l2")
        space.reset(new hnswlib::L2Space(d.dim));
    else
        space.reset(new hnswlib::InnerProductSpace(d.dim));
    long rss0 = bench::rss_bytes();
    auto *index = new hnswlib::HierarchicalNSW<float>(space.get(), d.n, a.m, a.efc, 100);
    double t0 = bench::now_s();
    index->addPoint(&d.base[0], 0);
    std::vector<std::thread> pool;
    std::atomic<size_t> next(1);
    for (size_t t = 0; t < a.threads; t++)
        pool.emplace_back([&] {
            for (size_t i; (i = next++) < d.n;)
                index->addPoint(&d.base[i * d.dim], i);
        });
    for (auto &t : pool)
        t.join();
    bench::print_build("hnswlib", a, d, bench::now_s() - t0,
                       (double)(index->size_data_per_element_ - d.dim * 4 + sizeof(void *)),
                       bench::rss_bytes() - rss0);

    bench::sweep("hnswlib", a, d, [&](const float *q, size_t k, size_t ef, int pct, std::vector<size_t> &out) {
        size_t fetch = pct < 100 ? std::min(d.n, k * 100 / pct * 2) : k;
        index->setEf(std::max(ef, fetch));
        auto res = index->searchKnn(q, fetch);
        std::vector<std::pair<float, size_t>> kept;
        for (; !res.empty(); res.pop())
            if ((int)(res.top().second % 100) < pct)
                kept.push_back(res.top());
        std::sort(kept.begin(), kept.end());
        for (size_t i = 0; i < kept.size() && i < k; i++)
            out.push_back(kept[i].second);
    });
    delete index;
    return 0;
}

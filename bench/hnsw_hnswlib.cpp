// hnsw_hnswlib.cpp — hnswlib (Debian's header-only libhnswlib-dev) on the same
// data as bench_hnsw_vectord, for bench/compare-hnsw. Built by that script
// with -O3 -march=native (bench only; vectord itself never uses -march=native).
//
//   bench_hnsw_hnswlib DATA_DIR [--m 16] [--efc 200] [--threads 2] [--ef LIST]
//
// hnswlib 0.6 has no filtered search, so filters are answered the way its
// users do: over-fetch k·100/s candidates and keep those with g = id % 100 < s.
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

static double vd_now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename T> static std::vector<T> read_vecs(const std::string &path, size_t &n, size_t &d)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        fprintf(stderr, "cannot open %s (run bench/datagen.py)\n", path.c_str());
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

static long rss_bytes()
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

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    std::string dir = argv[1];
    size_t m = 16, efc = 200, threads = 2;
    std::string efs = "16,32,64,128,256";
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--m") m = atoi(argv[i + 1]);
        else if (a == "--efc") efc = atoi(argv[i + 1]);
        else if (a == "--threads") threads = atoi(argv[i + 1]);
        else if (a == "--ef") efs = argv[i + 1];
    }
    size_t n, dim, nq, qd, ng, k;
    auto base = read_vecs<float>(dir + "/base.fvecs", n, dim);
    auto queries = read_vecs<float>(dir + "/query.fvecs", nq, qd);
    const char *gt_names[] = {"gt.ivecs", "gt_f1.ivecs", "gt_f10.ivecs", "gt_f50.ivecs"};
    const int filter_pct[] = {100, 1, 10, 50};
    std::vector<int32_t> gt[4];
    for (int f = 0; f < 4; f++)
        gt[f] = read_vecs<int32_t>(dir + "/" + gt_names[f], ng, k);

    // The data is L2-normalised, so inner product is cosine.
    hnswlib::InnerProductSpace space(dim);
    long rss0 = rss_bytes();
    auto *index = new hnswlib::HierarchicalNSW<float>(&space, n, m, efc, 100);
    double t0 = vd_now_s();
    index->addPoint(&base[0], 0);
    std::vector<std::thread> pool;
    std::atomic<size_t> next(1);
    for (size_t t = 0; t < threads; t++)
        pool.emplace_back([&] {
            for (size_t i; (i = next++) < n;)
                index->addPoint(&base[i * dim], i);
        });
    for (auto &t : pool)
        t.join();
    double build_s = vd_now_s() - t0;
    printf("{\"system\":\"hnswlib\",\"phase\":\"build\",\"n\":%zu,\"dim\":%zu,\"m\":%zu,\"efc\":%zu,"
           "\"threads\":%zu,\"seconds\":%.3f,\"vectors_per_s\":%.1f,\"index_bytes_per_vector\":%.1f,"
           "\"rss_bytes_per_vector\":%.1f}\n",
           n, dim, m, efc, threads, build_s, n / build_s,
           (double)(index->size_data_per_element_ - dim * 4 + sizeof(void *)), 
           (double)(rss_bytes() - rss0) / n);
    fflush(stdout);

    std::stringstream ss(efs);
    std::string tok;
    std::vector<double> lat(nq);
    while (std::getline(ss, tok, ',')) {
        size_t ef = atoi(tok.c_str());
        for (int f = 0; f < 4; f++) {
            size_t fetch = filter_pct[f] < 100 ? std::min(n, k * 100 / filter_pct[f] * 2) : k;
            index->setEf(std::max(ef, fetch));
            double hits = 0;
            double tq = vd_now_s();
            for (size_t q = 0; q < nq; q++) {
                double t = vd_now_s();
                auto res = index->searchKnn(&queries[q * dim], fetch);
                std::vector<std::pair<float, size_t>> kept;
                while (!res.empty()) {
                    auto p = res.top();
                    res.pop();
                    if ((int)(p.second % 100) < filter_pct[f])
                        kept.push_back({p.first, p.second});
                }
                std::sort(kept.begin(), kept.end());
                if (kept.size() > k)
                    kept.resize(k);
                lat[q] = (vd_now_s() - t) * 1e3;
                for (auto &p : kept)
                    for (size_t j = 0; j < k; j++)
                        if ((int32_t)p.second == gt[f][q * k + j])
                            hits++;
            }
            double wall = vd_now_s() - tq;
            std::sort(lat.begin(), lat.end());
            printf("{\"system\":\"hnswlib\",\"phase\":\"search\",\"ef\":%zu,\"filter_pct\":%d,"
                   "\"recall\":%.4f,\"qps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
                   ef, filter_pct[f], hits / (nq * k), nq / wall, lat[nq / 2], lat[nq * 99 / 100]);
            fflush(stdout);
        }
    }
    delete index;
    return 0;
}

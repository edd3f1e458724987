/* bitset.c — the bit count of util/bitset.h, dispatched on the CPU. */
#include "util/bitset.h"

/* Inlined into each caller below, so that in count_popcnt
 * __builtin_popcountll is one POPCNT. */
static inline __attribute__((always_inline)) size_t count_words(const uint64_t *w, size_t n_words)
{
    size_t c = 0;
    for (size_t i = 0; i < n_words; i++)
        c += (size_t)__builtin_popcountll(w[i]);
    return c;
}

size_t vd_bitset_count_portable(const uint64_t *w, size_t n_words) { return count_words(w, n_words); }

#if defined(__x86_64__)
__attribute__((target("popcnt"))) static size_t count_popcnt(const uint64_t *w, size_t n_words)
{
    return count_words(w, n_words);
}
#endif

size_t vd_bitset_count(const uint64_t *w, size_t n_words)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("popcnt"))
        return count_popcnt(w, n_words);
#endif
    return vd_bitset_count_portable(w, n_words);
}

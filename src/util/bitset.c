/* bitset.c — the bit count of util/bitset.h, dispatched on the CPU. */
#include "util/bitset.h"

size_t vd_bitset_count_portable(const uint64_t *w, size_t n_words)
{
    size_t c = 0;
    for (size_t i = 0; i < n_words; i++)
        c += (size_t)__builtin_popcountll(w[i]);
    return c;
}

#if defined(__x86_64__)
/* The same loop, where __builtin_popcountll is one POPCNT. */
__attribute__((target("popcnt"))) static size_t count_popcnt(const uint64_t *w, size_t n_words)
{
    size_t c = 0;
    for (size_t i = 0; i < n_words; i++)
        c += (size_t)__builtin_popcountll(w[i]);
    return c;
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

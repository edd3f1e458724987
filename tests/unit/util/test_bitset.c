/* Bit counts (util/bitset.c): the dispatched count (POPCNT where the CPU has
 * it) and the portable one both equal a bit-by-bit count, for random words
 * of every density and every length up to 300 words. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "util/bitset.h"

Test(bitset, counts_match_a_bit_by_bit_count)
{
    srand(17);
    uint64_t w[300];
    for (int round = 0; round < 600; round++) {
        size_t n = (size_t)rand() % 301, want = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
            w[i] = round % 3 == 0 ? x : round % 3 == 1 ? x & ((uint64_t)rand() << 33) : ~0ULL;
            for (int b = 0; b < 64; b++)
                want += (w[i] >> b) & 1;
        }
        cr_assert_eq(vd_bitset_count(w, n), want, "round %d", round);
        cr_assert_eq(vd_bitset_count_portable(w, n), want, "round %d", round);
    }
}

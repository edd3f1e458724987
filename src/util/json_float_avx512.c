/* json_float_avx512.c — see json_float_simd.h. Built with AVX-512 flags
 * (meson.build); reached only through json_float.c's run-time dispatch.
 *
 * A 64-byte block at a time: byte masks of the commas, dots, minus signs,
 * digits and white space check every number that ends in the block at once
 * (only digits, dots, a leading '-'; one dot per number with digits either
 * side; no leading zero; white space only after a comma, as in Python's
 * ", "), so the numbers themselves are read without a branch on their
 * shape. Each number's digits are then placed right-aligned in a
 * 32-byte window (the dot squeezed out by a blend of two loads one byte
 * apart) and summed by multiply-adds: pairs, fours, eights. */
#include "util/json_float_simd.h"

#include <immintrin.h>

bool vd_json_float_avx512_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") &&
           __builtin_cpu_supports("bmi2") &&
           __builtin_cpu_supports("popcnt");
}

/* One 64-byte block's bytes by kind, a bit per byte. */
typedef struct block_masks {
    uint64_t comma, dot, minus, digit, zero, space; /* space: JSON white space */
    uint64_t starts; /* each number's first byte: the first one past white space at the block's start, and after each comma */
    uint64_t stray_space; /* white space anywhere else */
} block_masks;

static inline block_masks classify(__m512i block)
{
    block_masks k;
    __m512i value = _mm512_sub_epi8(block, _mm512_set1_epi8('0'));
    k.comma = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8(','));
    k.dot = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8('.'));
    k.minus = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8('-'));
    k.digit = _mm512_cmple_epu8_mask(value, _mm512_set1_epi8(9));
    k.zero = _mm512_cmpeq_epi8_mask(value, _mm512_setzero_si512());
    /* White space by its low four bits: the one space character with those
     * bits, or a byte whose low bits differ (never equal to the block's). */
    const __m512i spaces = _mm512_broadcast_i32x4(_mm_setr_epi8(' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', '\n', 0, 0, '\r', 0, 0));
    k.space = _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(spaces, block), block);
    /* The bit after each comma, carried through the white space run there
     * (", " as Python writes arrays): it lands on the next number's first
     * byte and clears the run; runs no comma leads stay set. */
    uint64_t carried = ((k.comma << 1) | 1) + k.space; /* the block starts as if after a comma */
    k.starts = carried & ~k.space;
    k.stray_space = k.space & carried;
    return k;
}

/* The first byte of each number up to the last comma (r) that breaks the
 * fast form, or 0. */
static inline uint64_t shape_faults(const block_masks *k, uint64_t r)
{
    uint64_t starts = k->starts & r, m = k->minus, d = k->digit;
    uint64_t first = (starts & ~m) | ((starts & m) << 1); /* the first digit */
    uint64_t bad = ~(d | k->dot | m | k->comma | k->space) | k->stray_space | /* a stray byte */
                   (m & ~starts) | (first & ~d) |          /* '-' inside, no digit first */
                   (first & k->zero & (d >> 1)) |          /* a leading zero */
                   (k->dot & ~(d >> 1));                   /* no digit after the dot */
    bad &= r;
    /* Dots and commas alternate, a dot first: one dot in each number. */
    uint64_t marks = (k->dot | k->comma) & r;
    uint64_t order = _pext_u64(k->dot, marks) ^ 0x5555555555555555ULL;
    order = _bzhi_u64(order, (unsigned)_mm_popcnt_u64(marks)); /* as many as there are marks (64 at most) */
    if (order)
        bad |= _pdep_u64(order & -order, marks);
    return bad;
}

/* The value of the nd digits (at most 22) ending at w[31], a dot at
 * w[dot] (dot < 31) squeezed out; false past 2^63. */
static inline bool window_digits(const char *w, unsigned dot, unsigned nd, uint64_t *value)
{
    __m256i frac = _mm256_loadu_si256((const __m256i *)w), whole = _mm256_loadu_si256((const __m256i *)(w - 1));
    __m256i digits = _mm256_mask_blend_epi8((__mmask32)_bzhi_u32(~0U, dot + 1), frac, whole);
    digits = _mm256_maskz_sub_epi8((__mmask32) ~_bzhi_u32(~0U, 32 - nd), digits, _mm256_set1_epi8('0'));
    __m256i two = _mm256_maddubs_epi16(digits, _mm256_set1_epi16(0x010A));  /* 10a + b */
    __m256i four = _mm256_madd_epi16(two, _mm256_set1_epi32(0x00010064)); /* 100ab + cd */
    __m256i eight = _mm256_madd_epi16(_mm256_packus_epi32(four, _mm256_setzero_si256()),
                                      _mm256_set1_epi32(0x00012710)); /* 10^4 abcd + efgh */
    /* Window bytes 8-15, 16-23, 24-31 (bytes 0-7 are zero: nd <= 22). */
    uint64_t hi = (uint64_t)_mm_cvtsi128_si64(_mm256_castsi256_si128(eight)) >> 32;
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(_mm256_extracti128_si256(eight, 1));
    if (hi >= 900) /* keeps the value under 2^63 */
        return false;
    *value = hi * 10000000000000000ULL + (lo & 0xFFFFFFFFU) * 100000000ULL + (lo >> 32);
    return true;
}

size_t vd_json_floats_avx512(const char *t, size_t i, size_t len, float *out, size_t cap, size_t *n_io)
{
    size_t n = *n_io;
    while (len - i >= 64 && cap - n >= 16) { /* a 64-byte block holds at most 16 numbers */
        block_masks k = classify(_mm512_loadu_si512((const void *)(t + i)));
        if (!k.comma)
            break;
        uint64_t r = ~0ULL >> __builtin_clzll(k.comma); /* up to the last comma */
        uint64_t take = k.comma & r, bad = shape_faults(&k, r), dots = k.dot, starts = k.starts;
        if (bad)
            take &= _blsmsk_u64(bad) >> 1; /* the commas before the first fault */
        /* The next block starts past the last comma taken, known from the
         * masks alone: the block loads do not wait on the numbers' reads. */
        unsigned next = take ? 64 - (unsigned)__builtin_clzll(take) : 0;
        const char *b = t + i;
        unsigned s = (unsigned)_tzcnt_u64(starts); /* the number's first byte in the block */
        size_t before = n;
        while (take) {
            unsigned end = (unsigned)_tzcnt_u64(take), at = (unsigned)_tzcnt_u64(dots);
            bool neg = b[s] == '-';
            unsigned nd = end - s - neg - 1;
            uint64_t mant;
            float f;
            if (nd > 22 || !window_digits(b + end - 32, at + 32 - end, nd, &mant) ||
                !vd_json_float_scaled(mant, end - at - 1, true, &f))
                break; /* this one to the portable parser */
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            bits |= (uint32_t)neg << 31;
            memcpy(&out[n++], &bits, sizeof bits);
            take = _blsr_u64(take);
            dots = _blsr_u64(dots);
            starts = _blsr_u64(starts);
            s = (unsigned)_tzcnt_u64(starts); /* 64 when white space runs past the block */
        }
        if (take || n == before) {
            i += s; /* the number not read */
            break;
        }
        i += next; /* the next number, or white space after a comma */
    }
    *n_io = n;
    return i;
}

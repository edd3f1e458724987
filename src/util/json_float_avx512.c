/* json_float_avx512.c — see json_float_simd.h. Built with AVX-512 flags
 * (meson.build); reached only through json_float.c's run-time dispatch.
 *
 * Two stages over a chunk of up to 16 blocks of 64 bytes:
 * 1. The blocks, at a fixed stride: byte masks of the commas, dots, minus
 *    signs, digits and white space check every number at once (only digits,
 *    dots, a leading '-'; one dot per number with digits either side; no
 *    leading zero; white space only after a comma, as in Python's ", "),
 *    with what runs across a block's end carried to the next; each number's
 *    first byte, dot and comma are listed (compressed byte indices), up to
 *    the first byte that breaks the form.
 * 2. The numbers, eight at a time, with no step that waits on the ones
 *    before: each one's digits placed right-aligned in a 32-byte window (the
 *    dot squeezed out by a blend of two loads one byte apart, two numbers to
 *    a register) and summed by multiply-adds (pairs, fours, eights); the
 *    eight mantissas gathered into one register, divided by their powers of
 *    ten together, checked for a float32 rounding boundary nearby, and
 *    stored as floats.
 * Before this (2026-12-07) a block's numbers were read one by one as the
 * block was classified: about 28 cycles a number against 19 now (one
 * 1536-d vector of 17-digit numbers: 9.5 against 6.9 ns a number). */
#include "util/json_float_simd.h"

#include <immintrin.h>

bool vd_json_float_avx512_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}

/* What one 64-byte block leaves the next: the blocks are read at a fixed
 * stride, so a number (or the white space after a comma) may run across. */
typedef struct scan_carry {
    uint64_t after_comma; /* bit 0: the block starts after a comma or in its white space */
    uint64_t minus;       /* bit 0: a number's '-' was the last block's last byte */
    uint64_t dot;         /* bit 0: a dot was */
    uint64_t zero;        /* bit 0: a number's first digit, a 0, was */
    uint64_t dot_last;    /* the last dot or comma seen was a dot */
} scan_carry;

/* A block's commas, dots and number starts, and the bit of each byte that
 * breaks the fast form (0 when none does): only digits, dots, a leading
 * '-'; one dot per number with a digit either side; no leading zero; white
 * space only after a comma (Python's ", "). */
typedef struct block_scan {
    uint64_t comma, dot, starts, faults;
} block_scan;

static inline block_scan scan_block(__m512i block, scan_carry *c)
{
    block_scan k;
    __m512i value = _mm512_sub_epi8(block, _mm512_set1_epi8('0'));
    uint64_t comma = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8(','));
    uint64_t dot = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8('.'));
    uint64_t minus = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8('-'));
    uint64_t digit = _mm512_cmple_epu8_mask(value, _mm512_set1_epi8(9));
    uint64_t zero = _mm512_cmpeq_epi8_mask(value, _mm512_setzero_si512());
    /* White space by its low four bits: the one space character with those
     * bits, or a byte whose low bits differ (never equal to the block's). */
    const __m512i spaces = _mm512_broadcast_i32x4(_mm_setr_epi8(' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', '\n', 0, 0, '\r', 0, 0));
    uint64_t space = _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(spaces, block), block);
    /* The bit after each comma, carried through the white space run there:
     * it lands on the next number's first byte and clears the run; runs no
     * comma leads stay set. A run reaching the block's end carries out. */
    unsigned long long carried;
    unsigned char out = _addcarry_u64(0, (comma << 1) | c->after_comma, space, &carried);
    uint64_t starts = carried & ~space, stray_space = space & carried;
    uint64_t lead_minus = starts & minus;
    uint64_t first = (starts & ~minus) | (lead_minus << 1) | c->minus; /* each number's first digit */
    uint64_t first_zero = first & zero;
    uint64_t bad = ~(digit | dot | minus | comma | space) | stray_space | (minus & ~starts) |
                   (first & ~digit) | (((first_zero << 1) | c->zero) & digit) | /* a leading zero */
                   (((dot << 1) | c->dot) & ~digit);                            /* no digit after a dot */
    /* Dots and commas alternate: one dot in each number. */
    uint64_t marks = dot | comma;
    uint64_t order = _pext_u64(dot, marks) ^ (c->dot_last ? 0xAAAAAAAAAAAAAAAAULL : 0x5555555555555555ULL);
    order = _bzhi_u64(order, (unsigned)_mm_popcnt_u64(marks));
    if (order)
        bad |= _pdep_u64(order & -order, marks);
    c->after_comma = (comma >> 63) | out;
    c->minus = lead_minus >> 63;
    c->dot = dot >> 63;
    c->zero = first_zero >> 63;
    if (marks)
        c->dot_last = (dot >> (63 - __builtin_clzll(marks))) & 1;
    k.comma = comma;
    k.dot = dot;
    k.starts = starts;
    k.faults = bad;
    return k;
}

/* Writes base + the index of each set bit of bits to out, sixteen at a
 * time (up to fifteen past the last, which the caller leaves room for):
 * the set bits' indices compressed into bytes, widened. */
static inline uint32_t *flatten(uint32_t *out, uint32_t base, uint64_t bits)
{
    const __m512i iota = _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45,
                                         44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26,
                                         25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                         5, 4, 3, 2, 1, 0);
    unsigned cnt = (unsigned)_mm_popcnt_u64(bits);
    __m512i at = _mm512_maskz_compress_epi8(bits, iota);
    __m512i b = _mm512_set1_epi32((int)base);
    _mm512_storeu_si512(out, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(at)), b));
    if (cnt > 16) {
        _mm512_storeu_si512(out + 16, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(at, 1)), b));
        if (cnt > 32) {
            _mm512_storeu_si512(out + 32, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(at, 2)), b));
            _mm512_storeu_si512(out + 48, _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(at, 3)), b));
        }
    }
    return out + cnt;
}

/* 10^k for eight lanes' k (0..22): two tables of 16 doubles picked by
 * permutes, the one for k >= 16 blended in. */
static inline __m512d pow10_lanes(__m512i k)
{
    const __m512d p0 = _mm512_loadu_pd(vd_json_pow10), p8 = _mm512_loadu_pd(vd_json_pow10 + 8);
    const __m512d p15 = _mm512_loadu_pd(vd_json_pow10 + 15); /* 15..22: index k - 15 */
    __m512d lo = _mm512_permutex2var_pd(p0, k, p8);
    __m512d hi = _mm512_permutexvar_pd(_mm512_sub_epi64(k, _mm512_set1_epi64(15)), p15);
    return _mm512_mask_blend_pd(_mm512_cmpge_epu64_mask(k, _mm512_set1_epi64(16)), lo, hi);
}

/* The digits of two numbers: each one's 32 bytes ending at its comma (the
 * window at a and at b), the dot squeezed out (the bytes up to it taken
 * one byte earlier: mask `whole`), only the number's digits kept (mask
 * `digits`), summed in pairs, fours and eights: per 128-bit lane two
 * 8-digit values, the window's bytes 0-7 and 8-15, 16-23 and 24-31. */
static inline __m512i pair_digits(const char *a, const char *b, uint64_t whole, uint64_t digits)
{
    __m512i frac = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                                      _mm256_loadu_si256((const __m256i *)b), 1);
    __m512i early = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a - 1))),
                                       _mm256_loadu_si256((const __m256i *)(b - 1)), 1);
    __m512i d = _mm512_maskz_sub_epi8(digits, _mm512_mask_blend_epi8(whole, frac, early), _mm512_set1_epi8('0'));
    __m512i two = _mm512_maddubs_epi16(d, _mm512_set1_epi16(0x010A));     /* 10a + b */
    __m512i four = _mm512_madd_epi16(two, _mm512_set1_epi32(0x00010064)); /* 100ab + cd */
    return _mm512_madd_epi16(_mm512_packus_epi32(four, _mm512_setzero_si512()),
                             _mm512_set1_epi32(0x00012710)); /* 10^4 abcd + efgh */
}

/* Eight numbers (first byte, dot, comma, first byte's value) to floats at
 * out: how many from the first are right (8 when all are; a lane not in
 * `valid`, or one needing strtof, stops the count). */
static inline unsigned read8(const char *t, const uint32_t *starts, const uint32_t *dots, const uint32_t *ends,
                             const uint8_t *signs, unsigned valid, float *out)
{
    const __m256i one = _mm256_set1_epi32(1), w32 = _mm256_set1_epi32(32);
    __m256i e = _mm256_loadu_si256((const __m256i *)ends), d = _mm256_loadu_si256((const __m256i *)dots);
    __m256i s = _mm256_loadu_si256((const __m256i *)starts);
    __mmask8 neg = _mm_cmpeq_epi8_mask(_mm_loadl_epi64((const __m128i *)signs), _mm_set1_epi8('-'));
    __m256i nd = _mm256_sub_epi32(_mm256_sub_epi32(_mm256_sub_epi32(e, s), one), _mm256_maskz_mov_epi32(neg, one));
    __m256i scale = _mm256_sub_epi32(_mm256_sub_epi32(e, d), one);
    __m256i dot_at = _mm256_sub_epi32(_mm256_add_epi32(d, w32), e); /* the dot's byte in the window */
    __m256i whole = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(2), dot_at), one);
    __m256i digits = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sllv_epi32(one, _mm256_sub_epi32(w32, nd)));
    unsigned ok = _mm256_cmple_epu32_mask(nd, _mm256_set1_epi32(22)) & valid;
    uint64_t wm[4], dm[4];
    _mm256_storeu_si256((__m256i *)wm, whole);
    _mm256_storeu_si256((__m256i *)dm, digits);
    __m512i r0 = pair_digits(t + ends[0] - 32, t + ends[1] - 32, wm[0], dm[0]);
    __m512i r1 = pair_digits(t + ends[2] - 32, t + ends[3] - 32, wm[1], dm[1]);
    __m512i r2 = pair_digits(t + ends[4] - 32, t + ends[5] - 32, wm[2], dm[2]);
    __m512i r3 = pair_digits(t + ends[6] - 32, t + ends[7] - 32, wm[3], dm[3]);
    /* Each pair's dwords: 1, 4, 5 the first number's 8-digit groups of
     * bytes 8-15, 16-23, 24-31; 9, 12, 13 the second's. */
    const __m512i pick = _mm512_setr_epi32(1, 9, 17, 25, 4, 12, 20, 28, 5, 13, 21, 29, 0, 0, 0, 0);
    __m512i q01 = _mm512_permutex2var_epi32(r0, pick, r1), q23 = _mm512_permutex2var_epi32(r2, pick, r3);
    __m512i g12 = _mm512_permutex2var_epi32(
        q01, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23), q23);
    __m256i g3d = _mm512_castsi512_si256(_mm512_permutex2var_epi32(
        q01, _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 0, 0, 0, 0, 0, 0, 0, 0), q23));
    __m512i g1 = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(g12));
    __m512i g2 = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(g12, 1));
    __m512i g3 = _mm512_cvtepu32_epi64(g3d);
    ok &= _mm512_cmplt_epu64_mask(g1, _mm512_set1_epi64(900)); /* under 2^63 */
    __m512i mant = _mm512_add_epi64(_mm512_add_epi64(_mm512_mullo_epi64(g1, _mm512_set1_epi64(10000000000000000LL)),
                                                     _mm512_mul_epu32(g2, _mm512_set1_epi64(100000000))),
                                    g3);
    __m512d x = _mm512_div_pd(_mm512_cvtepu64_pd(mant), pow10_lanes(_mm512_cvtepu32_epi64(scale)));
    /* A rounding boundary of float32 within 3 units of x: strtof decides
     * (vd_json_float_scaled's check, on eight lanes). */
    __m512i near = _mm512_and_si512(_mm512_sub_epi64(_mm512_castpd_si512(x), _mm512_set1_epi64(VD_JSON_NEAR_FROM)),
                                    _mm512_set1_epi64(VD_JSON_NEAR_MASK));
    unsigned bad = _mm512_cmple_epu64_mask(near, _mm512_set1_epi64(VD_JSON_NEAR_SPAN)) | (~ok & 0xFF);
    __m256i f = _mm256_castps_si256(_mm512_cvtpd_ps(x));
    f = _mm256_or_si256(f, _mm256_maskz_set1_epi32(neg, (int)0x80000000));
    _mm256_storeu_si256((__m256i *)out, f);
    return (unsigned)_tzcnt_u32(bad | 0x100);
}

/* A chunk's lists hold at most 17 entries a block (a number takes four
 * bytes with its comma); sized for 64, so no input can overrun them. */
enum { CHUNK_BLOCKS = 16, CHUNK_NUMBERS = CHUNK_BLOCKS * 64 + 64 };

size_t vd_json_floats_avx512(const char *t, size_t i, size_t len, float *out, size_t cap, size_t *n_io)
{
    size_t n = *n_io;
    uint32_t starts[CHUNK_NUMBERS], dots[CHUNK_NUMBERS], ends[CHUNK_NUMBERS];
    uint8_t signs[CHUNK_NUMBERS + 64];
    if (len > UINT32_MAX)
        return i;
    for (;;) {
        /* Stage 1: blocks at a fixed stride from i, each number's first
         * byte, dot and comma listed, up to the first fault. */
        scan_carry c = {.after_comma = 1};
        uint32_t *s_end = starts, *d_end = dots, *e_end = ends;
        uint8_t *sign_end = signs;
        size_t b = i;
        bool fault = false;
        for (int blk = 0; blk < CHUNK_BLOCKS && len - b >= 64 && cap - n - (size_t)(e_end - ends) >= 24;
             blk++, b += 64) {
            __m512i bytes = _mm512_loadu_si512((const void *)(t + b));
            block_scan k = scan_block(bytes, &c);
            uint64_t before = k.faults ? _blsmsk_u64(k.faults) >> 1 : ~0ULL; /* the bytes before the first fault */
            _mm512_storeu_si512(sign_end, _mm512_maskz_compress_epi8(k.starts & before, bytes));
            sign_end += _mm_popcnt_u64(k.starts & before);
            s_end = flatten(s_end, (uint32_t)b, k.starts & before);
            d_end = flatten(d_end, (uint32_t)b, k.dot & before);
            e_end = flatten(e_end, (uint32_t)b, k.comma & before);
            if (k.faults) {
                fault = true;
                break;
            }
        }
        size_t count = (size_t)(e_end - ends);
        if (!count)
            break;
        /* Lanes past the last number read the first one's bytes (in bounds). */
        for (size_t j = count; j % 8; j++) {
            starts[j] = starts[0];
            dots[j] = dots[0];
            ends[j] = ends[0];
            signs[j] = signs[0];
        }
        /* Stage 2: eight numbers at a time. The next eight's index does not
         * wait on these eight's floats (a count of them carried from one
         * group to the next made the groups run one after another: 4.5
         * against 2.2 ns a number). */
        size_t done = count;
        for (size_t g = 0; g < count; g += 8) {
            unsigned valid = count - g >= 8 ? 0xFF : (1U << (count - g)) - 1;
            unsigned right = read8(t, starts + g, dots + g, ends + g, signs + g, valid, out + n + g);
            if (right < 8 && g + right < count) {
                done = g + right;
                break;
            }
        }
        n += done;
        if (done)
            i = ends[done - 1] + 1; /* the next number, or white space after a comma */
        if (done < count || fault || len - i < 64 || cap - n < 24) /* count > 0: done < count when 0 */
            break;
    }
    *n_io = n;
    return i;
}

/* JSON numbers into float32 (util/json_float.h): the array parser the feed
 * reads embedding columns with gives strtof's floats, takes exactly one
 * array of finite numbers (a pgvector literal too), and leaves everything
 * else to the caller's full parser. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_float.h"

static size_t parse(const char *t, float *out, size_t cap)
{
    return vd_json_float_array(t, strlen(t), out, cap);
}

Test(json_float, an_array_gives_strtofs_floats)
{
    char text[1 << 16];
    float out[1000], want[1000];
    srand(7);
    for (int round = 0; round < 50; round++) {
        size_t n = 0, len = 0;
        len += (size_t)snprintf(text + len, sizeof text - len, " [ ");
        for (size_t i = 0; i < 1000; i++) {
            char num[64];
            double x = (rand() / (double)RAND_MAX - 0.5) * pow(10, rand() % 60 - 30);
            int form = rand() % 3;
            snprintf(num, sizeof num, form == 0 ? "%.9g" : form == 1 ? "%.17g" : "%.3e", x);
            want[n++] = strtof(num, NULL);
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " ,\n" : "", num);
        }
        len += (size_t)snprintf(text + len, sizeof text - len, "]\t");
        cr_assert_eq(vd_json_float_array(text, len, out, 1000), 1000);
        for (size_t i = 0; i < n; i++)
            cr_assert(memcmp(&out[i], &want[i], sizeof(float)) == 0, "value %zu", i);
    }
    cr_assert_eq(parse("[1,2.5,-3e-2,0,-0]", out, 5), 5, "a pgvector literal");
    cr_assert(out[1] == 2.5f && out[2] == strtof("-3e-2", NULL) && signbit(out[4]));
    cr_assert_eq(parse("[1e-50, 3.4028234e38]", out, 2), 2, "underflow to 0, the largest float");
    cr_assert(out[0] == 0.0f && out[1] == 0x1.fffffep127f);
}

/* A random JSON number built digit by digit: an integer part of 0-25
 * digits, a fraction of 1-30 (often led by zeros), an exponent of 1-5
 * digits or none; finite as a float32 (regenerated otherwise). */
static void random_number(char *num, size_t cap)
{
    for (;;) {
        size_t at = 0;
        if (rand() % 2)
            num[at++] = '-';
        int int_digits = rand() % 4 == 0 ? rand() % 26 : rand() % 2;
        if (int_digits == 0) {
            num[at++] = '0';
        } else {
            num[at++] = (char)('1' + rand() % 9);
            for (int i = 1; i < int_digits; i++)
                num[at++] = (char)('0' + rand() % 10);
        }
        if (rand() % 8) {
            num[at++] = '.';
            int zeros = rand() % 3 == 0 ? rand() % 12 : 0, frac = 1 + rand() % 30;
            for (int i = 0; i < frac; i++)
                num[at++] = (char)(i < zeros ? '0' : '0' + rand() % 10);
        }
        if (rand() % 3 == 0) {
            num[at++] = rand() % 2 ? 'e' : 'E';
            int sign = rand() % 3;
            if (sign)
                num[at++] = sign == 1 ? '-' : '+';
            int d = 1 + rand() % 5;
            for (int i = 0; i < d; i++)
                num[at++] = (char)('0' + (i < d - 2 ? 0 : rand() % 10));
        }
        num[at] = 0;
        cr_assert_lt(at, cap);
        if (isfinite(strtof(num, NULL)))
            return;
    }
}

Test(json_float, every_form_of_number_reads_as_strtof_reads_it)
{
    char num[128];
    srand(11);
    for (int i = 0; i < 200000; i++) {
        random_number(num, sizeof num);
        float got, want = strtof(num, NULL);
        size_t len = strlen(num);
        cr_assert_eq(vd_json_float_at(num, 0, len, &got), len, "%s", num);
        cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s: %a, strtof %a", num, got, want);
    }
    /* Halfway between two floats, written out exactly: strtof's ties-to-even. */
    static const char *const ties[] = {"1.00000005960464477539062500", "16777217", "0.500000029802322387695312",
                                       "3.4028235677973366e38", "1.4012984643248171e-45", "7.0064923216240854e-46"};
    for (size_t i = 0; i < sizeof ties / sizeof *ties; i++) {
        float got, want = strtof(ties[i], NULL);
        if (!isfinite(want))
            continue;
        cr_assert_eq(vd_json_float_at(ties[i], 0, strlen(ties[i]), &got), strlen(ties[i]), "%s", ties[i]);
        cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s: %a, strtof %a", ties[i], got, want);
    }
}

/* 17 to 19 significant digits (Python writes 17 for a float32 made a
 * double): m is past 2^53, so the fast path rounds twice; numbers a hair
 * either side of a point halfway between two floats must still round as
 * strtof rounds them. */
Test(json_float, long_mantissas_near_halfway_points_read_as_strtof_reads_them)
{
    srand(13);
    char num[64];
    size_t n_checked = 0;
    for (int i = 0; i < 50000; i++) {
        float f = (float)((rand() / (double)RAND_MAX) * pow(10, rand() % 12 - 6));
        if (f == 0.0f)
            continue;
        double half = ((double)f + (double)nextafterf(f, INFINITY)) / 2; /* exact */
        double near[] = {half, nextafter(half, 0), nextafter(half, INFINITY),
                         half * (1 + 1e-17), half * (1 - 1e-17), (double)f};
        for (size_t j = 0; j < sizeof near / sizeof *near; j++) {
            for (int digits = 17; digits <= 19; digits++) {
                snprintf(num, sizeof num, "%s%.*g", rand() % 2 ? "-" : "", digits, near[j]);
                float got, want = strtof(num, NULL);
                size_t len = strlen(num);
                cr_assert_eq(vd_json_float_at(num, 0, len, &got), len, "%s", num);
                cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s: %a, strtof %a", num, got, want);
                n_checked++;
            }
        }
    }
    cr_assert_gt(n_checked, 800000);
}

Test(json_float, anything_else_is_left_to_the_caller)
{
    static const char *const bad[] = {
        "", "[]", "[1,2", "[1,2]]", "[1,,2]", "[1,2,]", "{\"a\":1}", "1", "[\"1\"]",
        "[1e39]", "[NaN]", "[01]", "[1.]", "[+1]", "[1] x", "[null]", "[[1]]",
    };
    float out[8];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(parse(bad[i], out, 8), 0, "%s", bad[i]);
    cr_assert_eq(parse("[1,2,3]", out, 2), 0, "more values than room");
    cr_assert_eq(parse("[1,2,3]", out, 3), 3);
}

/* ---- the two array readers ------------------------------------------------
 * The AVX-512 reader (util/json_float_avx512.c) takes a block of plain
 * decimal fractions at once and leaves the rest to the portable one: both
 * must give strtof's floats for every array and refuse the same text. Each
 * check runs once per reader; the AVX-512 one skips where the CPU lacks it. */

static void use_reader(bool simd)
{
    bool got = vd_json_float_init(simd);
    if (simd && !got)
        cr_skip_test("this CPU lacks AVX-512 BW/VL/DQ/VBMI2: the SIMD reader is not used here");
    cr_assert_eq(got, simd);
}

/* A number as embeddings are sent: a float32 near N(0, scale) printed the
 * way Python, JavaScript, Go or C print it. */
static void embedding_number(char *num, size_t cap)
{
    double g = 0;
    for (int k = 0; k < 12; k++)
        g += rand() / (double)RAND_MAX;
    float f = (float)((g - 6) * (rand() % 4 == 0 ? 1.0 : 0.05));
    static const char *const forms[] = {"%.17g", "%.9g", "%.6f", "%.8f", "%.20f", "%.3f"};
    snprintf(num, cap, forms[rand() % 6], (double)f);
}

/* A number a hair either side of a point halfway between two floats, 17-22
 * digits, plain decimal: the reader's rounding check must catch it. */
static void halfway_number(char *num, size_t cap)
{
    float f = (float)((rand() / (double)RAND_MAX) * (rand() % 2 ? 1.0 : 0.01));
    double half = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
    double near[] = {half, nextafter(half, 0), nextafter(half, INFINITY)};
    snprintf(num, cap, "%s%.*f", rand() % 2 ? "-" : "", 17 + rand() % 6, near[rand() % 3]);
}

static void arrays_read_as_strtof_reads_them(bool simd)
{
    use_reader(simd);
    enum { N = 600 };
    static char text[N * 64 + 64];
    float out[N], want[N];
    srand(17);
    for (int round = 0; round < 400; round++) {
        size_t len = (size_t)snprintf(text, sizeof text, "%*s[", rand() % 40, "");
        int mix = rand() % 3; /* mostly embedding numbers, some every form, some near halfway */
        static const char *const joiners[] = {",", ", ", ",\n    "}; /* JavaScript, Python, pretty-printed */
        const char *joiner = joiners[rand() % 3];
        for (size_t i = 0; i < N; i++) {
            char num[128];
            int pick = rand() % 16;
            if (pick == 0 || (mix == 1 && pick < 8))
                random_number(num, sizeof num);
            else if (pick == 1 || (mix == 2 && pick < 8))
                halfway_number(num, sizeof num);
            else
                embedding_number(num, sizeof num);
            want[i] = strtof(num, NULL);
            static const char *const spaced[] = {" , ", ", ", " ,", ",\n\t", ",\r\n   "};
            const char *sep = i == 0 ? "" : rand() % 50 == 0 ? spaced[rand() % 5] : joiner;
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", sep, num);
        }
        len += (size_t)snprintf(text + len, sizeof text - len, "]");
        cr_assert_eq(vd_json_float_array(text, len, out, N), N, "round %d", round);
        for (size_t i = 0; i < N; i++)
            cr_assert(memcmp(&out[i], &want[i], sizeof(float)) == 0, "round %d value %zu: %a, strtof %a", round,
                      i, out[i], want[i]);
    }
}

Test(json_float, arrays_read_as_strtof_reads_them_portable) { arrays_read_as_strtof_reads_them(false); }
Test(json_float, arrays_read_as_strtof_reads_them_avx512) { arrays_read_as_strtof_reads_them(true); }

/* Only numbers a hair from a point halfway between two floats, 17-19
 * digits as Python prints a float32 made a double: each one's double
 * quotient lands on or next to the halfway point, so a reader that rounds
 * it to float without its rounding check gets about half of them wrong. */
static void halfway_arrays_read_as_strtof_reads_them(bool simd)
{
    use_reader(simd);
    enum { N = 2000 };
    static char text[N * 32 + 64];
    static float out[N], want[N];
    srand(23);
    size_t len = (size_t)snprintf(text, sizeof text, "%40s[", "");
    for (size_t i = 0; i < N; i++) {
        float f = (float)(rand() / (double)RAND_MAX);
        double half = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
        char num[64];
        snprintf(num, sizeof num, "%s%.*f", rand() % 2 ? "-" : "", 17 + rand() % 3, half);
        want[i] = strtof(num, NULL);
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? ", " : "", num);
    }
    len += (size_t)snprintf(text + len, sizeof text - len, "]");
    cr_assert_eq(vd_json_float_array(text, len, out, N), N);
    for (size_t i = 0; i < N; i++)
        cr_assert(memcmp(&out[i], &want[i], sizeof(float)) == 0, "value %zu: %a, strtof %a", i, out[i], want[i]);
}

Test(json_float, halfway_arrays_read_as_strtof_reads_them_portable) { halfway_arrays_read_as_strtof_reads_them(false); }
Test(json_float, halfway_arrays_read_as_strtof_reads_them_avx512) { halfway_arrays_read_as_strtof_reads_them(true); }

/* One bad token among plain numbers, at every offset into a 64-byte block:
 * both readers refuse the array, and read it with a good number there. */
static void a_bad_token_anywhere_is_refused(bool simd)
{
    use_reader(simd);
    static const char *const bad[] = {"01.5", "-.5", "1.", ".5", "1.2.3", "--1", "1-2", "+1",  "1..2",
                                      "0x1",  "1.5e", "-",  "",   "00",    "1.5.", "-01", "1.-5", "1.5-",
                                      "1e",   "NaN",  "1.5 2.5", "1.5]", "[1.5", "\"1\"", "1.5\x01", "1. 5",
                                      "- 1.5", "1.5\v", "\f1.5", ", 1.5"};
    char text[8192], good[8192], num[64];
    float out[256];
    srand(19);
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        for (int at = 0; at < 70; at++) {
            const char *sep = at % 2 ? ", " : ",";
            int pad = 33 + rand() % 8;
            size_t len = (size_t)snprintf(text, sizeof text, "%*s[", pad, "");
            size_t good_len = (size_t)snprintf(good, sizeof good, "%*s[", pad, "");
            for (int count = 0; count < 100; count++) {
                const char *lead = count ? sep : "";
                embedding_number(num, sizeof num);
                len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", lead, count == at ? bad[b] : num);
                good_len += (size_t)snprintf(good + good_len, sizeof good - good_len, "%s%s", lead, num);
            }
            len += (size_t)snprintf(text + len, sizeof text - len, "]");
            good_len += (size_t)snprintf(good + good_len, sizeof good - good_len, "]");
            cr_assert_eq(vd_json_float_array(text, len, out, 256), 0, "%s at number %d", bad[b], at);
            cr_assert_eq(vd_json_float_array(good, good_len, out, 256), 100, "the same array without %s", bad[b]);
        }
    }
}

Test(json_float, a_bad_token_anywhere_is_refused_portable) { a_bad_token_anywhere_is_refused(false); }
Test(json_float, a_bad_token_anywhere_is_refused_avx512) { a_bad_token_anywhere_is_refused(true); }

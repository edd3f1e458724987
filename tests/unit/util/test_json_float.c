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

/*
 * fuzz_json_floats.c — the two JSON array readers (util/json_float.c): the
 * portable one and the AVX-512 one, which reads a block of plain decimal
 * fractions at once and leaves the rest to the portable one. The input is
 * the text after a '[' set 40 bytes into the buffer (so the block reader
 * can run from the first number); the property: both readers accept the
 * same arrays and give bit-identical floats, every one finite. Where the
 * CPU lacks AVX-512 both runs take the portable reader and the target
 * checks the portable one alone.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "util/json_float.h"

enum { PAD = 40, CAP = 4096 };

static size_t read_with(bool simd, const char *t, size_t len, float *out)
{
    vd_json_float_init(simd);
    return vd_json_float_array(t, len, out, CAP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_fuzz_init();
    if (size > 1 << 16)
        return 0;
    char *t = malloc(PAD + 1 + size + 1);
    static float portable[CAP], simd[CAP];
    VD_FUZZ_CHECK(t != NULL);
    memset(t, ' ', PAD);
    t[PAD] = '[';
    memcpy(t + PAD + 1, data, size);
    size_t len = PAD + 1 + size;
    t[len] = 0; /* the readers' contract: a byte that ends a number after the text */
    size_t n = read_with(false, t, len, portable);
    size_t m = read_with(true, t, len, simd);
    VD_FUZZ_CHECK(n == m);
    VD_FUZZ_CHECK(memcmp(portable, simd, n * sizeof(float)) == 0);
    for (size_t i = 0; i < n; i++)
        VD_FUZZ_CHECK(isfinite(portable[i]));
    free(t);
    return 0;
}

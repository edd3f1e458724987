/* The shard's vector store: originals in RAM or in an unnamed file, codes in RAM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/vecstore.h"

enum { D = 37 };

static void fill(float *x, int seed)
{
    for (int i = 0; i < D; i++)
        x[i] = (float)((seed * 131 + i * 7) % 97) / 13.0f - 3.0f;
}

static void round_trip(const char *dir, vd_quant quant)
{
    vd_distance_init(-1);
    vd_vecstore vs;
    cr_assert_eq(vd_vecstore_init(&vs, D, quant, dir), 0);
    cr_assert_eq(vs.on_disk, dir != NULL);
    cr_assert_eq(vd_vecstore_put(&vs, 0, (float[D]){0}), -ERANGE, "no room reserved yet");
    cr_assert_eq(vd_vecstore_reserve(&vs, 10), 0);
    float x[D], buf[D], dec[D];
    for (int s = 0; s < 10; s++) {
        fill(x, s);
        cr_assert_eq(vd_vecstore_put(&vs, (uint32_t)s, x), 0);
    }
    cr_assert_eq(vd_vecstore_reserve(&vs, 5000), 0, "growing keeps what is stored");
    fill(x, 4999);
    cr_assert_eq(vd_vecstore_put(&vs, 4999, x), 0);
    for (int s = 0; s < 10; s++) {
        fill(x, s);
        const float *got = vd_vecstore_get(&vs, (uint32_t)s, buf);
        cr_assert_not_null(got);
        cr_assert_arr_eq(got, x, sizeof x, "slot %d comes back bit for bit", s);
        if (quant) {
            vd_quant_decode(quant, vd_vecstore_code(&vs, (uint32_t)s), D, dec);
            for (int i = 0; i < D; i++)
                cr_assert(fabsf(dec[i] - x[i]) < 0.02f, "code of slot %d dim %d", s, i);
        }
    }
    size_t row = D * sizeof(float);
    cr_assert_eq(vd_vecstore_ram_bytes(&vs), dir ? 0 : vs.cap * row);
    cr_assert_eq(vd_vecstore_disk_bytes(&vs), dir ? vs.cap * row : 0);
    cr_assert_eq(vd_vecstore_code_bytes(&vs), vs.cap * vd_quant_code_size(quant, D));
    vd_vecstore_destroy(&vs);
}

Test(vecstore, ram_plain) { round_trip(NULL, VD_QUANT_NONE); }
Test(vecstore, ram_sq8) { round_trip(NULL, VD_QUANT_SQ8); }
Test(vecstore, disk_sq8) { round_trip("/tmp", VD_QUANT_SQ8); }
Test(vecstore, disk_fp16_in_a_new_folder)
{
    char dir[] = "/tmp/vecstore-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[64];
    snprintf(sub, sizeof sub, "%s/vectors", dir);
    round_trip(sub, VD_QUANT_FP16); /* the folder is made on demand */
    cr_assert_eq(rmdir(sub), 0, "the file was unnamed: nothing is left behind");
    rmdir(dir);
}

Test(vecstore, unusable_folder_is_an_error)
{
    vd_vecstore vs;
    int rc = vd_vecstore_init(&vs, D, VD_QUANT_SQ8, "/proc/no-such-place/vectors");
    cr_assert_lt(rc, 0);
}

/* CRC-32C: known answers (RFC 3720 B.4 and the usual check value), chaining,
 * and the SSE4.2 path against the portable one for lengths 0..1100 at every
 * alignment offset 0..7. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vectord/crc32c.h"

Test(crc32c, known_answers)
{
    vd_crc32c_init(true);
    cr_assert_eq(vd_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(vd_crc32c_portable(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    cr_assert_eq(vd_crc32c_portable(0, zeros, 32), 0x8A9136AAu);
    cr_assert_eq(vd_crc32c_portable(0, ones, 32), 0x62A8AB43u);
    cr_assert_eq(vd_crc32c_portable(0, inc, 32), 0x46DD794Eu);
    cr_assert_eq(vd_crc32c(0, "", 0), 0u);
}

Test(crc32c, chaining)
{
    const char *s = "the quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++)
        cr_assert_eq(vd_crc32c_portable(vd_crc32c_portable(0, s, cut), s + cut, n - cut),
                     vd_crc32c_portable(0, s, n));
}

Test(crc32c, hardware_matches_portable)
{
    if (!vd_crc32c_hw_supported()) {
        cr_skip_test("no SSE4.2 on this CPU: hardware CRC not tested");
        return;
    }
    uint8_t *buf = malloc(1100 + 8);
    srand(5);
    for (size_t i = 0; i < 1108; i++)
        buf[i] = (uint8_t)rand();
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len <= 1100; len++)
            cr_assert_eq(vd_crc32c_sse42(0x12345678u, buf + off, len),
                         vd_crc32c_portable(0x12345678u, buf + off, len), "off %zu len %zu", off, len);
    free(buf);
}

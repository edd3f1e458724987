/*
 * crc32c.c — portable CRC-32C (slice-by-8 tables, computed by
 * vd_crc32c_init before threads start) and the dispatch to SSE4.2.
 */
#include "vectord/crc32c.h"

#include <cpuid.h>

#define POLY 0x82F63B78u /* 0x1EDC6F41 reflected */

static uint32_t table[8][256];
static bool table_ready;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (POLY & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    table_ready = true;
}

uint32_t vd_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    if (!table_ready)
        build_tables(); /* normally done by vd_crc32c_init before threads start */
    const uint8_t *p = buf;
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        /* little-endian load of 8 bytes, byte by byte (no alignment assumption) */
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= crc;
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

bool vd_crc32c_hw_supported(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
/* Written only by vd_crc32c_init() before threads start. */
static crc_fn active = vd_crc32c_portable;

void vd_crc32c_init(bool allow_hw)
{
    if (!table_ready)
        build_tables();
    active = allow_hw && vd_crc32c_hw_supported() ? vd_crc32c_sse42 : vd_crc32c_portable;
}

uint32_t vd_crc32c(uint32_t crc, const void *buf, size_t len) { return active(crc, buf, len); }

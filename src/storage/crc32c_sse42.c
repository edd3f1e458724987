/*
 * crc32c_sse42.c — CRC-32C with the SSE4.2 CRC32 instruction (compiled with
 * -msse4.2 only here): 8 bytes per instruction, bytes for the unaligned head
 * and the tail.
 */
#include <nmmintrin.h>
#include <string.h>

#include "vectord/crc32c.h"

uint32_t vd_crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

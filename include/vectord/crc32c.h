/*
 * crc32c.h — CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the
 * checksum of WAL records and snapshot files.
 *
 * vd_crc32c(0, …) starts a checksum; passing a previous result continues it,
 * so vd_crc32c(vd_crc32c(0, a, n), b, m) is the checksum of a followed by b.
 * The SSE4.2 CRC32 instruction is used when the CPU has it (selected once by
 * vd_crc32c_init before threads start); the portable slice-by-8 table code is
 * the reference both are tested against.
 */
#ifndef VECTORD_CRC32C_H
#define VECTORD_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t vd_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t vd_crc32c_portable(uint32_t crc, const void *buf, size_t len);
/* Only call when vd_crc32c_hw_supported(). */
uint32_t vd_crc32c_sse42(uint32_t crc, const void *buf, size_t len);
bool vd_crc32c_hw_supported(void);
/* Picks the implementation; allow_hw false forces the portable one. */
void vd_crc32c_init(bool allow_hw);

#endif

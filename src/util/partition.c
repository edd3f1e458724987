/*
 * partition.c — see partition.h. The hash is OpenSSL's MD5 (libcrypto, which
 * libpq already brings): the same bytes Postgres' md5() hashes.
 */
#include "util/partition.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

bool vd_partition_parse(const char *text, vd_partition *out)
{
    *out = (vd_partition){0};
    if (!*text)
        return true;
    /* digits only around the slash: no signs, spaces or exponents for sscanf to allow */
    for (const char *p = text; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '/'))
            return false;
    unsigned long i, n;
    int used = 0;
    if (sscanf(text, "%lu/%lu%n", &i, &n, &used) != 2 || text[used] || n < 1 || n > VD_PARTITIONS_MAX ||
        i >= n)
        return false;
    *out = (vd_partition){.index = (uint32_t)i, .count = (uint32_t)n};
    return true;
}

uint32_t vd_partition_of(const char *text, size_t len, uint32_t count)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    if (count <= 1 || !EVP_Q_digest(NULL, "MD5", NULL, text, len, md, &md_len) || md_len < 4)
        return 0;
    uint32_t h = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
    return h % count;
}

int vd_partition_sql(char *out, size_t cap, const char *column_sql, uint32_t count)
{
    /* md5() of the text, its first 8 hex digits as a 32-bit unsigned number
     * (bit(32)::bigint reads them unsigned); NULL (a NULL tenant) is 0. */
    int n = snprintf(out, cap,
                     "(coalesce(('x' || substr(md5((%s)::text), 1, 8))::bit(32)::bigint, 0) %% %u)",
                     column_sql, count ? count : 1);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

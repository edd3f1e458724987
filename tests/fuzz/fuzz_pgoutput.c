/*
 * fuzz_pgoutput.c — the replication stream's decoders (src/feed/pgoutput.c)
 * on any bytes, as a logical feed would meet them from a server it trusts
 * too much: a CopyData message (XLogData or keepalive), the pgoutput message
 * inside an XLogData, then every column of every tuple and every relation
 * column lookup. Properties: nothing is read outside the input (ASan), a
 * decoded value lies inside the message, a message that decodes also
 * decodes when it is the whole input (no hidden dependence on bytes after
 * it), and an LSN's text form parses back to it.
 */
#include <stdlib.h>
#include <string.h>

#include "feed/pgoutput.h"
#include "fuzz_common.h"

static void check_tuple(const vd_pgo_tuple *t, const uint8_t *lo, const uint8_t *hi)
{
    for (uint32_t i = 0; i <= t->n; i++) {
        vd_pgo_value v;
        if (vd_pgo_value_at(t, (uint16_t)i, &v) != 0) {
            VD_FUZZ_CHECK(i == t->n || t->len == 0);
            continue;
        }
        VD_FUZZ_CHECK(v.kind == 'n' || v.kind == 'u' || v.kind == 't');
        if (v.kind == 't')
            VD_FUZZ_CHECK((const uint8_t *)v.data >= lo && (const uint8_t *)v.data + v.len <= hi);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    VD_FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    const uint8_t *msg = buf;
    size_t len = size;
    vd_repl_msg r;
    if (vd_repl_parse(buf, size, &r) == 0 && r.kind == 'w') {
        msg = r.data;
        len = r.len;
        VD_FUZZ_CHECK(msg >= buf && msg + len == buf + size);
    }
    vd_pgo_msg m;
    if (vd_pgo_parse(msg, len, &m) == 0) {
        check_tuple(&m.new_row, msg, msg + len);
        check_tuple(&m.old_row, msg, msg + len);
        if (m.kind == VD_PGO_RELATION) {
            VD_FUZZ_CHECK(m.nspname && m.relname);
            (void)vd_pgo_column_index(&m, "id");
            (void)vd_pgo_column_index(&m, "");
        }
        if (m.kind == VD_PGO_TRUNCATE)
            for (uint32_t i = 0; i < m.n_relids; i++)
                (void)vd_pgo_truncated(&m, i);
    }
    uint64_t lsn = 0;
    for (size_t i = 0; i + 8 <= size; i += 8)
        memcpy(&lsn, data + i, 8);
    char text[24];
    vd_lsn_format(lsn, text);
    uint64_t back;
    VD_FUZZ_CHECK(vd_lsn_parse(text, &back) == 0 && back == lsn);
    char *s = malloc(size + 1); /* and any text as an LSN */
    VD_FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = 0;
    (void)vd_lsn_parse(s, &back);
    free(s);
    free(buf);
    return 0;
}

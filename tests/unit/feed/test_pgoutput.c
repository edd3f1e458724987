/* test_pgoutput.c — the replication stream's bytes: messages built as the
 * server sends them decode to their fields; every truncation of each is
 * refused (never read past the end); LSN text round trips. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "feed/pgoutput.h"

typedef struct msg {
    uint8_t b[512];
    size_t n;
} msg;

static void u8(msg *m, uint8_t v) { m->b[m->n++] = v; }
static void be(msg *m, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        u8(m, (uint8_t)(v >> (8 * i)));
}
static void str(msg *m, const char *s)
{
    memcpy(m->b + m->n, s, strlen(s) + 1);
    m->n += strlen(s) + 1;
}
static void text_value(msg *m, const char *s)
{
    u8(m, 't');
    be(m, strlen(s), 4);
    memcpy(m->b + m->n, s, strlen(s));
    m->n += strlen(s);
}

/* Every prefix of a message is refused. */
static void truncations_refused(const msg *m)
{
    for (size_t n = 0; n < m->n; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches a read past it */
        memcpy(copy, m->b, n);
        vd_pgo_msg out;
        cr_assert_eq(vd_pgo_parse(copy, n, &out), -1, "prefix of %zu of %zu bytes", n, m->n);
        free(copy);
    }
}

Test(pgoutput, begin_and_commit)
{
    msg b = {0};
    u8(&b, 'B');
    be(&b, 0x16B374D848ULL, 8);
    be(&b, 123456789, 8);
    be(&b, 991, 4);
    vd_pgo_msg m;
    cr_assert_eq(vd_pgo_parse(b.b, b.n, &m), 0);
    cr_assert(m.kind == VD_PGO_BEGIN && m.lsn == 0x16B374D848ULL && m.time == 123456789 && m.xid == 991);
    truncations_refused(&b);
    msg c = {0};
    u8(&c, 'C');
    u8(&c, 0);
    be(&c, 0x100, 8);
    be(&c, 0x128, 8);
    be(&c, 77, 8);
    cr_assert_eq(vd_pgo_parse(c.b, c.n, &m), 0);
    cr_assert(m.kind == VD_PGO_COMMIT && m.lsn == 0x100 && m.end_lsn == 0x128 && m.time == 77);
    truncations_refused(&c);
    u8(&c, 0); /* a trailing byte */
    cr_assert_eq(vd_pgo_parse(c.b, c.n, &m), -1);
}

Test(pgoutput, relation_and_rows)
{
    msg r = {0};
    u8(&r, 'R');
    be(&r, 16385, 4);
    str(&r, "public");
    str(&r, "Memory");
    u8(&r, 'd');
    be(&r, 3, 2);
    const char *cols[] = {"id", "userId", "embedding"};
    for (int i = 0; i < 3; i++) {
        u8(&r, i == 0);
        str(&r, cols[i]);
        be(&r, 25, 4);
        be(&r, 0xFFFFFFFF, 4);
    }
    vd_pgo_msg m;
    cr_assert_eq(vd_pgo_parse(r.b, r.n, &m), 0);
    cr_assert(m.kind == VD_PGO_RELATION && m.relid == 16385 && m.n_columns == 3);
    cr_assert_str_eq(m.nspname, "public");
    cr_assert_str_eq(m.relname, "Memory");
    cr_assert_eq(vd_pgo_column_index(&m, "userId"), 1);
    cr_assert_eq(vd_pgo_column_index(&m, "embedding"), 2);
    cr_assert_eq(vd_pgo_column_index(&m, "nope"), -1);
    truncations_refused(&r);

    /* An update whose key changed: old key ('K') then the new row. */
    msg u = {0};
    u8(&u, 'U');
    be(&u, 16385, 4);
    u8(&u, 'K');
    be(&u, 3, 2);
    text_value(&u, "m1");
    u8(&u, 'n');
    u8(&u, 'n');
    u8(&u, 'N');
    be(&u, 3, 2);
    text_value(&u, "m2");
    text_value(&u, "u7");
    u8(&u, 'u'); /* the embedding, TOASTed and unchanged */
    cr_assert_eq(vd_pgo_parse(u.b, u.n, &m), 0);
    cr_assert(m.kind == VD_PGO_UPDATE && m.relid == 16385 && m.old_row.n == 3 && m.new_row.n == 3);
    vd_pgo_value v;
    cr_assert_eq(vd_pgo_value_at(&m.old_row, 0, &v), 0);
    cr_assert(v.kind == 't' && v.len == 2 && memcmp(v.data, "m1", 2) == 0);
    cr_assert_eq(vd_pgo_value_at(&m.old_row, 1, &v), 0);
    cr_assert_eq(v.kind, 'n');
    cr_assert_eq(vd_pgo_value_at(&m.new_row, 0, &v), 0);
    cr_assert(v.kind == 't' && v.len == 2 && memcmp(v.data, "m2", 2) == 0);
    cr_assert_eq(vd_pgo_value_at(&m.new_row, 2, &v), 0);
    cr_assert_eq(v.kind, 'u');
    cr_assert_eq(vd_pgo_value_at(&m.new_row, 3, &v), -1);
    truncations_refused(&u);

    msg d = {0};
    u8(&d, 'D');
    be(&d, 16385, 4);
    u8(&d, 'K');
    be(&d, 1, 2);
    text_value(&d, "");
    cr_assert_eq(vd_pgo_parse(d.b, d.n, &m), 0);
    cr_assert(m.kind == VD_PGO_DELETE && m.old_row.n == 1 && m.new_row.n == 0);
    cr_assert_eq(vd_pgo_value_at(&m.old_row, 0, &v), 0);
    cr_assert(v.kind == 't' && v.len == 0);
    truncations_refused(&d);

    msg i = {0};
    u8(&i, 'I');
    be(&i, 16385, 4);
    u8(&i, 'X'); /* not 'N' */
    be(&i, 0, 2);
    cr_assert_eq(vd_pgo_parse(i.b, i.n, &m), -1);
    i.b[5] = 'N';
    cr_assert_eq(vd_pgo_parse(i.b, i.n, &m), 0);
    cr_assert(m.kind == VD_PGO_INSERT && m.new_row.n == 0);
}

Test(pgoutput, truncate_and_skipped_and_unknown)
{
    msg t = {0};
    u8(&t, 'T');
    be(&t, 2, 4);
    u8(&t, 0);
    be(&t, 16385, 4);
    be(&t, 16390, 4);
    vd_pgo_msg m;
    cr_assert_eq(vd_pgo_parse(t.b, t.n, &m), 0);
    cr_assert(m.kind == VD_PGO_TRUNCATE && m.n_relids == 2);
    cr_assert(vd_pgo_truncated(&m, 0) == 16385 && vd_pgo_truncated(&m, 1) == 16390);
    truncations_refused(&t);
    msg huge = {0}; /* a count that the bytes cannot hold */
    u8(&huge, 'T');
    be(&huge, 0x40000000, 4);
    u8(&huge, 0);
    cr_assert_eq(vd_pgo_parse(huge.b, huge.n, &m), -1);
    uint8_t y[] = {'Y', 1, 2, 3};
    cr_assert_eq(vd_pgo_parse(y, sizeof y, &m), 0);
    cr_assert_eq(m.kind, VD_PGO_SKIP);
    uint8_t z[] = {'Z', 0};
    cr_assert_eq(vd_pgo_parse(z, sizeof z, &m), -1);
    cr_assert_eq(vd_pgo_parse(z, 0, &m), -1);
}

Test(pgoutput, copy_messages_and_status)
{
    msg w = {0};
    u8(&w, 'w');
    be(&w, 0x10, 8);
    be(&w, 0x20, 8);
    be(&w, 5, 8);
    u8(&w, 'B');
    vd_repl_msg r;
    cr_assert_eq(vd_repl_parse(w.b, w.n, &r), 0);
    cr_assert(r.kind == 'w' && r.wal_start == 0x10 && r.wal_end == 0x20 && r.send_time == 5 && r.len == 1 &&
              r.data[0] == 'B');
    cr_assert_eq(vd_repl_parse(w.b, 24, &r), -1);
    msg k = {0};
    u8(&k, 'k');
    be(&k, 0xABCDEF, 8);
    be(&k, 9, 8);
    u8(&k, 1);
    cr_assert_eq(vd_repl_parse(k.b, k.n, &r), 0);
    cr_assert(r.kind == 'k' && r.wal_end == 0xABCDEF && r.reply_requested);
    cr_assert_eq(vd_repl_parse(k.b, k.n - 1, &r), -1);
    uint8_t x[] = {'x'};
    cr_assert_eq(vd_repl_parse(x, 1, &r), -1);

    uint8_t st[VD_REPL_STATUS_BYTES];
    vd_repl_status(st, 0x0102030405060708ULL, 42, true);
    cr_assert_eq(st[0], 'r');
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < 8; i++)
            cr_assert_eq(st[1 + 8 * f + i], i + 1);
    cr_assert_eq(st[32], 42);
    cr_assert_eq(st[33], 1);
    cr_assert_gt(vd_repl_now_us(), 20LL * 365 * 86400 * 1000000); /* 2020 or later, counted from 2000 */
}

Test(pgoutput, lsn_text)
{
    uint64_t v;
    cr_assert_eq(vd_lsn_parse("16/B374D848", &v), 0);
    cr_assert_eq(v, 0x16B374D848ULL);
    cr_assert_eq(vd_lsn_parse("0/0", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(vd_lsn_parse("FFFFFFFF/ffffffff", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    const char *bad[] = {"", "/", "1/", "/1", "1//2", "1/2 ", " 1/2", "+1/2", "-1/2", "0x1/2",
                         "123456789/0", "1/123456789", "g/1", "12"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(vd_lsn_parse(bad[i], &v), -1, "%s", bad[i]);
    char out[24];
    vd_lsn_format(0x16B374D848ULL, out);
    cr_assert_str_eq(out, "16/B374D848");
    uint64_t samples[] = {0, 1, 0xFFFFFFFFULL, 0x100000000ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        vd_lsn_format(samples[i], out);
        cr_assert_eq(vd_lsn_parse(out, &v), 0);
        cr_assert_eq(v, samples[i]);
    }
}

/* The tenant partition: parsing "i/N", and the hash against MD5 values
 * worked out independently (RFC 1321's test suite, and Postgres' md5()). */
#include <criterion/criterion.h>
#include <string.h>

#include "util/partition.h"

Test(partition, parses_i_of_n)
{
    vd_partition p;
    cr_assert(vd_partition_parse("", &p));
    cr_assert_eq(p.count, 0);
    cr_assert(vd_partition_parse("0/1", &p));
    cr_assert_eq(p.index, 0);
    cr_assert_eq(p.count, 1);
    cr_assert(vd_partition_parse("2/3", &p));
    cr_assert_eq(p.index, 2);
    cr_assert_eq(p.count, 3);
    cr_assert(vd_partition_parse("4095/4096", &p));
    const char *bad[] = {"3/3", "1/0", "0/4097", "1", "/3", "1/", "-1/3", "+1/3", " 1/3",
                         "1/3 ", "1/3x", "1//3", "a/b", "1.0/3", "0x1/3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(vd_partition_parse(bad[i], &p), "'%s' accepted", bad[i]);
}

/* The first four bytes of MD5, big-endian, modulo the count. */
Test(partition, hash_is_md5_prefix)
{
    /* md5("abc") = 900150983cd24fb0d6963f7d28e17f72 (RFC 1321) */
    cr_assert_eq(vd_partition_of("abc", 3, 4096), 0x90015098u % 4096);
    cr_assert_eq(vd_partition_of("abc", 3, 7), 0x90015098u % 7);
    /* md5("") = d41d8cd98f00b204e9800998ecf8427e */
    cr_assert_eq(vd_partition_of("", 0, 1000), 0xd41d8cd9u % 1000);
    /* md5("message digest") = f96b697d7cb7938d525a2f31aaf161d0 */
    cr_assert_eq(vd_partition_of("message digest", 14, 3), 0xf96b697du % 3);
    cr_assert_eq(vd_partition_of("anything", 8, 1), 0);
}

Test(partition, sql_names_the_column_and_count)
{
    char sql[256];
    cr_assert_gt(vd_partition_sql(sql, sizeof sql, "t.\"userId\"", 3), 0);
    cr_assert(strstr(sql, "md5((t.\"userId\")::text)"));
    cr_assert(strstr(sql, "% 3)"));
    cr_assert_eq(vd_partition_sql(sql, 10, "t.\"userId\"", 3), -1);
}

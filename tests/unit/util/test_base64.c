/* Strict base64 decoding (util/base64.c) against OpenSSL's encoder: random
 * lengths and bytes round-trip; every byte outside the alphabet, at every
 * position, and padding anywhere but the end are refused. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

Test(base64, decodes_what_openssl_encodes)
{
    srand(5);
    uint8_t raw[400], back[400];
    char text[600];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rand() % 301;
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)rand();
        int len = EVP_EncodeBlock((unsigned char *)text, raw, (int)n);
        cr_assert_eq(vd_base64_decoded_len(text, (size_t)len), n);
        cr_assert_eq(vd_base64_decode(text, (size_t)len, back), 0, "%.*s", len, text);
        cr_assert_eq(memcmp(raw, back, n), 0, "length %zu", n);
    }
}

Test(base64, refuses_bytes_outside_the_alphabet_and_misplaced_padding)
{
    const char *ok = "AACAPwAAAMAAAAA/AACAPw==";
    size_t len = strlen(ok);
    uint8_t out[32];
    cr_assert_eq(vd_base64_decode(ok, len, out), 0);
    for (size_t pos = 0; pos < len; pos++) {
        for (int c = 0; c < 256; c++) {
            bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '+' || c == '/';
            if (alphabet || (c == '=' && pos >= len - 2))
                continue;
            char bad[32];
            memcpy(bad, ok, len + 1);
            bad[pos] = (char)c;
            cr_assert_eq(vd_base64_decode(bad, len, out), -1, "byte %d at %zu", c, pos);
        }
    }
    cr_assert_eq(vd_base64_decode("AA=A", 4, out), -1, "data after padding");
    cr_assert_eq(vd_base64_decode("A===", 4, out), -1, "three padding characters");
    cr_assert_eq(vd_base64_decode("", 0, out), 0);
}

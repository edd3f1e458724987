/* base64.c — see base64.h. */
#include "util/base64.h"

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t vd_base64_decoded_len(const char *text, size_t len)
{
    if (len % 4)
        return SIZE_MAX;
    size_t pad = 0;
    if (len >= 1 && text[len - 1] == '=')
        pad++;
    if (len >= 2 && text[len - 2] == '=')
        pad++;
    return len / 4 * 3 - pad;
}

int vd_base64_decode(const char *text, size_t len, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = text[i + j];
            if (c == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad) /* data after padding */
                return -1;
            v[j] = value_of(c);
            if (v[j] < 0)
                return -1;
        }
        uint32_t triple = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(triple >> 16);
        if (pad < 2)
            out[o++] = (uint8_t)(triple >> 8);
        if (pad < 1)
            out[o++] = (uint8_t)triple;
    }
    return 0;
}

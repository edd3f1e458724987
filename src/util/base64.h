/*
 * base64.h — strict standard base64 (RFC 4648 §4, with padding) decoding,
 * for the compact vector encoding of the API ("vector_b64").
 */
#ifndef VD_BASE64_H
#define VD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decoded size of a len-byte base64 text, or SIZE_MAX if len is not a
 * multiple of 4 or the padding is malformed. */
size_t vd_base64_decoded_len(const char *text, size_t len);
/* Decodes into out (vd_base64_decoded_len bytes). 0, or -1 on a character
 * outside the alphabet or misplaced padding. */
int vd_base64_decode(const char *text, size_t len, uint8_t *out);

#endif

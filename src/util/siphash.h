/*
 * siphash.h — SipHash-1-3 (Aumasson & Bernstein, "SipHash: a fast short-input
 * PRF", 2012; one compression and three finalization rounds, as Rust's and
 * Python's hash tables use): a keyed 64-bit hash, so that a client who does
 * not know the key cannot choose inputs that collide in a hash table.
 */
#ifndef VD_SIPHASH_H
#define VD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct vd_sipkey {
    uint64_t k0, k1;
} vd_sipkey;

uint64_t vd_siphash13(const vd_sipkey *key, const void *data, size_t len);
/* A key from the kernel's random source (getrandom); falls back to the clock
 * and the address of key when that fails. */
void vd_sipkey_random(vd_sipkey *key);

#endif

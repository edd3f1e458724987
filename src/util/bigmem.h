/*
 * bigmem.h — the large arrays that grow with a shard (its vectors, codes and
 * level-0 graph lists), each in a mapping of its own advised for transparent
 * huge pages.
 *
 * A graph walk reads these arrays at random: on 4 KiB pages nearly every hop
 * misses the TLB as well as the cache, and a 2 MiB page covers what 512 small
 * ones do. Where the system's setting is "madvise" (Debian's default), only
 * memory advised with MADV_HUGEPAGE gets huge pages, and advising malloc's
 * blocks splits its mappings (glibc's realloc then copies instead of
 * remapping: see memtrim.h). So these arrays are mapped, grown with mremap
 * and unmapped here. Sanitizer builds use malloc, so that overruns of these
 * arrays are still caught.
 */
#ifndef VD_BIGMEM_H
#define VD_BIGMEM_H

#include <stddef.h>

/* p (of old_bytes; NULL and 0 for a new array) resized to new_bytes > 0,
 * contents kept up to the smaller size, new bytes zero; NULL when out of
 * memory, p untouched. */
void *vd_bigmem_resize(void *p, size_t old_bytes, size_t new_bytes);
/* Frees p of `bytes` (the size it was last resized to). NULL is a no-op. */
void vd_bigmem_free(void *p, size_t bytes);

#endif

/* bigmem.c — see bigmem.h. */
#include "util/bigmem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VD_BIGMEM_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VD_BIGMEM_MALLOC 1
#endif
#endif

#ifdef VD_BIGMEM_MALLOC

void *vd_bigmem_resize(void *p, size_t old_bytes, size_t new_bytes)
{
    char *q = realloc(p, new_bytes);
    if (q && new_bytes > old_bytes)
        memset(q + old_bytes, 0, new_bytes - old_bytes);
    return q;
}

void vd_bigmem_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}

#else

static size_t page_round(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) & ~(page - 1);
}

void *vd_bigmem_resize(void *p, size_t old_bytes, size_t new_bytes)
{
    size_t to = page_round(new_bytes);
    void *q = p ? mremap(p, page_round(old_bytes), to, MREMAP_MAYMOVE)
                : mmap(NULL, to, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return NULL;
    /* Advice only: refused where the kernel has no transparent huge pages. */
    (void)madvise(q, to, MADV_HUGEPAGE);
    return q;
}

void vd_bigmem_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, page_round(bytes));
}

#endif

/* synchro/alloc.h - the allocator hook. */
#ifndef SYNCHRO_ALLOC_H
#define SYNCHRO_ALLOC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *(*synchro_malloc_fn)(size_t size);
typedef void *(*synchro_realloc_fn)(void *ptr, size_t size);
typedef void *(*synchro_calloc_fn)(size_t count, size_t size);
typedef void (*synchro_free_fn)(void *ptr);

/* Routes every allocation the library makes through the given functions. libuv's
 * and jansson's own allocators are process-global and are left alone.
 * Call it before any other synchro function (memory allocated through one allocator
 * is freed through the same one; the library cannot tell them apart).
 * Returns 0, or SYNCHRO_EINVAL if any function is NULL.
 * Thread-safe: no; call before any other synchro call. The functions must be
 * thread-safe. */
SYNCHRO_EXTERN int synchro_replace_allocator(synchro_malloc_fn malloc_fn,
                                             synchro_realloc_fn realloc_fn,
                                             synchro_calloc_fn calloc_fn, synchro_free_fn free_fn);

/* Allocates through the library's allocator: for implementations that hand memory to
 * the runtime to free (results, args), so both sides agree on the allocator.
 * synchro_mem_free(NULL) is a no-op and preserves errno. Thread-safe: yes. */
SYNCHRO_EXTERN void *synchro_mem_malloc(size_t size);
SYNCHRO_EXTERN void *synchro_mem_calloc(size_t count, size_t size);
SYNCHRO_EXTERN void *synchro_mem_realloc(void *ptr, size_t size);
SYNCHRO_EXTERN char *synchro_mem_strdup(const char *s);
SYNCHRO_EXTERN void synchro_mem_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_ALLOC_H */

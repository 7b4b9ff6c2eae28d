/* lib/alloc.c - the allocator hook: every allocation of the library goes through here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  synchro_malloc_fn malloc_fn;
  synchro_realloc_fn realloc_fn;
  synchro_calloc_fn calloc_fn;
  synchro_free_fn free_fn;
} synchro__allocator_t;

static synchro__allocator_t allocator = {malloc, realloc, calloc, free};

int synchro_replace_allocator(synchro_malloc_fn malloc_fn, synchro_realloc_fn realloc_fn,
                              synchro_calloc_fn calloc_fn, synchro_free_fn free_fn) {
  if (malloc_fn == NULL || realloc_fn == NULL || calloc_fn == NULL || free_fn == NULL)
    return SYNCHRO_EINVAL;
  allocator.malloc_fn = malloc_fn;
  allocator.realloc_fn = realloc_fn;
  allocator.calloc_fn = calloc_fn;
  allocator.free_fn = free_fn;
  return 0;
}

void *synchro__malloc(size_t size) {
  void *p = allocator.malloc_fn(size ? size : 1);
  if (p != NULL)
    SYNCHRO__LIVE(ALLOCS, 1);
  return p;
}

void *synchro__calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  void *p = allocator.calloc_fn(count ? count : 1, size ? size : 1);
  if (p != NULL)
    SYNCHRO__LIVE(ALLOCS, 1);
  return p;
}

void *synchro__realloc(void *ptr, size_t size) {
  void *p = allocator.realloc_fn(ptr, size ? size : 1);
  if (ptr == NULL && p != NULL)
    SYNCHRO__LIVE(ALLOCS, 1);
  return p;
}

char *synchro__strdup(const char *s) {
  size_t len = strlen(s) + 1;
  char *copy = synchro__malloc(len);
  if (copy != NULL)
    memcpy(copy, s, len);
  return copy;
}

void synchro__free(void *ptr) {
  int saved = errno; /* callers report errors after cleaning up */
  if (ptr != NULL) {
    allocator.free_fn(ptr);
    SYNCHRO__LIVE(ALLOCS, -1);
  }
  errno = saved;
}

/* The offset to the allocation is stored just below the aligned block. */
void *synchro__aligned_calloc(size_t size) {
  unsigned char *mem = synchro__calloc(1, size + SYNCHRO__CACHE_LINE);
  unsigned char *aligned;
  if (mem == NULL)
    return NULL;
  aligned = (unsigned char *)(((uintptr_t)mem + SYNCHRO__CACHE_LINE) &
                              ~(uintptr_t)(SYNCHRO__CACHE_LINE - 1));
  aligned[-1] = (unsigned char)(aligned - mem);
  return aligned;
}

void synchro__aligned_free(void *ptr) {
  unsigned char *aligned = ptr;
  if (aligned != NULL)
    synchro__free(aligned - aligned[-1]);
}

void *synchro_mem_malloc(size_t size) { return synchro__malloc(size); }
void *synchro_mem_calloc(size_t count, size_t size) { return synchro__calloc(count, size); }
void *synchro_mem_realloc(void *ptr, size_t size) { return synchro__realloc(ptr, size); }
char *synchro_mem_strdup(const char *s) { return s ? synchro__strdup(s) : NULL; }
void synchro_mem_free(void *ptr) { synchro__free(ptr); }

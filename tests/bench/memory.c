/* tests/bench/memory.c - what the library allocates: a counting allocator installed
 * with synchro_replace_allocator() before any other synchro call; bytes per pending
 * future and allocations per call in steady state. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Every block carries its requested size in a 16-byte header (keeps 16-byte alignment). */
#define HDR 16

static _Atomic int64_t live_bytes, live_chunk, n_alloc, n_free;

/* What glibc's malloc would really take for a request: 8 bytes of header, 16-byte
 * granules, 32 bytes at least. */
static int64_t chunk_of(size_t size) {
  size_t c = (size + 8 + 15) & ~(size_t)15;
  return (int64_t)(c < 32 ? 32 : c);
}

static void *account(unsigned char *raw, size_t size) {
  if (raw == NULL)
    return NULL;
  memcpy(raw, &size, sizeof(size));
  atomic_fetch_add_explicit(&live_bytes, (int64_t)size, memory_order_relaxed);
  atomic_fetch_add_explicit(&live_chunk, chunk_of(size), memory_order_relaxed);
  atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
  return raw + HDR;
}

static void unaccount(unsigned char *raw) {
  size_t size;
  memcpy(&size, raw, sizeof(size));
  atomic_fetch_sub_explicit(&live_bytes, (int64_t)size, memory_order_relaxed);
  atomic_fetch_sub_explicit(&live_chunk, chunk_of(size), memory_order_relaxed);
  atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

static void *c_malloc(size_t size) { return account(malloc(size + HDR), size); }

static void *c_calloc(size_t count, size_t size) {
  if (size != 0 && count > (SIZE_MAX - HDR) / size)
    return NULL;
  return account(calloc(1, count * size + HDR), count * size);
}

static void c_free(void *p) {
  if (p == NULL)
    return;
  unaccount((unsigned char *)p - HDR);
  free((unsigned char *)p - HDR);
}

static void *c_realloc(void *p, size_t size) {
  unsigned char *raw;
  size_t old;
  if (p == NULL)
    return c_malloc(size);
  raw = (unsigned char *)p - HDR;
  memcpy(&old, raw, sizeof(old));
  raw = realloc(raw, size + HDR);
  if (raw == NULL)
    return NULL;
  atomic_fetch_add_explicit(&live_bytes, (int64_t)size - (int64_t)old, memory_order_relaxed);
  atomic_fetch_add_explicit(&live_chunk, chunk_of(size) - chunk_of(old), memory_order_relaxed);
  atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
  memcpy(raw, &size, sizeof(size));
  return raw + HDR;
}

int counting_allocator_install(void) {
  return synchro_replace_allocator(c_malloc, c_realloc, c_calloc, c_free);
}

void counting_allocator_read(alloc_counts_t *out) {
  out->live_bytes = atomic_load(&live_bytes);
  out->live_usable = atomic_load(&live_chunk);
  out->allocations = atomic_load(&n_alloc);
  out->frees = atomic_load(&n_free);
}

static void call_add(synchro_t *s, int64_t a) {
  bench_add_args_t args = {a, 1};
  int64_t sum;
  CHECK(synchro_call(s, &bench_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, &sum, NULL));
}

/* Runs before any other synchro figure, so the record pool starts empty and every
 * pending future is a fresh allocation. */
void run_bytes_per_future(void) {
  figure_t *f = fig_new("bytes_per_future", "library bytes per pending future", "B", NULL);
  figure_t *fc =
      fig_new("bytes_per_future_malloc", "  the same incl. malloc chunk overhead", "B", NULL);
  figure_t *fa = fig_new("allocs_per_future", "  allocations per pending future", "allocs", NULL);
  figure_t *fr =
      fig_new("retained_after_burst", "  bytes kept per future after the burst", "B", NULL);
  const long n = 100000;
  synchro_future_t **fs = malloc((size_t)n * sizeof(*fs));
  alloc_counts_t c0, c1, c2;
  synchro_t *s;
  long i;
  fig_target(f, TARGET_ABS_LE, 192, "<= 192 B");
  f->note = "(live requested bytes with 100000 never-ending futures pending - before) / 100000";
  fr->note = "live bytes after the futures were cancelled, freed and the synchronizer freed";
  if (fs == NULL)
    die("malloc", -1);
  CHECK(synchro_new(&s, NULL));
  call_add(s, 0); /* the loop thread and its one-time state exist */
  counting_allocator_read(&c0);
  for (i = 0; i < n; i++)
    CHECK(synchro_submit(s, &bench_op_never, NULL, SYNCHRO_TIMEOUT_INFINITE, &fs[i]));
  call_add(s, 1); /* FIFO: once it returns, the loop has started every one of them */
  counting_allocator_read(&c1);
  fig_add(f, (double)(c1.live_bytes - c0.live_bytes) / (double)n);
  fig_add(fc, (double)(c1.live_usable - c0.live_usable) / (double)n);
  fig_add(fa, (double)(c1.allocations - c0.allocations) / (double)n);
  for (i = 0; i < n; i++)
    synchro_future_cancel(fs[i]);
  CHECK(synchro_future_wait_all(fs, (size_t)n, SYNCHRO_TIMEOUT_INFINITE));
  for (i = 0; i < n; i++)
    synchro_future_free(fs[i]);
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
  counting_allocator_read(&c2);
  fig_add(fr, (double)(c2.live_bytes - c0.live_bytes) / (double)n);
  free(fs);
}

void run_allocs_per_call(void) {
  figure_t *f =
      fig_new("allocs_per_call", "allocations per blocking call (steady)", "allocs/call", NULL);
  const long n = 100000;
  alloc_counts_t c0, c1;
  synchro_t *s;
  long i;
  fig_target(f, TARGET_ABS_LE, 0, "0");
  CHECK(synchro_new(&s, NULL));
  for (i = 0; i < 1000; i++)
    call_add(s, i);
  counting_allocator_read(&c0);
  for (i = 0; i < n; i++)
    call_add(s, i);
  counting_allocator_read(&c1);
  fig_add(f, (double)(c1.allocations - c0.allocations) / (double)n);
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
}

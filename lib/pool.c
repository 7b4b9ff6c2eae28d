/* lib/pool.c - call records come from a pool: no malloc per call in steady state.
 *
 * Records are carved from 64-byte-aligned slabs (one allocation per SLAB_RECORDS
 * records, so no per-record allocator slack); a record never shares a cache line with
 * another. Each thread keeps a cache of free records (no atomics on that path). A
 * cache that overflows moves all of itself, as one chain, to a process-wide stack of
 * chains; an empty cache takes one chain: it takes the whole stack (one atomic exchange,
 * so no ABA) and pushes the other chains back, so that the work stays bounded by the
 * cache size however many records are free, and no thread sits on records that other
 * threads would then allocate anew. A thread that exits hands its cache back through a
 * pthread key destructor. Slabs are never freed: records are recycled. */
#include <sched.h>
#include <string.h>

#include "internal.h"

/* 15 records and the alignment slack fit one 4 KiB page with the allocator's header. */
#define SLAB_RECORDS 15
#define cache synchro__pool_cache

_Thread_local synchro__pool_cache_t synchro__pool_cache;
static _Atomic uintptr_t shared_free;
static _Atomic uint32_t grabbing; /* threads between taking the stack and giving back */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Pushes the chains from `first` to `last` (chain heads linked through cancel_next,
 * the records of a chain through next, NULL-terminated) onto the shared stack. */
static void push_chains(synchro_call_t *first, synchro_call_t *last) {
  uintptr_t head = atomic_load_explicit(&shared_free, memory_order_relaxed);
  do
    last->cancel_next = (synchro_call_t *)head;
  while (!atomic_compare_exchange_weak_explicit(&shared_free, &head, (uintptr_t)first,
                                                memory_order_release, memory_order_relaxed));
}

static void push_chain(synchro_call_t *first, synchro_call_t *last) {
  last->next = NULL;
  push_chains(first, first);
}

static void on_thread_exit(void *unused) {
  (void)unused;
  if (cache.head == NULL)
    return;
  push_chain(cache.head, cache.tail);
  cache.head = cache.tail = NULL;
  cache.count = 0;
}

static void make_exit_key(void) { pthread_key_create(&exit_key, on_thread_exit); }

/* Registering the destructor needs a non-NULL key value; the cache itself is TLS. */
static void register_thread(void) {
  pthread_once(&exit_key_once, make_exit_key);
  pthread_setspecific(exit_key, &cache);
  cache.registered = true;
}

/* A new slab: returns its first record, the others go to this thread's (empty) cache. */
static synchro_call_t *allocate_slab(void) {
  unsigned char *mem = synchro__malloc(SLAB_RECORDS * sizeof(synchro_call_t) + SYNCHRO__CACHE_LINE);
  synchro_call_t *recs;
  unsigned i;
  if (mem == NULL)
    return NULL;
  recs = (synchro_call_t *)(((uintptr_t)mem + SYNCHRO__CACHE_LINE - 1) &
                            ~(uintptr_t)(SYNCHRO__CACHE_LINE - 1));
  for (i = 1; i + 1 < SLAB_RECORDS; i++)
    recs[i].next = &recs[i + 1];
  recs[SLAB_RECORDS - 1].next = NULL;
  cache.head = &recs[1];
  cache.tail = &recs[SLAB_RECORDS - 1];
  cache.count = SLAB_RECORDS - 1;
  SYNCHRO__LIVE(ALLOCS, -1); /* so the slab is counted as records, not an allocation */
  SYNCHRO__LIVE(RECORDS, 1);
  return &recs[0];
}

synchro_call_t *synchro__pool_get_slow(void) {
  synchro_call_t *rec;
  if (!cache.registered)
    register_thread();
  atomic_fetch_add_explicit(&grabbing, 1, memory_order_relaxed);
  rec = (synchro_call_t *)atomic_exchange_explicit(&shared_free, 0, memory_order_acquire);
  if (rec == NULL) {
    int spins;
    atomic_fetch_sub_explicit(&grabbing, 1, memory_order_relaxed);
    /* Empty, perhaps only while another thread gives back what it took: wait a little
     * for that rather than grow the pool (bounded; yielding, as that thread may have
     * been preempted). */
    for (spins = 0; spins < 64 && atomic_load_explicit(&grabbing, memory_order_relaxed) != 0;
         spins++)
      sched_yield();
    atomic_fetch_add_explicit(&grabbing, 1, memory_order_relaxed);
    rec = (synchro_call_t *)atomic_exchange_explicit(&shared_free, 0, memory_order_acquire);
  }
  if (rec != NULL) {
    synchro_call_t *it, *rest = rec->cancel_next;
    unsigned n = 0;
    if (rest != NULL) { /* keep one chain, give the others back */
      for (it = rest; it->cancel_next != NULL; it = it->cancel_next)
        ;
      push_chains(rest, it);
    }
    atomic_fetch_sub_explicit(&grabbing, 1, memory_order_release);
    if (rec->next != NULL) {
      for (it = rec->next; it->next != NULL; it = it->next)
        n++;
      cache.tail = it;
      n++;
    }
    cache.head = rec->next;
    cache.count = n;
    SYNCHRO__LIVE(RECORDS, 1);
    return rec;
  }
  atomic_fetch_sub_explicit(&grabbing, 1, memory_order_relaxed);
  return allocate_slab();
}

/* The cache is empty (its tail must be set) or full. */
void synchro__pool_put_slow(synchro_call_t *rec) {
  if (cache.count >= SYNCHRO__POOL_CACHE_MAX) {
    /* Hand the whole cache over with one CAS; this thread starts afresh. */
    push_chain(cache.head, cache.tail);
    cache.head = NULL;
    cache.count = 0;
  }
  if (SYNCHRO__UNLIKELY(!cache.registered))
    register_thread();
  rec->next = cache.head;
  if (cache.head == NULL)
    cache.tail = rec;
  cache.head = rec;
  cache.count++;
}

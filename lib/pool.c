/* lib/pool.c - call records come from a pool: no malloc per call in steady state.
 *
 * Each thread keeps a small cache of free records (no atomics on that path). A cache
 * that overflows moves its surplus to a process-wide free stack; an empty cache takes
 * the whole stack at once (one atomic exchange, so no ABA), keeps up to half a cache
 * and gives the rest back. A thread that exits hands its cache back through a pthread
 * key destructor. */
#include <sched.h>
#include <string.h>

#include "internal.h"

#define CACHE_MAX 256

typedef struct {
  synchro_call_t *head;
  unsigned count;
  bool registered;
} cache_t;

static _Thread_local cache_t cache;
static _Atomic uintptr_t shared_free;
static _Atomic uint32_t grabbing; /* threads between taking the stack and giving back */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void push_chain(synchro_call_t *first, synchro_call_t *last) {
  uintptr_t head = atomic_load_explicit(&shared_free, memory_order_relaxed);
  do
    last->next = (synchro_call_t *)head;
  while (!atomic_compare_exchange_weak_explicit(&shared_free, &head, (uintptr_t)first,
                                                memory_order_release, memory_order_relaxed));
}

static void on_thread_exit(void *unused) {
  synchro_call_t *last;
  (void)unused;
  if (cache.head == NULL)
    return;
  for (last = cache.head; last->next != NULL; last = last->next)
    ;
  push_chain(cache.head, last);
  cache.head = NULL;
  cache.count = 0;
}

static void make_exit_key(void) { pthread_key_create(&exit_key, on_thread_exit); }

/* Registering the destructor needs a non-NULL key value; the cache itself is TLS. */
static void register_thread(void) {
  pthread_once(&exit_key_once, make_exit_key);
  pthread_setspecific(exit_key, &cache);
  cache.registered = true;
}

static synchro_call_t *allocate_record(void) {
  unsigned char *mem = synchro__malloc(sizeof(synchro_call_t) + SYNCHRO__CACHE_LINE);
  uintptr_t aligned;
  synchro_call_t *rec;
  if (mem == NULL)
    return NULL;
  aligned = ((uintptr_t)mem + SYNCHRO__CACHE_LINE - 1) & ~(uintptr_t)(SYNCHRO__CACHE_LINE - 1);
  rec = (synchro_call_t *)aligned; /* never freed: records are recycled, see above */
  SYNCHRO__LIVE(ALLOCS, -1);       /* so it is counted as a record, not an allocation */
  SYNCHRO__LIVE(RECORDS, 1);
  return rec;
}

synchro_call_t *synchro__pool_get(void) {
  synchro_call_t *rec = cache.head;
  if (SYNCHRO__LIKELY(rec != NULL)) {
    cache.head = rec->next;
    cache.count--;
    SYNCHRO__LIVE(RECORDS, 1);
    return rec;
  }
  if (!cache.registered)
    register_thread();
  atomic_fetch_add_explicit(&grabbing, 1, memory_order_relaxed);
  rec = (synchro_call_t *)atomic_exchange_explicit(&shared_free, 0, memory_order_acquire);
  if (rec == NULL) {
    int spins;
    atomic_fetch_sub_explicit(&grabbing, 1, memory_order_relaxed);
    /* Empty, perhaps only while another thread splits what it took: wait a little
     * for that thread's give-back rather than grow the pool (bounded; yielding, as
     * that thread may have been preempted). */
    for (spins = 0; spins < 64 && atomic_load_explicit(&grabbing, memory_order_relaxed) != 0;
         spins++)
      sched_yield();
    atomic_fetch_add_explicit(&grabbing, 1, memory_order_relaxed);
    rec = (synchro_call_t *)atomic_exchange_explicit(&shared_free, 0, memory_order_acquire);
  }
  if (rec != NULL) {
    synchro_call_t *it = rec, *rest;
    unsigned n = 0;
    /* Keep at most CACHE_MAX / 2 and give the rest back at once: a thread that took
     * the whole stack would otherwise sit on records other threads then allocate
     * anew, and the pool would grow with every generation of threads. */
    while (it->next != NULL && n < CACHE_MAX / 2) {
      it = it->next;
      n++;
    }
    rest = it->next;
    it->next = NULL;
    if (rest != NULL) {
      uintptr_t empty = 0;
      synchro_call_t *last = rest;
      /* Usually nothing was pushed meanwhile: put the rest back whole, without walking it. */
      if (!atomic_compare_exchange_strong_explicit(&shared_free, &empty, (uintptr_t)rest,
                                                   memory_order_release, memory_order_relaxed)) {
        while (last->next != NULL)
          last = last->next;
        push_chain(rest, last);
      }
    }
    atomic_fetch_sub_explicit(&grabbing, 1, memory_order_release);
    cache.head = rec->next;
    cache.count = n;
    SYNCHRO__LIVE(RECORDS, 1);
    return rec;
  }
  atomic_fetch_sub_explicit(&grabbing, 1, memory_order_relaxed);
  return allocate_record();
}

void synchro__pool_put(synchro_call_t *rec) {
  SYNCHRO__LIVE(RECORDS, -1);
  if (SYNCHRO__LIKELY(cache.count < CACHE_MAX)) {
    if (!cache.registered)
      register_thread();
    rec->next = cache.head;
    cache.head = rec;
    cache.count++;
    return;
  }
  rec->next = NULL;
  push_chain(rec, rec);
}

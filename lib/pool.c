/* lib/pool.c - fixed-size blocks from pools: no malloc per call in steady state.
 *
 * Two pools: call records (three cache lines each) and their side blocks (one line,
 * for calls attached to a host or bound to an object). Blocks are carved from
 * 64-byte-aligned slabs (one allocation per slab, so no per-block allocator slack); a
 * block never shares a cache line with another. Each thread keeps a cache of free
 * blocks per pool (no atomics on that path). A cache that overflows moves all of
 * itself, as one chain, to the pool's process-wide stack of chains; an empty cache
 * takes one chain: it takes the whole stack (one atomic exchange, so no ABA) and
 * pushes the other chains back, so that the work stays bounded by the cache size
 * however many blocks are free, and no thread sits on blocks that other threads would
 * then allocate anew. A thread that exits hands its caches back through a pthread key
 * destructor. Slabs are never freed: blocks are recycled.
 *
 * A free block lends two pointers at the pool's link offset: the next block of its
 * chain, and (in a chain's first block) the next chain. */
#include <sched.h>
#include <stddef.h>

#include "internal.h"

_Static_assert(offsetof(synchro_call_t, cancel_next) ==
                   offsetof(synchro_call_t, next) + sizeof(void *),
               "a free record's two links are adjacent");
_Static_assert(sizeof(synchro__ext_t) == SYNCHRO__CACHE_LINE, "a side block is one line");

/* malloc returns blocks aligned for max_align_t: at most this much is skipped to reach
 * a cache line. */
#define SLACK (SYNCHRO__CACHE_LINE - _Alignof(max_align_t))
#define SLAB_MIN 4096u    /* the first slabs: a page, with the allocator's header */
#define SLAB_MAX 65536u   /* a pool that keeps growing takes this much at a time ... */
#define SLABS_PER_SIZE 4u /* ... after this many slabs of each size from SLAB_MIN up */

synchro__pool_t synchro__record_pool = {.size = sizeof(synchro_call_t),
                                        .link = offsetof(synchro_call_t, next)};
synchro__pool_t synchro__ext_pool = {.size = sizeof(synchro__ext_t), .link = 0};
_Thread_local synchro__pool_cache_t synchro__record_cache, synchro__ext_cache;

static _Thread_local bool registered; /* the thread-exit hook that hands caches back */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void **next_of(const synchro__pool_t *p, void *block) {
  return (void **)((char *)block + p->link);
}

static void **chain_of(const synchro__pool_t *p, void *block) {
  return (void **)((char *)block + p->link + sizeof(void *));
}

/* Pushes the chains from `first` to `last` (chain heads linked through their chain
 * link, the blocks of a chain through their next link, NULL-terminated) onto the
 * pool's shared stack. */
static void push_chains(synchro__pool_t *p, void *first, void *last) {
  uintptr_t head = atomic_load_explicit(&p->shared, memory_order_relaxed);
  do
    *chain_of(p, last) = (void *)head;
  while (!atomic_compare_exchange_weak_explicit(&p->shared, &head, (uintptr_t)first,
                                                memory_order_release, memory_order_relaxed));
}

/* Hands the whole cache to the shared stack; the thread's cache starts afresh. */
static void give_back(synchro__pool_t *p, synchro__pool_cache_t *c) {
  if (c->head == NULL)
    return;
  *next_of(p, c->tail) = NULL;
  push_chains(p, c->head, c->head);
  c->head = c->tail = NULL;
  c->count = 0;
}

static void on_thread_exit(void *unused) {
  (void)unused;
  give_back(&synchro__record_pool, &synchro__record_cache);
  give_back(&synchro__ext_pool, &synchro__ext_cache);
}

static void make_exit_key(void) { pthread_key_create(&exit_key, on_thread_exit); }

/* Registering the destructor needs a non-NULL key value; the caches themselves are TLS. */
static void register_thread(void) {
  pthread_once(&exit_key_once, make_exit_key);
  pthread_setspecific(exit_key, &synchro__record_cache);
  registered = true;
}

/* The slab of `bytes` (a page, up to SLAB_MAX) holds this many blocks of pool `p`. */
static unsigned blocks_per_slab(const synchro__pool_t *p, size_t bytes) {
  return (unsigned)((bytes - 2 * sizeof(max_align_t) - SLACK) / p->size);
}

#ifdef SYNCHRO_TEST_SEAMS
bool synchro_test_pool_slab(size_t bytes) {
  const synchro__pool_t *pools[] = {&synchro__record_pool, &synchro__ext_pool};
  size_t i, slab;
  for (i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
    for (slab = SLAB_MIN; slab <= SLAB_MAX; slab *= 2)
      if (bytes == blocks_per_slab(pools[i], slab) * pools[i]->size + SLACK)
        return true;
  return false;
}
#endif

/* How many blocks the pool's next slab holds. A small program keeps page-sized slabs;
 * a pool that keeps growing (many calls pending) doubles them up to SLAB_MAX, so the
 * allocator's header and the alignment slack, paid once a slab, shrink to a fraction
 * of a byte per block. */
static unsigned next_slab_blocks(synchro__pool_t *p) {
  unsigned n = atomic_fetch_add_explicit(&p->slabs, 1, memory_order_relaxed) / SLABS_PER_SIZE;
  size_t bytes = SLAB_MIN;
  while (n-- > 0 && bytes < SLAB_MAX)
    bytes *= 2;
  return blocks_per_slab(p, bytes);
}

/* A new slab: returns its first block, the others go to this thread's (empty) cache. */
static void *allocate_slab(synchro__pool_t *p, synchro__pool_cache_t *c) {
  unsigned count = next_slab_blocks(p), i;
  unsigned char *mem = synchro__malloc(count * p->size + SLACK);
  unsigned char *blocks;
  if (mem == NULL)
    return NULL;
  blocks = (unsigned char *)(((uintptr_t)mem + SYNCHRO__CACHE_LINE - 1) &
                             ~(uintptr_t)(SYNCHRO__CACHE_LINE - 1));
  for (i = 1; i + 1 < count; i++)
    *next_of(p, blocks + i * p->size) = blocks + (i + 1) * p->size;
  *next_of(p, blocks + (count - 1) * p->size) = NULL;
  c->head = blocks + p->size;
  c->tail = blocks + (count - 1) * p->size;
  c->count = count - 1;
  SYNCHRO__LIVE(ALLOCS, -1); /* so the slab is counted as blocks, not an allocation */
  SYNCHRO__LIVE(RECORDS, 1);
  return blocks;
}

/* Takes the shared stack, keeps its first chain and gives the others back. */
static void *grab_chain(synchro__pool_t *p) {
  void *first;
  atomic_fetch_add_explicit(&p->grabbing, 1, memory_order_relaxed);
  first = (void *)atomic_exchange_explicit(&p->shared, 0, memory_order_acquire);
  if (first != NULL) {
    void *rest = *chain_of(p, first), *it;
    if (rest != NULL) {
      for (it = rest; *chain_of(p, it) != NULL; it = *chain_of(p, it))
        ;
      push_chains(p, rest, it);
    }
  }
  atomic_fetch_sub_explicit(&p->grabbing, 1, memory_order_release);
  return first;
}

void *synchro__pool_get_slow(synchro__pool_t *p, synchro__pool_cache_t *c) {
  void *block, *it;
  unsigned n = 0;
  int spins;
  if (!registered)
    register_thread();
  block = grab_chain(p);
  /* Empty, perhaps only while another thread gives back what it took: wait a little
   * for that rather than grow the pool (bounded; yielding, as that thread may have been
   * preempted). */
  for (spins = 0;
       block == NULL && spins < 64 && atomic_load_explicit(&p->grabbing, memory_order_relaxed) != 0;
       spins++)
    sched_yield();
  if (block == NULL)
    block = grab_chain(p);
  if (block == NULL)
    return allocate_slab(p, c);
  block = synchro__chain_sort(block, p->link); /* see lib/chain.c */
  c->head = *next_of(p, block);
  if (c->head != NULL) {
    for (it = c->head; *next_of(p, it) != NULL; it = *next_of(p, it))
      n++;
    c->tail = it;
    n++;
  }
  c->count = n;
  SYNCHRO__LIVE(RECORDS, 1);
  return block;
}

/* The cache is empty (its tail must be set) or full. */
void synchro__pool_put_slow(synchro__pool_t *p, synchro__pool_cache_t *c, void *block) {
  if (c->count >= SYNCHRO__POOL_CACHE_MAX)
    give_back(p, c); /* the whole cache with one CAS; this thread starts afresh */
  if (SYNCHRO__UNLIKELY(!registered))
    register_thread();
  *next_of(p, block) = c->head;
  if (c->head == NULL)
    c->tail = block;
  c->head = block;
  c->count++;
}

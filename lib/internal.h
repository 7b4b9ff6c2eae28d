/* lib/internal.h - shared internals of the runtime. Never installed. */
#ifndef SYNCHRO_INTERNAL_H
#define SYNCHRO_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "synchro.h"
#include "testing.h"

#define SYNCHRO__CACHE_LINE 64
#define SYNCHRO__ARGS_INLINE 32
#define SYNCHRO__SPIN_GROWTH 8 /* the loop's spin window adapts up to this many times the base */
/* Small helpers of the per-call path: inlined whatever the optimizer thinks. */
#define SYNCHRO__HOT __attribute__((always_inline)) inline
/* A rare path kept out of the per-call code around it. */
#define SYNCHRO__COLD __attribute__((noinline, cold))
#define SYNCHRO__LIKELY(x) __builtin_expect(!!(x), 1)
#define SYNCHRO__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- test seams (lib/seam.c; lib/testing.h): nothing at all in production builds --- */
#ifdef SYNCHRO_TEST_SEAMS
void synchro__seam(synchro_seam_t seam, const synchro_call_t *call);
#define SYNCHRO__SEAM(name, call) synchro__seam(SYNCHRO_SEAM_##name, (call))
/* Live-resource counters (synchro_test_live): threads, fds, loops, handles, records,
 * allocations the runtime holds. */
enum {
  SYNCHRO__LIVE_THREADS,
  SYNCHRO__LIVE_FDS,
  SYNCHRO__LIVE_LOOPS,
  SYNCHRO__LIVE_HANDLES,
  SYNCHRO__LIVE_RECORDS,
  SYNCHRO__LIVE_ALLOCS,
  SYNCHRO__LIVE_COUNT
};
void synchro__live_add(int which, int delta);
#define SYNCHRO__LIVE(which, delta) synchro__live_add(SYNCHRO__LIVE_##which, (delta))
/* true when a test asked this fault point to fail now */
bool synchro__fault(synchro_fault_t fault);
#define SYNCHRO__FAULT(name) synchro__fault(SYNCHRO_FAULT_##name)
/* the loops of live synchronizers, for the test programs' affinity check */
void synchro__test_loop_known(synchro_t *s, bool on);
bool synchro__test_is_known_loop(const synchro_t *s);
#define SYNCHRO__LOOP_KNOWN(s, on) synchro__test_loop_known((s), (on))
#else
#define SYNCHRO__SEAM(name, call) ((void)0)
#define SYNCHRO__LIVE(which, delta) ((void)0)
#define SYNCHRO__FAULT(name) false
#define SYNCHRO__LOOP_KNOWN(s, on) ((void)0)
#endif

/* ---- the runtime's own locks ------------------------------------------------------
 * Every mutex of the runtime is taken through these, so that a test build can check
 * the rule that no runtime lock is held while user code runs (an implementation, a
 * cancel, demand or send hook, a class's constructor or destructor, a host callback):
 * such code may block on the program's own locks, or call back into the runtime. */
#ifdef SYNCHRO_TEST_SEAMS
extern _Thread_local int synchro__locks_held;
/* Aborts, naming `what`, if the calling thread holds a runtime lock. */
void synchro__user_code(const char *what);
#define SYNCHRO__USER_CODE(what) synchro__user_code(what)
#define SYNCHRO__HELD(delta) (synchro__locks_held += (delta))
#else
#define SYNCHRO__USER_CODE(what) ((void)0)
#define SYNCHRO__HELD(delta) ((void)0)
#endif
static inline void synchro__lock(pthread_mutex_t *m) {
  pthread_mutex_lock(m);
  SYNCHRO__HELD(1);
}
static inline void synchro__unlock(pthread_mutex_t *m) {
  SYNCHRO__HELD(-1);
  pthread_mutex_unlock(m);
}
static inline int synchro__trylock(pthread_mutex_t *m) {
  int rc = pthread_mutex_trylock(m);
  if (rc == 0)
    SYNCHRO__HELD(1);
  return rc;
}

/* ---- allocation (lib/alloc.c) ----------------------------------------------- */
void *synchro__malloc(size_t size);
void *synchro__calloc(size_t count, size_t size);
void *synchro__realloc(void *ptr, size_t size);
char *synchro__strdup(const char *s);
void synchro__free(void *ptr);

/* ---- time and sleeping (lib/wait.c) -------------------------------------------
 * Futex on Linux: a waiter sleeps only while *word == expected; a waker wakes it. */
uint64_t synchro__now_ns(void);
/* Absolute deadline in ns for a timeout in ms; UINT64_MAX for SYNCHRO_TIMEOUT_INFINITE. */
uint64_t synchro__deadline_after(int64_t timeout_ms);
/* Returns 0 when woken or the word changed, SYNCHRO_EPENDING at the deadline. */
int synchro__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t deadline_ns);
void synchro__futex_wake(_Atomic uint32_t *word, int count);
void synchro__cpu_relax(void);
/* ORs `bits` into *word and wakes up to `count` of its sleepers in one kernel step. */
void synchro__futex_or_wake(_Atomic uint32_t *word, uint32_t bits, int count);
/* One round of waiting for a thread that is about to finish something (start with
 * *round = 0): spins, then yields, then sleeps 20 us a round. */
void synchro__backoff(unsigned *round);
/* Polls `done(arg)` for up to `budget_ns`, reading the clock only every few rounds (a
 * clock read costs more than a poll). Returns whether `done` became true. */
bool synchro__spin_until(bool (*done)(const void *arg), const void *arg, int64_t budget_ns);
int synchro__ncpu(void);
int synchro__current_cpu(void);
/* The calling thread's CPU, re-read every few calls: threads rarely migrate, and the
 * spin decisions that use it only need to be right most of the time. */
typedef struct {
  int cpu;
  unsigned uses;
} synchro__recent_cpu_t;
extern _Thread_local synchro__recent_cpu_t synchro__recent_cpu_tls;
int synchro__recent_cpu_slow(void);
static inline int synchro__recent_cpu(void) {
  synchro__recent_cpu_t *t = &synchro__recent_cpu_tls;
  if (SYNCHRO__LIKELY((t->uses++ & 63u) != 0 && t->cpu >= 0))
    return t->cpu;
  return synchro__recent_cpu_slow();
}
/* memcpy for the small blocks of the hot path (arguments, results): whole words
 * inline when the size allows, libc otherwise. */
static inline void synchro__copy(void *dst, const void *src, size_t n) {
  if (n == 8) {
    __builtin_memcpy(dst, src, 8);
  } else if (n == 16) {
    __builtin_memcpy(dst, src, 16);
  } else if (n == 24) {
    __builtin_memcpy(dst, src, 24);
  } else if (n == 32) {
    __builtin_memcpy(dst, src, 32);
  } else {
    __builtin_memcpy(dst, src, n);
  }
}
/* Writes/clears an eventfd; both ignore EAGAIN (the counter is a flag for us). */
int synchro__eventfd_new(void);
void synchro__eventfd_signal(int fd);
void synchro__eventfd_clear(int fd);

/* ---- errors (lib/error.c) ---------------------------------------------------- */
struct synchro_error_s {
  int code;
  bool is_static;
  const char *message;
  const char *origin;
  struct json_t *details;
  synchro_error_t *cause;
};
/* The shared error for a runtime outcome code, or NULL for other codes. */
const synchro_error_t *synchro__static_error(int code);
int synchro__error_vnew(synchro_error_t **out, int code, const char *origin, struct json_t *details,
                        synchro_error_t *cause, const char *fmt, va_list ap);
/* Appends a link naming the op and synchronizer at the end of err's cause chain (the
 * caller still gets the implementation's error first). Best effort: nothing is added
 * when memory is short. Loop thread. */
void synchro__error_add_context(synchro_error_t *err, const synchro_call_t *rec);

/* ---- ambient context and cancel tokens (lib/context.c) ------------------------ */
struct synchro_ctx_s;
/* The calling thread's current context (holds a reference), or NULL. */
extern _Thread_local struct synchro_ctx_s *synchro__tls_ctx
    __attribute__((tls_model("initial-exec"))); /* one %fs-relative load at submission */
void synchro__ctx_ref(struct synchro_ctx_s *ctx);
void synchro__ctx_unref(struct synchro_ctx_s *ctx);
/* Whether the context's cancel token has fired. */
bool synchro__ctx_cancelled(const struct synchro_ctx_s *ctx);
/* Makes `ctx` the thread's current context for a callback; returns the previous one,
 * which synchro__ctx_leave() puts back. */
struct synchro_ctx_s *synchro__ctx_enter(struct synchro_ctx_s *ctx);
void synchro__ctx_leave(struct synchro_ctx_s *saved);
struct synchro_s;
/* Submission with a context: the record takes a reference, and a context with a token
 * registers the synchronizer so that the token can wake its loop. */
void synchro__ctx_bind(struct synchro_s *s, struct synchro_call_s *rec, struct synchro_ctx_s *ctx);
/* Loop thread: whether a token fired since the last call (then scan the active list). */
bool synchro__token_kicked(struct synchro_s *s);
/* The wake fd changed (loop start) or goes away (fork child, free). */
void synchro__token_slot_update(struct synchro_s *s);
void synchro__token_slot_release(struct synchro_s *s, bool wait);

/* ---- the call record ------------------------------------------------------------
 * One record per call, three cache lines, 64-byte aligned so that records never share
 * a line. Line 0 holds what crosses threads, line 1 what the loop touches and the
 * bindings every call sets, line 2 the payload and what diagnostics read. What only
 * some calls need (the links of a host's or an object's list, a host callback, the
 * object) lives in a one-line side block from its own pool, taken when a call is
 * bound to an object or attached to a host: a plain future is three lines. The
 * caller's future is the same record. */

/* state word: phase in the low 2 bits, then flags. Only the loop thread moves the
 * phase (PENDING -> DONE, one compare-and-swap in synchro__resolve); callers only set
 * CANCEL and WAITING. */
#define SYNCHRO__PENDING 0u
#define SYNCHRO__DONE 2u
#define SYNCHRO__PHASE_MASK 3u
#define SYNCHRO__CANCEL 4u      /* cancellation requested before the outcome was decided */
#define SYNCHRO__WAITING 8u     /* a caller sleeps on the futex */
#define SYNCHRO__CTL_QUEUED 16u /* in the control queue (cancel_next link) */
#define SYNCHRO__DEMAND 32u     /* a stream consumer made room: run the demand hook */
#define SYNCHRO__SENT 64u       /* a stream consumer sent a value or threw an error */
#define SYNCHRO__SINKED 128u    /* a sink is attached: the sink word holds it */

/* loop-only flags */
#define SYNCHRO__L_STARTED 0x01u     /* impl has been called */
#define SYNCHRO__L_IMPL_DONE 0x02u   /* impl finished (or never started) */
#define SYNCHRO__L_CANCEL_SEEN 0x04u /* cancellation handled on the loop */
#define SYNCHRO__L_ACTIVE 0x08u      /* in the synchronizer's active list */
#define SYNCHRO__L_PARKED 0x10u      /* counted as started, waiting: for open, or its turn */
#define SYNCHRO__L_BLOCKING 0x20u    /* set at submission: a caller blocks on it (dump) */
#define SYNCHRO__L_REASON 0x40u      /* status holds a cancel reason the loop recorded */
#define SYNCHRO__L_WRITTEN 0x80u     /* outcome written and counted, publication under way */

/* caller-only flags (read by whoever frees the record, after the refcount handoff) */
#define SYNCHRO__C_RESULT_TAKEN 0x01u
#define SYNCHRO__C_ERROR_TAKEN 0x02u
#define SYNCHRO__C_ATTACHED 0x04u     /* owned by a completion queue or host */
#define SYNCHRO__C_IN_HOST_LIST 0x08u /* in its host's list of pending calls */
#define SYNCHRO__C_FREED 0x10u        /* the caller released its handle */
#define SYNCHRO__C_THEN_FN 0x20u      /* then_fn is set */

#define SYNCHRO__MAGIC_LIVE 0x53594e43u  /* "SYNC" */
#define SYNCHRO__MAGIC_FREED 0x46524545u /* "FREE" */

/* sink word: where a resolved record goes besides waking a sleeping waiter. It counts
 * only while the state word has SINKED: attaching claims the word (NONE -> the sink),
 * then sets SINKED with a CAS that fails once the call is DONE; the resolver's one CAS
 * that publishes DONE tells it whether a sink was attached; detaching clears SINKED
 * with a CAS that fails once DONE, then gives the word back. So attach, detach and
 * the outcome are ordered by the state word alone, and resolving costs no read-modify-
 * write of its own for the sink. After DONE the word keeps the last sink (never
 * followed again). */
#define SYNCHRO__SINK_NONE ((uintptr_t)0)
/* An attached sink's word is its address (8-byte aligned) with a kind tag in bits 1-2,
 * so that a dump can tell how the call will be delivered without following the
 * pointer (the sink may be going away). */
#define SYNCHRO__SINK_TAG_MASK ((uintptr_t)6)
#define SYNCHRO__SINK_ANY ((uintptr_t)0)  /* a stream's or a wait group's sink */
#define SYNCHRO__SINK_HOST ((uintptr_t)2) /* a host: the call is an _aio / then call */
#define SYNCHRO__SINK_CQ ((uintptr_t)4)   /* a completion queue */
_Static_assert(_Alignof(void (*)(void)) >= 8, "sink addresses leave bits 0-2 for tags");
static inline struct synchro__sink_s *synchro__sink_ptr(uintptr_t word) {
  return (struct synchro__sink_s *)(word & ~(uintptr_t)7);
}
typedef struct synchro__sink_s synchro__sink_t;
struct synchro__sink_s {
  /* Runs on the thread that resolved `rec` (the loop thread), once. */
  void (*notify)(synchro__sink_t *sink, synchro_call_t *rec);
};

/* A call's side block (lib/pool.c): taken by whoever first binds the call to an object
 * (before the loop sees it) or attaches it to a host (the caller's thread), released
 * with the record. Each field is written by one side before the other can look. */
typedef struct synchro__ext_s {
  struct synchro_object_s *object; /* the object a method/lifecycle call runs on */
  synchro_fn then_fn;              /* synchro_future_then_typed's function pointer (C_THEN_FN) */
  synchro_host_cb then_cb;
  void *then_data;
  synchro_call_t *host_prev; /* attached to a host: its list of pending calls */
  synchro_call_t *host_next; /* also the link of the host's foreign-thread inbox */
  synchro_call_t *obj_prev;  /* the object's in-flight calls (loop thread) */
  synchro_call_t *obj_next;
} __attribute__((aligned(SYNCHRO__CACHE_LINE))) synchro__ext_t;

struct synchro_call_s {
  /* line 0: cross-thread */
  _Atomic uint32_t state;
  _Atomic uint32_t refs;
  _Atomic uint32_t magic;
  int32_t status;              /* a cancel reason while pending (L_REASON), then the outcome */
  synchro_call_t *next;        /* submission queue, then sink queue */
  synchro_call_t *cancel_next; /* control queue: cancel and demand requests */
  _Atomic uintptr_t sink;
  synchro_t *sync;
  const synchro_op_t *op;
  struct synchro_ctx_s *ctx; /* the caller's ambient context (a reference), or NULL */
  /* line 1: loop side, and the bindings every call sets */
  synchro_call_t *act_prev;
  synchro_call_t *act_next;
  synchro_cancel_fn cancel_fn;
  void *cancel_data; /* with cancel_fn */
  void *impl_data;
  uint64_t deadline_ns; /* 0: none */
  uint32_t heap_idx;
  uint16_t lflags;
  uint8_t cflags;
  uint8_t obj_kind;    /* SYNCHRO__OBJ_*: set exactly when ext->object is */
  synchro__ext_t *ext; /* NULL for a plain call */
  /* line 2: payload. The outcome decides which of result and error is live: a call
   * that failed has no result, one that succeeded has no error (NULL while pending). */
  union {
    _Alignas(16) unsigned char result[SYNCHRO_RESULT_MAX];
    synchro_error_t *error;
  };
  struct synchro_stream_s *stream; /* a stream op's buffer, else NULL */
  uint32_t origin;                 /* diagnostics: number of the submitting thread */
  uint32_t since_ms;               /* diagnostics: loop time (ms) when the loop took the call */
  /* The arguments, or (op->args_size > SYNCHRO__ARGS_INLINE) a pointer to a heap block
   * holding them: synchro__rec_args() */
  _Alignas(8) unsigned char args_inline[SYNCHRO__ARGS_INLINE];
} __attribute__((aligned(SYNCHRO__CACHE_LINE)));

_Static_assert(sizeof(struct synchro_call_s) == 3 * SYNCHRO__CACHE_LINE,
               "a call record is three cache lines");

/* Where a call's arguments are. */
static inline void *synchro__rec_args(const synchro_call_t *rec) {
  void *heap;
  if (SYNCHRO__LIKELY(rec->op->args_size <= SYNCHRO__ARGS_INLINE))
    return (void *)rec->args_inline;
  __builtin_memcpy(&heap, rec->args_inline, sizeof(heap));
  return heap;
}

/* The object a call is bound to, or NULL. */
static inline struct synchro_object_s *synchro__rec_object(const synchro_call_t *rec) {
  return rec->obj_kind != 0 ? rec->ext->object : NULL;
}

/* Diagnostics: the calling thread's number (1, 2, ... in the order threads first
 * submit), for a record's `origin`. One thread-local load in the common case. */
extern _Thread_local uint32_t synchro__tls_thread_no;
uint32_t synchro__thread_no_assign(void);
static inline uint32_t synchro__thread_no(void) {
  uint32_t n = synchro__tls_thread_no;
  return SYNCHRO__LIKELY(n != 0) ? n : synchro__thread_no_assign();
}

/* Adds one to a counter that only one thread writes at a time: no atomic RMW. */
static inline void synchro__count(_Atomic uint64_t *counter) {
  atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                        memory_order_relaxed);
}
static inline void synchro__uncount(_Atomic uint64_t *counter) {
  atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) - 1,
                        memory_order_relaxed);
}

/* pools (lib/pool.c): per-thread caches over a shared free stack, one pool per size */
typedef struct synchro__pool_s {
  size_t size;            /* bytes per block: a multiple of the cache line */
  size_t link;            /* offset of the two links a free block lends (next, next chain) */
  _Atomic unsigned slabs; /* allocated so far: decides the next one's size */
  _Atomic uintptr_t shared;
  _Atomic uint32_t grabbing; /* threads between taking the stack and giving back */
} synchro__pool_t;
typedef struct {
  void *head;
  void *tail; /* valid while head != NULL */
  unsigned count;
} synchro__pool_cache_t;
#define SYNCHRO__POOL_CACHE_MAX 1024u
extern synchro__pool_t synchro__record_pool, synchro__ext_pool;
extern _Thread_local synchro__pool_cache_t synchro__record_cache, synchro__ext_cache;
/* chain.c: sorts a NULL-terminated list of blocks (linked through the pointer at
 * offset `link` in each) by address, ascending; returns the new head. */
void *synchro__chain_sort(void *list, size_t link);
void *synchro__pool_get_slow(synchro__pool_t *p, synchro__pool_cache_t *c);
void synchro__pool_put_slow(synchro__pool_t *p, synchro__pool_cache_t *c, void *block);
/* `link`: the pool's link offset, a constant here so that the fast path is a load and
 * two stores. */
static inline void *synchro__pool_take(synchro__pool_t *p, synchro__pool_cache_t *c, size_t link) {
  void *block = c->head;
  if (SYNCHRO__LIKELY(block != NULL)) {
    c->head = *(void **)((char *)block + link);
    c->count--;
    SYNCHRO__LIVE(RECORDS, 1);
    return block;
  }
  return synchro__pool_get_slow(p, c);
}
static inline void synchro__pool_give(synchro__pool_t *p, synchro__pool_cache_t *c, size_t link,
                                      void *block) {
  SYNCHRO__LIVE(RECORDS, -1);
  if (SYNCHRO__LIKELY(c->head != NULL && c->count < SYNCHRO__POOL_CACHE_MAX)) {
    *(void **)((char *)block + link) = c->head;
    c->head = block;
    c->count++;
    return;
  }
  synchro__pool_put_slow(p, c, block);
}
static inline synchro_call_t *synchro__pool_get(void) {
  return synchro__pool_take(&synchro__record_pool, &synchro__record_cache,
                            offsetof(synchro_call_t, next));
}
static inline void synchro__pool_put(synchro_call_t *rec) {
  synchro__pool_give(&synchro__record_pool, &synchro__record_cache, offsetof(synchro_call_t, next),
                     rec);
}

/* The call's side block, taken from the pool on first use (NULL: out of memory). The
 * thread that calls this must be the only one that can be binding the call now. */
static inline synchro__ext_t *synchro__rec_ext(synchro_call_t *rec) {
  synchro__ext_t *ext = rec->ext;
  if (SYNCHRO__LIKELY(ext != NULL))
    return ext;
  ext = synchro__pool_take(&synchro__ext_pool, &synchro__ext_cache, 0);
  if (ext != NULL) {
    ext->object = NULL;
    rec->ext = ext;
  }
  return ext;
}

/* Gives the call's side block back to its pool (the record is being released). */
static inline void synchro__rec_ext_release(synchro_call_t *rec) {
  if (rec->ext != NULL)
    synchro__pool_give(&synchro__ext_pool, &synchro__ext_cache, 0, rec->ext);
}

/* record lifetime (lib/record.c) */
void synchro__rec_ref(synchro_call_t *rec);
void synchro__rec_unref(synchro_call_t *rec);
/* Decides the outcome and publishes it: wakes a sleeping waiter, notifies the sink.
 * `result` (outcome 0) and `err` are owned by the record from here on, also when the
 * call was cancelled (then they are released). Loop thread (or a thread that owns the
 * loop's state: fork recovery, teardown). Returns 0 or SYNCHRO_EALREADY. */
int synchro__resolve(synchro_call_t *rec, int outcome, const void *result, synchro_error_t *err);
/* Gives back one max_inflight admission slot and wakes a blocked caller. */
void synchro__release_admission(synchro_t *s);
/* Releases what a result (not yet stored in a record) owns. */
void synchro__release_result(const synchro_op_t *op, const void *result);
static inline uint32_t synchro__phase(uint32_t state) { return state & SYNCHRO__PHASE_MASK; }
static inline int synchro__rec_check(const synchro_call_t *rec) {
  uint32_t magic;
  if (SYNCHRO__UNLIKELY(rec == NULL))
    return SYNCHRO_EINVAL;
  magic = atomic_load_explicit(&rec->magic, memory_order_relaxed);
  if (SYNCHRO__LIKELY(magic == SYNCHRO__MAGIC_LIVE))
    return 0;
  return magic == SYNCHRO__MAGIC_FREED ? SYNCHRO_EFREED : SYNCHRO_EINVAL;
}
/* rec_check for the caller's handle: also refuses a future its caller already freed,
 * while the loop may still hold the record. */
static inline int synchro__future_check(const synchro_call_t *rec) {
  int rc = synchro__rec_check(rec);
  if (SYNCHRO__LIKELY(rc == 0) && SYNCHRO__UNLIKELY(rec->cflags & SYNCHRO__C_FREED))
    rc = SYNCHRO_EFREED;
  return rc;
}
/* The error of a resolved call that failed with one, else NULL. */
static inline synchro_error_t *synchro__rec_error(const synchro_call_t *rec) {
  return rec->status != 0 ? rec->error : NULL;
}

/* Asks for a record's three working lines ahead of use (a hint: never faults, even on
 * an address that holds no record). A batch's records were written by another thread,
 * so each line is a cross-core transfer; walking them one miss at a time cost 62 ns a
 * record (measured), several in flight cost a fraction of that. */
/* `at` may lie past its slab (a prefetch never faults): integer arithmetic, so that no
 * out-of-bounds pointer is formed. */
static inline void synchro__prefetch_rec(uintptr_t at) {
  __builtin_prefetch((const void *)at, 1, 3);
  __builtin_prefetch((const void *)(at + SYNCHRO__CACHE_LINE), 1, 3);
  __builtin_prefetch((const void *)(at + 2 * SYNCHRO__CACHE_LINE), 1, 3);
}
#define SYNCHRO__PREFETCH_AHEAD 4 /* records; 3 lines each, about what a core keeps in flight */
/* For a walk of a linked batch at `rec`, followed by `next`: a linked list can only be
 * walked one miss at a time, but a thread's consecutive calls mostly sit side by side
 * in a slab of the pool, so when two neighbours follow each other, fetch the records
 * further along that direction early. */
static inline void synchro__prefetch_ahead(const synchro_call_t *rec, const synchro_call_t *next) {
  uintptr_t r = (uintptr_t)rec, n = (uintptr_t)next;
  if (n == r + sizeof(*rec))
    synchro__prefetch_rec(n + SYNCHRO__PREFETCH_AHEAD * sizeof(*rec));
  else if (n == r - sizeof(*rec))
    synchro__prefetch_rec(n - SYNCHRO__PREFETCH_AHEAD * sizeof(*rec));
}

/* ---- lock-free stacks ---------------------------------------------------------
 * Producers push with CAS; the single consumer takes everything at once, so there is
 * no ABA. Bit 0 of the head marks the stack closed: pushes then fail. */
#define SYNCHRO__STACK_CLOSED ((uintptr_t)1)

/* Pushes the chain that `top` heads and whose last `next`-style link is *bottom_link
 * (a single record: its own link). Returns false, pushing nothing, if the stack is
 * closed; else sets *was to the previous head (0: the stack was empty, so whoever
 * consumes it may need waking). seq_cst: some callers pair the push with a Dekker-style
 * check of a consumer's "asleep" flag. */
/* Takes the whole stack (its closed bit stays): its records newest first. */
static inline synchro_call_t *synchro__stack_take_all(_Atomic uintptr_t *head) {
  uintptr_t h = atomic_load_explicit(head, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(head, &h, h & SYNCHRO__STACK_CLOSED,
                                                memory_order_acquire, memory_order_relaxed))
    ;
  return (synchro_call_t *)(h & ~SYNCHRO__STACK_CLOSED);
}

/* The whole stack, its records relinked oldest first through the same link (`next`, or
 * `cancel_next` for the control queue). */
static inline synchro_call_t *synchro__stack_take_fifo(_Atomic uintptr_t *head, bool cancel_link) {
  synchro_call_t *list = synchro__stack_take_all(head), *fifo = NULL;
  while (list != NULL) { /* reverse: pushes built it newest first */
    synchro_call_t **link = cancel_link ? &list->cancel_next : &list->next;
    synchro_call_t *next = *link;
    synchro__prefetch_ahead(list, next);
    *link = fifo;
    fifo = list;
    list = next;
  }
  return fifo;
}

static inline bool synchro__stack_push(_Atomic uintptr_t *head, synchro_call_t *top,
                                       synchro_call_t **bottom_link, uintptr_t *was) {
  uintptr_t h = atomic_load_explicit(head, memory_order_relaxed);
  do {
    if (h & SYNCHRO__STACK_CLOSED) {
      /* Refused: the caller now releases what it pushed, so it must see everything
       * the closer wrote before closing (an acquire read of the closed head). */
      (void)atomic_load_explicit(head, memory_order_acquire);
      return false;
    }
    *bottom_link = (synchro_call_t *)h;
  } while (!atomic_compare_exchange_weak_explicit(head, &h, (uintptr_t)top, memory_order_seq_cst,
                                                  memory_order_relaxed));
  *was = h;
  return true;
}

/* ---- the synchronizer ------------------------------------------------------------ */
typedef struct synchro__heap_s {
  synchro_call_t **items;
  uint32_t len;
  uint32_t cap;
} synchro__heap_t;

enum { SYNCHRO__NOT_STARTED = 0 };

struct synchro_s {
  /* written by every caller: its own line */
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uintptr_t submit_head;
  _Atomic uintptr_t cancel_head;
  _Atomic int submit_cpu;       /* CPU of the latest submitter (spin and yield decisions) */
  _Atomic uint64_t n_submitted; /* beside the head every submitter writes anyway */
  /* read by callers, written by the loop: 1 while the loop is draining or spinning */
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic int awake;
  /* fork generation + 1 of the running loop thread; 0 while not running */
  _Atomic uint64_t run_gen;
  int wake_fd;
  _Atomic int loop_cpu; /* last CPU the loop ran on, for the caller's spin decision */
  pthread_t thread;
  _Atomic uint32_t inflight;
  _Atomic uint32_t inflight_waiters;
  /* counters written by one thread at a time (the loop, or the thread that owns its
   * state) */
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uint64_t n_completed;
  _Atomic uint64_t n_failed;
  _Atomic uint64_t n_cancelled;
  _Atomic uint64_t n_wakeups;
  /* configuration: read by every caller, so not on the counters' line, which the loop
   * writes with every call it ends */
  _Alignas(SYNCHRO__CACHE_LINE) char *name;
  synchro_options_t opts;
  bool spin_loop;
  /* the loop's adaptive spin window (loop thread): from opts.loop_spin_ns up to
   * SYNCHRO__SPIN_GROWTH times it (lib/loop.c adapt_spin) */
  int64_t spin_ns;
  uint64_t gave_up_at; /* when the loop last stopped spinning to sleep, 0: it did not */
  bool error_context;  /* SYNCHRO_ERROR_CONTEXT: failed calls get a bridge link */
  /* lifecycle */
  pthread_mutex_t close_mutex;
  bool closed;
  int64_t grace_ms;
  bool shutting_down;
  /* loop-thread state */
  uv_loop_t loop;
  uv_poll_t wake_poll;
  uv_timer_t deadline_timer;
  uv_timer_t shutdown_timer;
  uv_prepare_t flush_prepare; /* wakes stream consumers once per loop iteration */
  struct synchro_stream_s *dirty_streams;
  /* finished records whose loop reference is dropped at the end of the iteration, so
   * that an implementation finishing a call twice in one callback is told so */
  synchro_call_t *finished;
  synchro_call_t *active; /* started, impl not done */
  synchro__heap_t heap;
  /* fork safety (lib/fork.c) */
  pthread_mutex_t fork_lock; /* held by the loop while it moves calls between lists */
  synchro_t *reg_prev;
  synchro_t *reg_next;
  /* objects living on this loop, by state pointer (translation) */
  /* a fork child's inherited objects, whose destructors run once no lock is held
   * (start_mutex guards it) */
  struct synchro_object_s *orphans;
  struct synchro_object_s **obj_buckets;
  uint32_t obj_nbuckets;
  uint32_t obj_count;
  /* diagnostics (lib/dump.c): what the loop thread is running, read by a dump that the
   * loop does not answer. Written by the loop only. */
  _Atomic(const synchro_op_t *) busy_op;
  _Atomic uint32_t busy_since_ms;
  _Atomic int loop_tid; /* the loop thread's kernel id while it runs, else 0 */
  /* diagnostics (lib/diag.c) */
  _Atomic(synchro_t *) waits_on; /* the synchronizer this loop thread blocks on, or NULL */
  struct synchro__watch_s *wd;   /* the stall watchdog, NULL when off */
  /* loop death (A12): what a dying loop thread must still find */
  synchro_call_t *cancel_batch; /* the rest of the control requests (each holds a ref) */
  synchro_call_t *current;      /* the call whose start or cancel hook runs */
  bool dying;                   /* the loop thread is exiting: no libuv call any more */
  _Atomic int dead;             /* 1 once the loop thread ended unexpectedly */
  char death[160];              /* the cause, written before `dead` is published */
  /* cancel tokens (lib/context.c) */
  _Atomic int tok_slot; /* index + 1 of this synchronizer's wake slot, 0: none */
  uint32_t tok_seen;    /* loop thread: the slot's kick count last acted on */
};

/* The synchronizer whose loop runs on this thread, or NULL. */
extern _Thread_local synchro_t *synchro__tls_loop;
/* Incremented in the child at every fork(). */
extern _Atomic uint64_t synchro__fork_gen;

static inline bool synchro__on_loop(const synchro_t *s) { return synchro__tls_loop == s; }

/* exit.c: drops `s` from the synchronizers closed at exit (synchro_free). */
void synchro__exit_forget(synchro_t *s);

/* fork.c */
extern pthread_mutex_t synchro__start_mutex;
void synchro__fork_register(synchro_t *s);
void synchro__fork_unregister(synchro_t *s);

/* alloc.c: blocks aligned to a cache line, for structs with _Alignas members */
void *synchro__aligned_calloc(size_t size);
void synchro__aligned_free(void *ptr);

/* synchronizer.c */
/* Starts the loop thread unless it runs (lazily, once per process after a fork). */
int synchro__ensure_running_slow(synchro_t *s);
static inline int synchro__ensure_running(synchro_t *s) {
  if (SYNCHRO__LIKELY(atomic_load_explicit(&s->run_gen, memory_order_acquire) ==
                      atomic_load_explicit(&synchro__fork_gen, memory_order_acquire) + 1))
    return 0;
  return synchro__ensure_running_slow(s);
}
/* In a fork child, resolves the calls inherited from the parent (SYNCHRO_EFORKED). */
void synchro__check_fork_slow(synchro_t *s);
static inline void synchro__check_fork(synchro_t *s) {
  uint64_t gen = atomic_load_explicit(&s->run_gen, memory_order_acquire);
  if (SYNCHRO__UNLIKELY(gen != SYNCHRO__NOT_STARTED &&
                        gen != atomic_load_explicit(&synchro__fork_gen, memory_order_acquire) + 1))
    synchro__check_fork_slow(s);
}
void synchro__wake_loop(synchro_t *s);
/* Whether the loop thread of `s` runs in this process (not an inherited one). */
bool synchro__is_running(synchro_t *s);

/* loop.c: the loop thread */
void *synchro__loop_main(void *arg);
int synchro__loop_init(synchro_t *s);
/* The implementation is done with `rec` (or never started): drop the loop's reference
 * once the outcome is published (lib/loop.c). */
void synchro__loop_finish_call_slow(synchro_t *s, synchro_call_t *rec);
static inline void synchro__active_insert(synchro_t *s, synchro_call_t *rec);
static inline void synchro__active_remove(synchro_t *s, synchro_call_t *rec);
/* Drops the loop's references to records finished during this loop iteration. */
void synchro__loop_release_finished(synchro_t *s);
void synchro__loop_drop_all(synchro_t *s, int outcome);
void synchro__loop_resolve_active(synchro_t *s, int outcome);
/* Closes every handle on the loop, runs it until they are closed, closes the loop. */
void synchro__loop_dispose(synchro_t *s);

/* dump.c: the dump's control request, served on the loop thread from the control queue */
extern const synchro_op_t synchro__dump_op;
void synchro__dump_serve(synchro_t *s, synchro_call_t *req);
/* Closes an fd the runtime opened (synchro__eventfd_new): counted by the test seams. */
void synchro__fd_close(int fd);

/* heap.c: deadlines, earliest first */
int synchro__heap_push(synchro__heap_t *h, synchro_call_t *rec);
void synchro__heap_remove(synchro__heap_t *h, synchro_call_t *rec);
synchro_call_t *synchro__heap_top(const synchro__heap_t *h);
void synchro__heap_free(synchro__heap_t *h);

/* future.c */
/* Attaches `sink` to a pending call: 0, SYNCHRO_EALREADY (DONE: no notification will
 * come) or SYNCHRO_EINVAL (another sink holds it). `tag`: SYNCHRO__SINK_ANY, _HOST or
 * _CQ (what a dump reports). */
int synchro__attach_sink(synchro_call_t *rec, synchro__sink_t *sink, uintptr_t tag);
/* Whether a sink is attached to the call and will be notified. */
bool synchro__sink_attached(const synchro_call_t *rec);
/* Marks a record nobody else sees yet (before its push) as having, or no longer
 * having, the sink its word holds. */
static inline void synchro__set_sinked_unpushed(synchro_call_t *rec, bool sinked) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_relaxed);
  st = sinked ? st | SYNCHRO__SINKED : st & ~SYNCHRO__SINKED;
  atomic_store_explicit(&rec->state, st, memory_order_relaxed);
}
/* Pushes a runtime request (rec->op is internal, e.g. the dump's) on the control queue;
 * the queue holds one of its references. Returns false when the loop is gone. */
bool synchro__post_request(synchro_call_t *rec);
/* Asks the loop to look at `rec` again (cancel and/or demand, as set in `bits`). */
void synchro__post_control(synchro_call_t *rec, uint32_t bits);
/* What a call is bound to besides its op: set on the record before the loop sees it. */
enum {
  SYNCHRO__OBJ_NONE,
  SYNCHRO__OBJ_METHOD,
  SYNCHRO__OBJ_OPEN,
  SYNCHRO__OBJ_CLOSE,
  SYNCHRO__OBJ_TEARDOWN,
  SYNCHRO__OBJ_CONSTRUCT
};
typedef struct synchro__target_s {
  struct synchro_stream_s *stream;
  struct synchro_object_s *object;
  uint8_t obj_kind;
  bool internal; /* the runtime's own call (teardown): never refused by max_inflight */
} synchro__target_t;
int synchro__submit(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                    bool blocking, const synchro__target_t *target, synchro_call_t **out);
/* Blocking wait + result/error handoff shared by every blocking entry point. */
int synchro__finish_blocking(synchro_call_t *rec, void *result, synchro_error_t **err);
/* Only what a fresh call reads before anything writes it. Links and bindings that are
 * set when the record joins a list or a host (act_*, cancel_data, the side block's
 * fields) are left as they are: every reader is guarded by a flag or by the field set
 * with them (L_ACTIVE, C_IN_HOST_LIST, C_ATTACHED, C_THEN_FN, obj_kind, cancel_fn). */
static inline void synchro__init_record(synchro_call_t *rec, synchro_t *s, const synchro_op_t *op) {
  atomic_init(&rec->state, SYNCHRO__PENDING);
  atomic_init(&rec->refs, 2); /* the caller's and the loop's */
  atomic_init(&rec->magic, SYNCHRO__MAGIC_LIVE);
  rec->status = 0;
  atomic_init(&rec->sink, SYNCHRO__SINK_NONE);
  rec->sync = s;
  rec->op = op;
  rec->ctx = NULL;
  rec->cancel_fn = NULL;
  rec->impl_data = NULL;
  rec->heap_idx = UINT32_MAX;
  rec->lflags = 0;
  rec->cflags = 0;
  rec->obj_kind = SYNCHRO__OBJ_NONE;
  rec->error = NULL; /* the result's first bytes: NULL until an outcome */
  rec->stream = NULL;
  rec->ext = NULL;
  rec->origin = synchro__thread_no();
  rec->since_ms = 0;
}

bool synchro__is_done(const synchro_call_t *rec);
bool synchro__would_deadlock(const synchro_call_t *rec, int64_t timeout_ms);
/* Sleeps until rec is DONE (0) or the deadline passes (SYNCHRO_EPENDING). */
int synchro__wait_done(synchro_call_t *rec, uint64_t deadline_ns);

/* host.c: delivery of records that are not plain futures (streams) */
int synchro__host_attach(synchro_host_t *h, synchro_call_t *rec, synchro_host_cb cb, void *data);
void synchro__host_deliver(synchro_host_t *h, synchro_call_t *rec);
/* Attaches a record not yet pushed to the loop, on the host's own thread: it joins the
 * host's list and its sink is set without the attach race synchro_future_then()
 * resolves. SYNCHRO_EPERM off the host thread (attach after the push instead),
 * SYNCHRO_ECLOSED, SYNCHRO_ENOMEM. Undone by synchro__host_detach_unpushed() if the
 * push is refused. */
int synchro__host_attach_unpushed(synchro_host_t *h, synchro_call_t *rec, synchro_host_cb cb,
                                  synchro_fn fn, void *data);
void synchro__host_detach_unpushed(synchro_host_t *h, synchro_call_t *rec);
/* synchro_submit_then() with a typed callback (the generated _aio functions). */
int synchro__submit_then(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                         synchro_host_t *h, synchro_host_cb cb, synchro_fn fn, void *data);

/* object.c (loop side) */
/* Lifecycle checks before a call on an object starts; false: resolved or parked. */
bool synchro__object_admit(synchro_t *s, synchro_call_t *rec);
/* A call bound to an object ended (run at the end of the loop iteration). `live`:
 * the loop runs, so lifecycle steps (close after a failed open, teardown) may start. */
void synchro__object_call_done(synchro_t *s, synchro_call_t *rec, bool live);
void synchro__object_release(struct synchro_object_s *obj); /* a record's hold */
void synchro__objects_shutdown(synchro_t *s);               /* close every open object */
/* The loop is gone: its objects are cut loose (calls on them fail with `reason`); their
 * destructors run in synchro__objects_reap, which the caller runs once it holds no
 * runtime lock (A3: no user code under a runtime lock). */
struct synchro_object_s *synchro__objects_orphan(synchro_t *s, int reason);
void synchro__objects_reap(struct synchro_object_s *list); /* takes s->orphans' list */
/* loop.c: starts an admitted call's implementation */
void synchro__loop_run_impl(synchro_t *s, synchro_call_t *rec);
/* Cancels a started call now (hook or resolution), on the loop thread. */
void synchro__loop_cancel(synchro_t *s, synchro_call_t *rec, int reason);
/* Takes one max_inflight slot without waiting (the runtime's own calls). */
void synchro__force_admission(synchro_t *s);
/* Counts a call as started (cancellable, seen by shutdown) without running it yet. */
void synchro__loop_park(synchro_t *s, synchro_call_t *rec);

/* diag.c: diagnostics hook, host-thread marks, wait-for edges, stall watchdog */
/* Non-zero on a host-loop thread (hosts it owns + the explicit mark). */
extern _Thread_local int synchro__tls_host;
/* Whether a diagnostics hook is set (host-loop threads matter only then). */
extern _Atomic bool synchro__diag_hook_set;
typedef struct synchro__blocking_s {
  synchro_t *self; /* the loop whose thread makes the call (its wait-for edge is set) */
  uint64_t t0;     /* start time when the call is reported, else 0 */
} synchro__blocking_t;
/* Whether a blocking call made on this thread needs synchro__blocking_begin/end: on
 * a loop thread (`self`: synchro__tls_loop, read once by the caller), or on a host-loop
 * thread while a hook is set. With no hook, a plain thread pays a branch on the
 * thread-local the caller already read and one relaxed load of a global. */
static inline bool synchro__blocking_watched(const synchro_t *self) {
  return SYNCHRO__UNLIKELY(self != NULL) ||
         SYNCHRO__UNLIKELY(atomic_load_explicit(&synchro__diag_hook_set, memory_order_relaxed) &&
                           synchro__tls_host != 0);
}
/* Before blocking on `target`: sets this loop's wait-for edge and walks the chain
 * from `target`; returns SYNCHRO_EDEADLK (edge cleared) if it comes back here. */
int synchro__blocking_begin(synchro_t *target, synchro__blocking_t *b);
/* After: clears the edge and reports the call through the hook, if one is set. */
void synchro__blocking_end(synchro_t *target, const synchro_op_t *op, int rc,
                           const synchro__blocking_t *b);
void synchro__host_thread_add(int delta);
/* The stall watchdog: allocated by synchro_new, its thread runs while the loop thread
 * does (started and joined by the loop thread). */
int synchro__wd_new(synchro_t *s);
void synchro__wd_free(synchro_t *s);
void synchro__wd_loop_start(synchro_t *s);
void synchro__wd_loop_stop(synchro_t *s);
void synchro__wd_iteration(synchro_t *s);                       /* once per loop iteration */
void synchro__wd_activity(synchro_t *s);                        /* calls were taken */
void synchro__wd_running(synchro_t *s, const synchro_op_t *op); /* impl starts (NULL: ends) */
void synchro__wd_fork_lock(synchro_t *s, bool lock);            /* around fork() */
void synchro__wd_fork_child(synchro_t *s);
void synchro__diag_fork_child(void);

/* stream.c */
void synchro__stream_destroy(struct synchro_stream_s *st);
void synchro__stream_bind(struct synchro_stream_s *st, synchro_call_t *rec);
int synchro__stream_open(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                         struct synchro_object_s *object, synchro_stream_t **out);
void synchro__stream_demand(synchro_call_t *rec);
/* Hands what the consumer sent (synchro_stream_send/throw) to the producer's hook. */
void synchro__stream_deliver_sent(synchro_call_t *rec);
/* Wakes the consumers of every stream that got items since the last flush. */
void synchro__streams_flush(synchro_t *s);

/* ---- active list: started calls whose implementation has not finished (loop) ----- */
static inline void synchro__active_insert(synchro_t *s, synchro_call_t *rec) {
  rec->act_prev = NULL;
  rec->act_next = s->active;
  if (s->active != NULL)
    s->active->act_prev = rec;
  s->active = rec;
  rec->lflags |= SYNCHRO__L_ACTIVE;
}

static inline void synchro__active_remove(synchro_t *s, synchro_call_t *rec) {
  if (!(rec->lflags & SYNCHRO__L_ACTIVE))
    return;
  if (rec->act_prev != NULL)
    rec->act_prev->act_next = rec->act_next;
  else
    s->active = rec->act_next;
  if (rec->act_next != NULL)
    rec->act_next->act_prev = rec->act_prev;
  rec->lflags &= (uint16_t)~SYNCHRO__L_ACTIVE;
}

static inline void synchro__loop_finish_call(synchro_t *s, synchro_call_t *rec) {
  rec->lflags |= SYNCHRO__L_IMPL_DONE;
  synchro__active_remove(s, rec);
  if (SYNCHRO__UNLIKELY(rec->deadline_ns != 0 || s->shutting_down)) {
    synchro__loop_finish_call_slow(s, rec);
    return;
  }
  /* The loop's reference, and what the call's end means for its object (close,
   * destroy), wait for the end of this loop iteration: the implementation may still be
   * using the call and its state right after finishing it. */
  rec->act_next = s->finished;
  s->finished = rec;
}

#endif /* SYNCHRO_INTERNAL_H */

/* lib/diag.c - diagnostics: the process-wide hook, host-loop thread marks, the
 * wait-for edges between loops (cycle detection), and the stall watchdog.
 *
 * Wait-for edges: a loop thread that makes a blocking call into another synchronizer
 * publishes "my loop waits on B" in its own synchronizer (waits_on), then walks the
 * chain B -> B.waits_on -> ... . Reaching itself means a cycle: the call fails with
 * SYNCHRO_EDEADLK instead of hanging. Both the store and the loads are seq_cst, so of
 * two loops closing a cycle at the same time at least one sees the other's edge.
 *
 * Stall watchdog: the loop is configured with UV_METRICS_IDLE_TIME, so libuv counts
 * the time spent waiting in its poll. The loop bumps a progress counter once per
 * iteration (in its prepare callback, just before polling) and whenever it starts an
 * implementation. A watchdog thread samples the counter and the idle time: between two
 * bumps, busy = wall - idle. A stall is reported once, when the busy time since the
 * last bump reaches the threshold. The lag metric is measured by the loop itself, per
 * iteration (prepare to prepare, minus the idle time). The
 * watchdog ticks every threshold/4 while calls are in flight and parks on a futex
 * while nothing is in flight and the loop waits in its poll; taking calls off the
 * queue wakes it (Dekker: the loop publishes activity then reads "parked", the
 * watchdog publishes "parked" then reads activity, both seq_cst). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define MAX_HOPS 64 /* a chain longer than this is not followed further */

/* ---- the hook ---------------------------------------------------------------------- */

static pthread_rwlock_t hook_lock = PTHREAD_RWLOCK_INITIALIZER;
static synchro_diag_hook_t hook_fn;
static void *hook_data;
_Atomic bool synchro__diag_hook_set;
#define hook_set synchro__diag_hook_set

int synchro_diag_set_hook(synchro_diag_hook_t hook, void *data) {
  pthread_rwlock_wrlock(&hook_lock);
  hook_fn = hook;
  hook_data = data;
  atomic_store_explicit(&hook_set, hook != NULL, memory_order_release);
  pthread_rwlock_unlock(&hook_lock);
  return 0;
}

static bool hook_wanted(void) { return atomic_load_explicit(&hook_set, memory_order_relaxed); }

static void emit(const synchro_diag_event_t *ev) {
  if (!hook_wanted())
    return;
  pthread_rwlock_rdlock(&hook_lock); /* readers nest: a hook may make calls that report */
  if (hook_fn != NULL)
    hook_fn(ev, hook_data);
  pthread_rwlock_unlock(&hook_lock);
}

void synchro__diag_fork_child(void) {
  /* A thread of the parent may have been inside a hook: the lock is not ours to keep. */
  pthread_rwlock_init(&hook_lock, NULL);
}

/* ---- host-loop threads -------------------------------------------------------------- */

#define EXPLICIT_MARK 0x40000000

_Thread_local int synchro__tls_host;

void synchro__host_thread_add(int delta) { synchro__tls_host += delta; }

void synchro_diag_mark_host_thread(int on) {
  if (on)
    synchro__tls_host |= EXPLICIT_MARK;
  else
    synchro__tls_host &= ~EXPLICIT_MARK;
}

int synchro_diag_is_host_thread(void) { return synchro__tls_host != 0; }

/* ---- blocking calls: wait-for edges and reports ------------------------------------- */

int synchro__blocking_begin(synchro_t *target, synchro__blocking_t *b) {
  synchro_t *self = synchro__tls_loop, *p;
  int hops;
  b->self = NULL;
  b->t0 = 0;
  if (target == NULL)
    return 0;
  if (self != NULL && self != target) {
    atomic_store(&self->waits_on, target);
    for (p = target, hops = 0; p != NULL && hops < MAX_HOPS; hops++) {
      if (p == self) {
        atomic_store(&self->waits_on, NULL);
        return SYNCHRO_EDEADLK;
      }
      /* p is alive: a loop blocked on it keeps it (freeing a synchronizer while a
       * call into it is in flight is a use after free anyway). */
      p = atomic_load(&p->waits_on);
    }
    b->self = self;
  }
  if (hook_wanted())
    b->t0 = synchro__now_ns();
  return 0;
}

void synchro__blocking_end(synchro_t *target, const synchro_op_t *op, int rc,
                           const synchro__blocking_t *b) {
  synchro_diag_event_t ev;
  synchro_t *self = synchro__tls_loop;
  if (b->self != NULL)
    atomic_store(&b->self->waits_on, NULL);
  if (b->t0 == 0)
    return;
  memset(&ev, 0, sizeof(ev));
  ev.kind = self != NULL ? SYNCHRO_DIAG_LOOP_BLOCKED : SYNCHRO_DIAG_HOST_BLOCKED;
  ev.synchronizer = target->name;
  ev.blocked_loop = self != NULL ? self->name : NULL;
  ev.op = op != NULL ? op->name : NULL;
  ev.thread = pthread_self();
  ev.duration_ns = synchro__now_ns() - b->t0;
  ev.status = rc;
  emit(&ev);
}

/* ---- the stall watchdog ------------------------------------------------------------- */

typedef struct synchro__watch_s synchro__watch_t;
struct synchro__watch_s {
  synchro_t *s;
  uint64_t threshold_ns;
  uint64_t period_ns;
  pthread_t thread;
  pthread_t loop_thread;
  bool running; /* loop thread only */
  /* Held around every uv_metrics_idle_time() of the watchdog, and by fork(): a child
   * must not inherit libuv's metrics lock held by a thread that is gone. */
  pthread_mutex_t sample_lock;
  _Atomic uint32_t stop;     /* futex word of the ticks: 1 = stop */
  _Atomic uint32_t parked;   /* futex word: 1 while the watchdog sleeps untimed */
  _Atomic uint64_t activity; /* bumped by the loop when it takes calls */
  /* Progress, published by the loop as a seqlock (odd while writing): bumped at every
   * loop iteration (prepare) and implementation start, with the time of the bump and
   * libuv's idle time then (NO_IDLE: the loop is running, the current idle time holds
   * until the next iteration). */
  _Atomic uint64_t seq;
  _Atomic uint64_t prog_ns;
  _Atomic uint64_t prog_idle;
  _Atomic(const synchro_op_t *) op;
  _Atomic uint64_t reported_seq; /* the progress mark whose stall was reported */
  _Atomic uint64_t stalls;
  _Atomic uint64_t max_busy_ns;
  _Atomic uint64_t last_busy_ns;
  uint64_t prep_ns; /* loop thread: time and idle time at the previous iteration */
  uint64_t prep_idle;
  uint64_t mark_seq; /* loop thread: the last progress mark, as published */
  uint64_t mark_ns;
  uint64_t mark_idle;
  const synchro_op_t *mark_op; /* the implementation running since the mark, or NULL */
};

int synchro__wd_new(synchro_t *s) {
  synchro__watch_t *w;
  if (s->opts.stall_threshold_ms <= 0)
    return 0;
  if ((w = synchro__calloc(1, sizeof(*w))) == NULL)
    return SYNCHRO_ENOMEM;
  w->s = s;
  w->threshold_ns = (uint64_t)s->opts.stall_threshold_ms * 1000000u;
  w->period_ns = w->threshold_ns / 4;
  if (w->period_ns < 1000000u)
    w->period_ns = 1000000u;
  pthread_mutex_init(&w->sample_lock, NULL);
  s->wd = w;
  return 0;
}

void synchro__wd_free(synchro_t *s) {
  if (s->wd == NULL)
    return;
  pthread_mutex_destroy(&s->wd->sample_lock);
  synchro__free(s->wd);
  s->wd = NULL;
}

static void max_update(_Atomic uint64_t *max, uint64_t v) {
  uint64_t cur = atomic_load_explicit(max, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(max, &cur, v, memory_order_relaxed,
                                                           memory_order_relaxed))
    ;
}

static uint64_t in_flight(const synchro_t *s) {
  uint64_t done = atomic_load_explicit(&s->n_completed, memory_order_relaxed) +
                  atomic_load_explicit(&s->n_failed, memory_order_relaxed) +
                  atomic_load_explicit(&s->n_cancelled, memory_order_relaxed);
  uint64_t sub = atomic_load(&s->n_submitted);
  return sub > done ? sub - done : 0;
}

static void sample(synchro__watch_t *w, uint64_t *now, uint64_t *idle) {
  synchro__lock(&w->sample_lock);
  *idle = uv_metrics_idle_time(&w->s->loop); /* documented thread-safe */
  *now = uv_hrtime();
  synchro__unlock(&w->sample_lock);
}

/* Reports the stall that began at progress mark `seq`, once: the watchdog while it
 * goes on, or the loop when it ends if the watchdog was not scheduled in time. */
static void report_stall(synchro__watch_t *w, uint64_t seq, uint64_t busy, const synchro_op_t *op) {
  synchro_diag_event_t ev;
  if (atomic_exchange(&w->reported_seq, seq) == seq)
    return; /* the other side reported it */
  atomic_fetch_add_explicit(&w->stalls, 1, memory_order_relaxed);
  max_update(&w->max_busy_ns, busy);
  memset(&ev, 0, sizeof(ev));
  ev.kind = SYNCHRO_DIAG_LOOP_STALL;
  ev.synchronizer = w->s->name;
  ev.op = op != NULL ? op->name : NULL;
  ev.thread = w->loop_thread;
  ev.duration_ns = busy;
  emit(&ev);
}

/* Sleeps until the loop takes calls (or the watchdog stops). */
static void park(synchro__watch_t *w) {
  uint64_t act = atomic_load(&w->activity);
  atomic_store(&w->parked, 1);
  if (atomic_load(&w->activity) == act && atomic_load(&w->stop) == 0 && in_flight(w->s) == 0)
    synchro__futex_wait(&w->parked, 1, UINT64_MAX);
  atomic_store(&w->parked, 0);
}

#define NO_IDLE UINT64_MAX

/* The loop side of the seqlock (one writer: the loop thread). */
static void publish_progress(synchro__watch_t *w, uint64_t now, uint64_t idle) {
  uint64_t seq = atomic_load_explicit(&w->seq, memory_order_relaxed);
  atomic_store_explicit(&w->seq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&w->prog_ns, now, memory_order_relaxed);
  atomic_store_explicit(&w->prog_idle, idle, memory_order_relaxed);
  atomic_store_explicit(&w->seq, seq + 2, memory_order_release);
  w->mark_seq = seq + 2;
  w->mark_ns = now;
  w->mark_idle = idle;
}

static void *watch_main(void *arg) {
  synchro__watch_t *w = arg;
  uint64_t last_seq = UINT64_MAX, base_idle = 0, prev_idle = 0;
  bool reported = false;
  while (atomic_load(&w->stop) == 0) {
    uint64_t now, idle, prog_ns, prog_idle, seq2;
    bool polling;
    uint64_t seq = atomic_load_explicit(&w->seq, memory_order_acquire);
    prog_ns = atomic_load_explicit(&w->prog_ns, memory_order_relaxed);
    prog_idle = atomic_load_explicit(&w->prog_idle, memory_order_relaxed);
    sample(w, &now, &idle);
    atomic_thread_fence(memory_order_acquire);
    seq2 = atomic_load_explicit(&w->seq, memory_order_relaxed);
    /* Progress during the sample (or a torn read): no stall right now. */
    if (seq == seq2 && !(seq & 1)) {
      if (seq != last_seq) { /* busy is measured from the loop's last progress */
        last_seq = seq;
        /* After an implementation start the loop has not polled since (a poll comes
         * after a prepare, which moves seq): the idle time is still the one at the
         * start. */
        base_idle = prog_idle != NO_IDLE ? prog_idle : idle;
        reported = false;
      }
      if (!reported) {
        uint64_t wall = now > prog_ns ? now - prog_ns : 0, idle_d = idle - base_idle;
        uint64_t busy = wall > idle_d ? wall - idle_d : 0;
        if (busy >= w->threshold_ns) {
          reported = true;
          report_stall(w, seq, busy, atomic_load_explicit(&w->op, memory_order_acquire));
        }
      }
    }
    polling = idle > prev_idle; /* the loop waited in its poll since the last sample */
    prev_idle = idle;
    if (polling && in_flight(w->s) == 0) {
      park(w);
      continue;
    }
    synchro__futex_wait(&w->stop, 0, synchro__now_ns() + w->period_ns);
  }
  return NULL;
}

void synchro__wd_loop_start(synchro_t *s) {
  synchro__watch_t *w = s->wd;
  char name[16];
  atomic_store(&w->stop, 0);
  atomic_store(&w->parked, 0);
  atomic_store(&w->op, NULL);
  atomic_store(&w->reported_seq, UINT64_MAX);
  w->mark_op = NULL;
  w->loop_thread = pthread_self();
  w->prep_ns = uv_hrtime();
  w->prep_idle = uv_metrics_idle_time(&s->loop);
  publish_progress(w, w->prep_ns, w->prep_idle);
  /* Signals stay blocked: the watchdog inherits the loop thread's mask. */
  w->running = pthread_create(&w->thread, NULL, watch_main, w) == 0;
  if (w->running) {
    SYNCHRO__LIVE(THREADS, 1);
    snprintf(name, sizeof(name), "wd:%s", s->name);
    pthread_setname_np(w->thread, name);
  }
}

void synchro__wd_loop_stop(synchro_t *s) {
  synchro__watch_t *w = s->wd;
  if (!w->running)
    return;
  atomic_store(&w->stop, 1);
  synchro__futex_wake(&w->stop, 1);
  atomic_store(&w->parked, 0);
  synchro__futex_wake(&w->parked, 1);
  pthread_join(w->thread, NULL);
  SYNCHRO__LIVE(THREADS, -1);
  w->running = false;
}

void synchro__wd_iteration(synchro_t *s) {
  synchro__watch_t *w = s->wd;
  uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&s->loop);
  uint64_t wall = now - w->prep_ns, idle_d = idle - w->prep_idle;
  uint64_t busy = wall > idle_d ? wall - idle_d : 0;
  /* The stretch since the last mark, in case the watchdog missed it. After an
   * implementation start (no idle time recorded) the loop has not polled since. */
  uint64_t stretch = now - w->mark_ns;
  if (w->mark_idle != NO_IDLE)
    stretch = stretch > idle - w->mark_idle ? stretch - (idle - w->mark_idle) : 0;
  if (stretch >= w->threshold_ns)
    report_stall(w, w->mark_seq, stretch, w->mark_op);
  w->prep_ns = now;
  w->prep_idle = idle;
  atomic_store_explicit(&w->last_busy_ns, busy, memory_order_relaxed);
  max_update(&w->max_busy_ns, busy);
  publish_progress(w, now, idle);
}

void synchro__wd_activity(synchro_t *s) {
  synchro__watch_t *w = s->wd;
  atomic_fetch_add(&w->activity, 1);
  if (atomic_load(&w->parked) != 0) {
    atomic_store(&w->parked, 0);
    synchro__futex_wake(&w->parked, 1);
  }
}

void synchro__wd_running(synchro_t *s, const synchro_op_t *op) {
  synchro__watch_t *w = s->wd;
  /* A new implementation starting is progress too: calls taken back to back in one
   * iteration are measured one by one (the lag metric still sees the iteration). */
  if (op != NULL) {
    publish_progress(w, uv_hrtime(), NO_IDLE);
  } else if (w->mark_op != NULL) { /* it returned: no poll since it started */
    uint64_t busy = uv_hrtime() - w->mark_ns;
    if (busy >= w->threshold_ns)
      report_stall(w, w->mark_seq, busy, w->mark_op);
  }
  w->mark_op = op;
  atomic_store_explicit(&w->op, op, memory_order_release);
}

void synchro__wd_fork_lock(synchro_t *s, bool lock) {
  if (s->wd == NULL)
    return;
  if (lock)
    synchro__lock(&s->wd->sample_lock);
  else
    synchro__unlock(&s->wd->sample_lock);
}

void synchro__wd_fork_child(synchro_t *s) {
  if (s->wd == NULL)
    return;
  /* The watchdog thread does not exist here; the next loop start makes a new one. */
  pthread_mutex_init(&s->wd->sample_lock, NULL);
  if (s->wd->running)
    SYNCHRO__LIVE(THREADS, -1); /* the parent's watchdog thread does not exist here */
  s->wd->running = false;
}

int synchro_diag_lag(const synchro_t *s, synchro_diag_lag_t *out) {
  if (s == NULL || out == NULL)
    return SYNCHRO_EINVAL;
  memset(out, 0, sizeof(*out));
  if (s->wd == NULL)
    return 0;
  out->threshold_ms = s->opts.stall_threshold_ms;
  out->stalls = atomic_load_explicit(&s->wd->stalls, memory_order_relaxed);
  out->max_busy_ns = atomic_load_explicit(&s->wd->max_busy_ns, memory_order_relaxed);
  out->last_busy_ns = atomic_load_explicit(&s->wd->last_busy_ns, memory_order_relaxed);
  return 0;
}

/* lib/synchronizer.c - creating, starting (lazily), closing and freeing a
 * synchronizer, and surviving fork(). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_LOOP_SPIN_NS 20000
#define DEFAULT_CALLER_SPIN_NS 5000

_Atomic uint64_t synchro__fork_gen;

/* Starting a loop thread is rare; one process-wide lock serialises it, and fork()
 * takes it too (lib/fork.c), so a child never inherits a half-started synchronizer. */
#define start_mutex synchro__start_mutex

void synchro_options_init(synchro_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->name = "synchro";
  opts->loop_spin_ns = DEFAULT_LOOP_SPIN_NS;
  opts->caller_spin_ns = DEFAULT_CALLER_SPIN_NS;
  opts->max_inflight = 0;
  opts->default_timeout_ms = SYNCHRO_TIMEOUT_INFINITE;
}

static bool valid_timeout(int64_t ms) { return ms >= 0 || ms == SYNCHRO_TIMEOUT_INFINITE; }

/* An environment switch: set, and neither empty nor "0". */
static bool env_flag(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

int synchro_new(synchro_t **out, const synchro_options_t *opts) {
  synchro_options_t defaults;
  synchro_t *s;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  if (opts == NULL) {
    synchro_options_init(&defaults);
    opts = &defaults;
  }
  if (opts->loop_spin_ns < 0 || opts->caller_spin_ns < 0 ||
      !valid_timeout(opts->default_timeout_ms) || opts->stall_threshold_ms < 0)
    return SYNCHRO_EINVAL;
  s = synchro__aligned_calloc(sizeof(*s));
  if (s == NULL)
    return SYNCHRO_ENOMEM;
  s->name = synchro__strdup(opts->name != NULL ? opts->name : "synchro");
  if (s->name == NULL) {
    synchro__aligned_free(s);
    return SYNCHRO_ENOMEM;
  }
  s->opts = *opts;
  s->opts.name = s->name;
  if (s->opts.default_timeout_ms == 0)
    s->opts.default_timeout_ms = SYNCHRO_TIMEOUT_INFINITE;
  if (synchro__wd_new(s) != 0) {
    synchro__free(s->name);
    synchro__aligned_free(s);
    return SYNCHRO_ENOMEM;
  }
  s->spin_loop = opts->loop_spin_ns > 0 && synchro__ncpu() > 1;
  s->spin_ns = opts->loop_spin_ns;
  s->error_context = env_flag("SYNCHRO_ERROR_CONTEXT");
  s->wake_fd = -1;
  s->loop_cpu = -1;
  pthread_mutex_init(&s->close_mutex, NULL);
  synchro__fork_register(s);
  *out = s;
  return 0;
}

static uint64_t current_gen(void) {
  return atomic_load_explicit(&synchro__fork_gen, memory_order_acquire) + 1;
}

static bool running_here(synchro_t *s) {
  return atomic_load_explicit(&s->run_gen, memory_order_acquire) == current_gen();
}

static bool inherited(synchro_t *s) {
  uint64_t gen = atomic_load_explicit(&s->run_gen, memory_order_acquire);
  return gen != SYNCHRO__NOT_STARTED && gen != current_gen();
}

/* In a fork child, once every inherited call is resolved: nothing is in flight, and
 * the books are set to say so. A fork can stop the parent's loop thread inside a
 * resolve after it counted the call and gave its admission slot back but before it
 * marked the outcome written (the child then settles that call again), and a thread
 * that was submitting has counted a call and taken a slot for a record that does not
 * exist here. Calls that ended without a count of their own ended forked: cancelled. */
static void settle_books_after_fork(synchro_t *s) {
  uint64_t submitted = atomic_load(&s->n_submitted);
  uint64_t ended = atomic_load(&s->n_completed) + atomic_load(&s->n_failed);
  atomic_store(&s->n_cancelled, submitted > ended ? submitted - ended : 0);
  atomic_store(&s->inflight, 0);
}

/* In a fork child: the loop thread does not exist here. Resolve every call the
 * parent had in flight as SYNCHRO_EFORKED, tear the inherited loop down (closing the
 * implementations' handles, whose callbacks run on this thread), and leave the
 * synchronizer ready for a fresh lazy start. */
static void recover_after_fork(synchro_t *s) {
  synchro_t *saved = synchro__tls_loop;
  if (atomic_load(&s->dead)) { /* nothing of a dead loop is touched, here neither */
    synchro__token_slot_release(s, false);
    atomic_store(&s->run_gen, SYNCHRO__NOT_STARTED);
    return;
  }
  SYNCHRO__LIVE(THREADS, -1); /* the parent's loop thread does not exist here */
  atomic_store(&s->loop_tid, 0);
  synchro__tls_loop = s; /* completions from close callbacks are legitimate here */
  s->shutting_down = false;
  synchro__loop_resolve_active(s, SYNCHRO_EFORKED);
  /* The epoll instance and eventfd are shared with the parent: give the child its own
   * before closing anything, or the parent's watchers would be removed. If that
   * fails the inherited loop is abandoned untouched. */
  if (uv_loop_fork(&s->loop) == 0)
    synchro__loop_dispose(s);
  synchro__loop_drop_all(s, SYNCHRO_EFORKED);
  s->orphans = synchro__objects_orphan(s, SYNCHRO_EFORKED); /* reap_orphans, unlocked */
  settle_books_after_fork(s);
  synchro__token_slot_release(s, false); /* tokens must not signal the closed fd */
  synchro__fd_close(s->wake_fd);
  s->wake_fd = -1;
  atomic_store(&s->run_gen, SYNCHRO__NOT_STARTED);
  synchro__tls_loop = saved;
}

static void start_thread_signals_blocked(synchro_t *s, int *rc) {
  sigset_t all, old;
  pthread_attr_t attr;
  sigfillset(&all);
  /* The loop thread must never run the program's signal handlers. */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_init(&attr);
  *rc = SYNCHRO__FAULT(THREAD_CREATE) ? EAGAIN
                                      : pthread_create(&s->thread, &attr, synchro__loop_main, s);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static int start_locked(synchro_t *s) {
  int rc;
  if (inherited(s))
    recover_after_fork(s);
  if (running_here(s))
    return 0;
  if (atomic_load(&s->submit_head) & SYNCHRO__STACK_CLOSED)
    return atomic_load(&s->dead) ? SYNCHRO_ELOOPDIED : SYNCHRO_ESHUTDOWN;
  atomic_store(&s->cancel_head, 0);
  /* A fork child inherits whatever the parent's loop was doing: it is not awake. */
  atomic_store(&s->awake, 0);
  if ((rc = synchro__loop_init(s)) != 0)
    return SYNCHRO_ESTART;
  synchro__token_slot_update(s); /* a fork child's new wake fd */
  start_thread_signals_blocked(s, &rc);
  if (rc != 0) {
    synchro__loop_dispose(s);
    synchro__fd_close(s->wake_fd);
    s->wake_fd = -1;
    return SYNCHRO_ESTART;
  }
  if (s->name[0] != '\0') {
    char short_name[16];
    snprintf(short_name, sizeof(short_name), "%s", s->name);
    pthread_setname_np(s->thread, short_name);
  }
  atomic_store_explicit(&s->run_gen, current_gen(), memory_order_release);
  return 0;
}

/* Runs the destructors of objects a fork recovery cut loose, now that no lock is held.
 * Under start_mutex, so that two threads never reap the same list. */
static void reap_orphans(synchro_t *s) {
  synchro_object_t *list;
  synchro__lock(&start_mutex);
  list = s->orphans;
  s->orphans = NULL;
  synchro__unlock(&start_mutex);
  synchro__objects_reap(list);
}

void synchro__check_fork_slow(synchro_t *s) {
  synchro__lock(&start_mutex);
  if (inherited(s))
    recover_after_fork(s); /* resolves the parent's calls as SYNCHRO_EFORKED */
  synchro__unlock(&start_mutex);
  reap_orphans(s);
}

int synchro__ensure_running_slow(synchro_t *s) {
  int rc;
  synchro__lock(&start_mutex);
  rc = start_locked(s);
  synchro__unlock(&start_mutex);
  reap_orphans(s);
  return rc;
}

bool synchro__is_running(synchro_t *s) { return running_here(s); }

void synchro__wake_loop(synchro_t *s) { synchro__eventfd_signal(s->wake_fd); }

int synchro_close(synchro_t *s, int64_t grace_ms) {
  int rc = 0;
  if (s == NULL || !valid_timeout(grace_ms))
    return SYNCHRO_EINVAL;
  if (synchro__on_loop(s))
    return SYNCHRO_EDEADLK;
  synchro__lock(&s->close_mutex);
  if (s->closed) {
    rc = SYNCHRO_EALREADY;
    goto out;
  }
  synchro__lock(&start_mutex); /* no lazy start may race with the close */
  if (inherited(s))
    recover_after_fork(s);
  s->grace_ms = grace_ms;
  /* From here every push fails with SYNCHRO_ESHUTDOWN; release publishes grace_ms. */
  atomic_fetch_or_explicit(&s->submit_head, SYNCHRO__STACK_CLOSED, memory_order_acq_rel);
  synchro__unlock(&start_mutex);
  if (running_here(s)) {
    synchro__wake_loop(s);
    pthread_join(s->thread, NULL);
    atomic_store(&s->run_gen, SYNCHRO__NOT_STARTED);
  }
  s->closed = true;
out:
  synchro__unlock(&s->close_mutex);
  reap_orphans(s);
  return rc;
}

/* Synchronizers whose loop thread died: kept, with their loop's memory, for the life
 * of the process (docs/context.md): the loop's handles are in an unknown state, so
 * neither libuv nor the implementations' memory may be released. */
static pthread_mutex_t graveyard_mutex = PTHREAD_MUTEX_INITIALIZER;
static synchro_t *graveyard;

void synchro_free(synchro_t *s) {
  bool dead;
  if (s == NULL || synchro__on_loop(s))
    return;
  synchro__exit_forget(s);
  synchro_close(s, 0);
  synchro__token_slot_release(s, true);
  dead = atomic_load(&s->dead) != 0;
  if (dead && uv_backend_fd(&s->loop) >= 0)
    close(uv_backend_fd(&s->loop)); /* its fds go; its memory stays */
  synchro__fd_close(s->wake_fd);
  s->wake_fd = -1;
  synchro__fork_unregister(s);
  pthread_mutex_destroy(&s->close_mutex);
  synchro__wd_free(s);
  if (dead) {
    synchro__lock(&graveyard_mutex);
    s->reg_next = graveyard; /* the fork registry no longer links it */
    graveyard = s;
    synchro__unlock(&graveyard_mutex);
    return;
  }
  synchro__free(s->name);
  synchro__aligned_free(s);
}

int synchro_is_loop_thread(const synchro_t *s) { return s != NULL && synchro__on_loop(s); }

int synchro_loop(synchro_t *s, uv_loop_t **out) {
  if (s == NULL || out == NULL)
    return SYNCHRO_EINVAL;
  if (!synchro__on_loop(s))
    return SYNCHRO_EPERM;
  *out = &s->loop;
  return 0;
}

const char *synchro_name(const synchro_t *s) { return s != NULL ? s->name : NULL; }

int synchro_stats(const synchro_t *s, synchro_stats_t *out) {
  uint64_t done;
  if (s == NULL || out == NULL)
    return SYNCHRO_EINVAL;
  out->completed = atomic_load_explicit(&s->n_completed, memory_order_relaxed);
  out->failed = atomic_load_explicit(&s->n_failed, memory_order_relaxed);
  out->cancelled = atomic_load_explicit(&s->n_cancelled, memory_order_relaxed);
  out->wakeups = atomic_load_explicit(&s->n_wakeups, memory_order_relaxed);
  /* Read submitted last: it is bumped before a call can resolve, so in_flight never
   * goes negative. */
  out->submitted = atomic_load_explicit(&s->n_submitted, memory_order_acquire);
  done = out->completed + out->failed + out->cancelled;
  out->in_flight = out->submitted > done ? out->submitted - done : 0;
  return 0;
}

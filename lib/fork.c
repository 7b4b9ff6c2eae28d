/* lib/fork.c - making fork() safe: the child never inherits a lock held by a thread
 * that does not exist there, nor a call half-way between two lists.
 *
 * Every synchronizer is in a registry. Before fork() the forking thread takes the
 * registry, every synchronizer's fork_lock (held by its loop thread while it moves
 * calls from the queue to the active list) and the start lock, so the child sees each
 * call either queued or active. A loop thread that needs the registry while holding
 * its fork_lock (an implementation creating a synchronizer) would deadlock against a
 * forking thread that holds the registry: the forker therefore only try-locks the
 * fork_locks, and backs off completely when one is busy. */
#include <sched.h>

#include "internal.h"

pthread_mutex_t synchro__start_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static synchro_t *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Synchronizers whose fork_lock the forking thread does not take: its own loop's (it
 * may hold it already, and no other thread moves that loop's calls meanwhile). */
static bool skipped(const synchro_t *s) { return synchro__on_loop(s); }

static void unlock_until(synchro_t *stop) {
  synchro_t *s;
  for (s = registry; s != stop; s = s->reg_next)
    if (!skipped(s))
      synchro__unlock(&s->fork_lock);
}

static void before_fork(void) {
  for (;;) {
    synchro_t *s;
    synchro__lock(&registry_mutex);
    for (s = registry; s != NULL; s = s->reg_next)
      if (!skipped(s) && synchro__trylock(&s->fork_lock) != 0)
        break;
    if (s == NULL)
      break;
    unlock_until(s);
    synchro__unlock(&registry_mutex);
    sched_yield(); /* that loop is moving calls: a few microseconds */
  }
  for (synchro_t *s = registry; s != NULL; s = s->reg_next)
    synchro__wd_fork_lock(s, true); /* no watchdog is inside libuv's metrics lock */
  synchro__lock(&synchro__start_mutex);
}

static void after_fork_parent(void) {
  synchro_t *s;
  synchro__unlock(&synchro__start_mutex);
  for (s = registry; s != NULL; s = s->reg_next)
    synchro__wd_fork_lock(s, false);
  unlock_until(NULL);
  synchro__unlock(&registry_mutex);
}

static void after_fork_child(void) {
  synchro_t *s;
  pthread_mutex_init(&synchro__start_mutex, NULL);
  for (s = registry; s != NULL; s = s->reg_next) {
    pthread_mutex_init(&s->fork_lock, NULL);
    synchro__wd_fork_child(s);
    atomic_store(&s->waits_on, NULL); /* no loop thread blocks on anything here */
  }
  pthread_mutex_init(&registry_mutex, NULL);
  synchro__diag_fork_child();
  atomic_fetch_add(&synchro__fork_gen, 1);
#ifdef SYNCHRO_TEST_SEAMS
  synchro__locks_held = 0; /* the locks taken before fork() were re-made, not released */
#endif
  synchro__tls_loop = NULL; /* no loop thread exists in the child */
}

static void install(void) { pthread_atfork(before_fork, after_fork_parent, after_fork_child); }

void synchro__fork_register(synchro_t *s) {
  pthread_once(&atfork_once, install);
  pthread_mutex_init(&s->fork_lock, NULL);
  synchro__lock(&registry_mutex);
  s->reg_prev = NULL;
  s->reg_next = registry;
  if (registry != NULL)
    registry->reg_prev = s;
  registry = s;
  synchro__unlock(&registry_mutex);
}

void synchro__fork_unregister(synchro_t *s) {
  synchro__lock(&registry_mutex);
  if (s->reg_prev != NULL)
    s->reg_prev->reg_next = s->reg_next;
  else
    registry = s->reg_next;
  if (s->reg_next != NULL)
    s->reg_next->reg_prev = s->reg_prev;
  synchro__unlock(&registry_mutex);
  pthread_mutex_destroy(&s->fork_lock);
}

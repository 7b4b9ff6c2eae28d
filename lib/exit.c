/* lib/exit.c - closing chosen synchronizers when the process exits.
 *
 * By default a synchronizer left open at exit() is detached: its loop thread dies with
 * the process and the cleanup of calls still in flight never runs. A synchronizer
 * registered with synchro_close_at_exit() is instead closed by an atexit handler,
 * which cancels its calls, waits for their cleanup within the close bound and joins
 * the loop thread. The handler holds the list's lock while it closes, so a
 * synchro_free() racing with exit waits until that synchronizer is closed. */
#include <stdlib.h>

#include "internal.h"

typedef struct exit_entry_s {
  synchro_t *s;
  int64_t grace_ms;
  struct exit_entry_s *next;
} exit_entry_t;

static pthread_mutex_t exit_mutex = PTHREAD_MUTEX_INITIALIZER;
static exit_entry_t *exit_list;
static bool handler_installed;

static void close_all_at_exit(void) {
  exit_entry_t *e;
  synchro__lock(&exit_mutex);
  while ((e = exit_list) != NULL) {
    exit_list = e->next;
    synchro_close(e->s, e->grace_ms); /* EDEADLK if exit() runs on that loop: skipped */
    synchro__free(e);
  }
  synchro__unlock(&exit_mutex);
}

static exit_entry_t **find(const synchro_t *s) {
  exit_entry_t **link;
  for (link = &exit_list; *link != NULL; link = &(*link)->next)
    if ((*link)->s == s)
      return link;
  return NULL;
}

int synchro_close_at_exit(synchro_t *s, int64_t grace_ms) {
  exit_entry_t **found, *e;
  int rc = 0;
  if (s == NULL || (grace_ms < 0 && grace_ms != SYNCHRO_TIMEOUT_INFINITE))
    return SYNCHRO_EINVAL;
  if (synchro__tls_loop != NULL)
    return SYNCHRO_EDEADLK; /* the exit handler may be joining this very thread */
  synchro__lock(&exit_mutex);
  if ((found = find(s)) != NULL) {
    (*found)->grace_ms = grace_ms;
  } else if (!handler_installed && atexit(close_all_at_exit) != 0) {
    rc = SYNCHRO_ENOMEM;
  } else if ((e = synchro__malloc(sizeof(*e))) == NULL) {
    handler_installed = true;
    rc = SYNCHRO_ENOMEM;
  } else {
    handler_installed = true;
    e->s = s;
    e->grace_ms = grace_ms;
    e->next = exit_list;
    exit_list = e;
  }
  synchro__unlock(&exit_mutex);
  return rc;
}

void synchro__exit_forget(synchro_t *s) {
  exit_entry_t **found, *e;
  synchro__lock(&exit_mutex);
  if ((found = find(s)) != NULL) {
    e = *found;
    *found = e->next;
    synchro__free(e);
  }
  synchro__unlock(&exit_mutex);
}

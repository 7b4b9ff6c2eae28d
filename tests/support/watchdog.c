/* tests/support/watchdog.c - see watchdog.h. */
#define _GNU_SOURCE
#include "watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testops.h"

#define MAX_WATCHED 16
#define DUMP_WAIT_MS 300

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static synchro_t *watched[MAX_WATCHED];
static pthread_t thread;
static bool armed, stop;
static struct timespec fire_at;

/* Check's fixtures take no argument and Check does not say which tcase runs, so each
 * watchdog'd tcase gets its own setup function: slot i arms with timeouts[i]. */
#define MAX_TCASES 16
static double timeouts[MAX_TCASES];
static const char *names[MAX_TCASES];
static int ntcases;
static const char *armed_for; /* the tcase the watchdog is armed for (set before arming) */

int watchdog_dump_all(FILE *stream) {
  int i, n = 0;
  pthread_mutex_lock(&lock);
  for (i = 0; i < MAX_WATCHED; i++) {
    char *json = NULL;
    if (watched[i] == NULL)
      continue;
    if (synchro_dump(watched[i], DUMP_WAIT_MS, &json) != 0)
      continue;
    fprintf(stream, "%s\n%s\n%s\n", WATCHDOG_BEGIN, json, WATCHDOG_END);
    fflush(stream);
    synchro_mem_free(json);
    n++;
  }
  pthread_mutex_unlock(&lock);
  return n;
}

static void *watchdog_main(void *arg) {
  bool fire = false;
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!stop) {
    if (pthread_cond_timedwait(&cond, &lock, &fire_at) == ETIMEDOUT) {
      fire = !stop;
      break;
    }
  }
  pthread_mutex_unlock(&lock);
  if (fire) {
    const char *test = tcase_name(); /* Check gives the running test's name here */
    fprintf(stderr, "watchdog: %s%s%s is about to time out; dumping its synchronizers\n",
            armed_for != NULL ? armed_for : "test", test != NULL ? " / " : "",
            test != NULL ? test : "");
    watchdog_dump_all(stderr);
  }
  return NULL;
}

void watchdog_disarm(void) {
  bool was;
  pthread_mutex_lock(&lock);
  was = armed;
  stop = true;
  armed = false;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  if (was)
    pthread_join(thread, NULL);
  pthread_mutex_lock(&lock);
  memset(watched, 0, sizeof(watched));
  pthread_mutex_unlock(&lock);
}

void watchdog_arm(double fire_after_s) {
  struct timespec now;
  long long ns;
  watchdog_disarm();
  clock_gettime(CLOCK_REALTIME, &now); /* the condvar's default clock */
  ns = (long long)now.tv_nsec + (long long)(fire_after_s * 1e9);
  pthread_mutex_lock(&lock);
  fire_at.tv_sec = now.tv_sec + (time_t)(ns / 1000000000LL);
  fire_at.tv_nsec = (long)(ns % 1000000000LL);
  stop = false;
  armed = pthread_create(&thread, NULL, watchdog_main, NULL) == 0;
  pthread_mutex_unlock(&lock);
}

static void arm_slot(int slot) {
  double timeout = timeouts[slot] * test_time_multiplier(), margin;
  margin = timeout / 4 < 1.0 ? timeout / 4 : 1.0;
  watchdog_disarm();
  armed_for = names[slot];
  watchdog_arm(timeout - margin);
}

#define SLOT(i)                                                                                    \
  static void setup_##i(void) { arm_slot(i); }
SLOT(0)
SLOT(1)
SLOT(2)
SLOT(3)
SLOT(4)
SLOT(5)
SLOT(6)
SLOT(7)
SLOT(8)
SLOT(9)
SLOT(10)
SLOT(11)
SLOT(12)
SLOT(13)
SLOT(14)
SLOT(15)
static void (*const setups[MAX_TCASES])(void) = {
    setup_0, setup_1, setup_2,  setup_3,  setup_4,  setup_5,  setup_6,  setup_7,
    setup_8, setup_9, setup_10, setup_11, setup_12, setup_13, setup_14, setup_15};

static void fixture_teardown(void) { watchdog_disarm(); }

void watchdog_tcase(TCase *tc, const char *name, double timeout_s) {
  tcase_set_timeout(tc, timeout_s);
  if (ntcases == MAX_TCASES) {
    fprintf(stderr, "watchdog: more than %d tcases; %s has no watchdog\n", MAX_TCASES, name);
    return;
  }
  timeouts[ntcases] = timeout_s;
  names[ntcases] = name;
  tcase_add_checked_fixture(tc, setups[ntcases], fixture_teardown);
  ntcases++;
}

void watchdog_watch(synchro_t *s) {
  int i;
  pthread_mutex_lock(&lock);
  for (i = 0; i < MAX_WATCHED; i++)
    if (watched[i] == NULL) {
      watched[i] = s;
      break;
    }
  pthread_mutex_unlock(&lock);
}

void watchdog_unwatch(synchro_t *s) {
  int i;
  pthread_mutex_lock(&lock);
  for (i = 0; i < MAX_WATCHED; i++)
    if (watched[i] == s)
      watched[i] = NULL;
  pthread_mutex_unlock(&lock);
}

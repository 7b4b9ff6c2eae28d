/* tests/support/watchdog.h - a harness watchdog: shortly before a tcase's Check
 * timeout it dumps every synchronizer the running test registered (synchro_dump) to
 * stderr, so that a hung test leaves a picture of what was pending instead of dying
 * silently. Fork mode only matters for where the dump lands: the watchdog runs in the
 * process that runs the test. */
#ifndef SYNCHRO_TEST_WATCHDOG_H
#define SYNCHRO_TEST_WATCHDOG_H

#include <check.h>

#include "synchro.h"

/* The markers around each dump on stderr; the JSON is between them. */
#define WATCHDOG_BEGIN "=== synchro watchdog dump ==="
#define WATCHDOG_END "=== end of synchro watchdog dump ==="

/* Sets the tcase's timeout (as tcase_set_timeout) and arms the watchdog for each of
 * its tests: a checked fixture starts a thread that fires min(1 s, a quarter of the
 * timeout) before it (CK_TIMEOUT_MULTIPLIER is honoured). `name` must be the name
 * the tcase was created with. Call from main, before running the suite. */
void watchdog_tcase(TCase *tc, const char *name, double timeout_s);

/* Arms the watchdog by hand (a test not set up with watchdog_tcase): it fires after
 * `fire_after_s`. Replaces an armed watchdog. */
void watchdog_arm(double fire_after_s);
/* Disarms it and forgets every registered synchronizer. */
void watchdog_disarm(void);

/* Registers `s` to be dumped (up to 16 at once), or forgets it. Unwatch before
 * synchro_free(): unwatch waits for a dump in progress to finish. */
void watchdog_watch(synchro_t *s);
void watchdog_unwatch(synchro_t *s);

/* Dumps every registered synchronizer to `stream` now, between the markers. Returns
 * how many were dumped. */
int watchdog_dump_all(FILE *stream);

#endif

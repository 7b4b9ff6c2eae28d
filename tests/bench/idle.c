/* tests/bench/idle.c - an idle synchronizer: CPU used and loop wakeups over 2 s after
 * its spin window, with the loop thread started and nothing to do. */
#include <stdio.h>
#include <time.h>

#include "bench.h"

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

void run_idle(void) {
  figure_t *fc = fig_new("idle_cpu", "idle synchronizer CPU (2 s)", "% of a core", NULL);
  figure_t *fw = fig_new("idle_wakeups", "idle synchronizer loop wakeups (2 s)", "wakeups", NULL);
  const long window_ms = 2000;
  bench_add_args_t args = {1, 2};
  synchro_stats_t st0, st1;
  synchro_t *s;
  int64_t sum;
  uint64_t cpu0, cpu1, t0, t1;
  fig_target(fc, TARGET_ABS_LT, 0.1, "< 0.1 %");
  fig_target(fw, TARGET_ABS_LE, 0, "0 (no periodic wakeups)");
  CHECK(synchro_new(&s, NULL));
  CHECK(synchro_call(s, &bench_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, &sum, NULL));
  sleep_ms(100); /* well past the 20 us spin window */
  CHECK(synchro_stats(s, &st0));
  cpu0 = cpu_time_ns();
  t0 = now_ns();
  sleep_ms(window_ms);
  cpu1 = cpu_time_ns();
  t1 = now_ns();
  CHECK(synchro_stats(s, &st1));
  fig_add(fc, (double)(cpu1 - cpu0) * 100.0 / (double)(t1 - t0));
  fig_add(fw, (double)(st1.wakeups - st0.wakeups));
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
}

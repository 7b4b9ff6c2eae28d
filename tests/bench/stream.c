/* tests/bench/stream.c - items per second through a stream's bounded buffer: a counting
 * producer on the loop (pausing on SYNCHRO_EBUSY, resumed by its demand hook) consumed
 * with synchro_stream_next on the caller's thread. */
#include <stdio.h>

#include "bench.h"

void run_stream_items(void) {
  figure_t *f = fig_new("stream_items", "stream items through the buffer", "items/s", NULL);
  int64_t n = pick(2000000, 300000);
  synchro_t *s;
  int r;
  fig_target(f, TARGET_ABS_GE, 10e6, ">= 10 M/s");
  CHECK(synchro_new(&s, NULL));
  for (r = -1; r < bench_cfg.rounds; r++) {
    bench_count_args_t args = {n};
    synchro_stream_t *st;
    int64_t item, expect = 0;
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    int rc;
    CHECK(synchro_stream_open(s, &bench_op_count, &args, SYNCHRO_TIMEOUT_INFINITE, &st));
    while ((rc = synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE)) == 0) {
      if (item != expect)
        die("stream: out of order", -1);
      expect++;
    }
    if (rc != SYNCHRO_EEND || expect != n)
      die("stream: end", rc);
    synchro_stream_free(st);
    if (r >= 0) {
      fig_add(f, (double)n * 1e9 / (double)(now_ns() - t0));
      fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)n);
    }
  }
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
}

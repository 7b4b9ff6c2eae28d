/* tests/bench/host.c - 1000 _aio calls completing on a host libuv loop: submit with
 * synchro_submit_then (what the generated _aio functions do), or synchro_submit then
 * synchro_future_then, and run the host loop until every callback ran. */
#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#include "bench.h"

#define BATCH 1000

typedef struct {
  long done;
  int64_t sum;
} tally_t;

static void on_done(synchro_future_t *f, int status, void *data) {
  tally_t *t = data;
  int64_t v = 0;
  if (status != 0 || synchro_future_result(f, &v) != 0)
    die("host: callback status", status);
  t->sum += v;
  t->done++;
}

static void host_batches(figure_t *f, bool fused) {
  long batches = pick(300, 60), b;
  uv_loop_t loop;
  synchro_host_t *h;
  synchro_t *s;
  int r, i;
  if (bench_cfg.ncpu < 2)
    return;
  CHECK(uv_loop_init(&loop));
  CHECK(synchro_new(&s, NULL));
  /* the floor's placement (floor.c): the host thread on CPU 0, the loop on CPU 1 */
  if (pin_loop(s, 1) != 0)
    die("pin the loop thread", -1);
  pin_self(0);
  CHECK(synchro_host_new_uv(&h, &loop));
  for (r = -1; r < bench_cfg.rounds; r++) {
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    for (b = 0; b < batches; b++) {
      tally_t t = {0, 0};
      for (i = 0; i < BATCH; i++) {
        bench_add_args_t args = {i, 1};
        synchro_future_t *fut;
        if (fused) {
          CHECK(synchro_submit_then(s, &bench_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, h, on_done,
                                    &t));
        } else {
          CHECK(synchro_submit(s, &bench_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, &fut));
          CHECK(synchro_future_then(fut, h, on_done, &t));
        }
      }
      while (t.done < BATCH)
        uv_run(&loop, UV_RUN_ONCE);
      if (t.sum != (int64_t)BATCH * (BATCH - 1) / 2 + BATCH)
        die("host: wrong sum", -1);
    }
    if (r >= 0) {
      fig_add(f, (double)batches * BATCH * 1e9 / (double)(now_ns() - t0));
      fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)(batches * BATCH));
    }
  }
  synchro_host_free(h);
  uv_run(&loop, UV_RUN_DEFAULT); /* lets libuv finish closing the host's handle */
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
  CHECK(uv_loop_close(&loop));
  pin_self(-1);
}

void run_host_aio(void) {
  figure_t *f =
      fig_new("host_aio", "1000 _aio calls, host uv loop, cross core", "calls/s", "floor_batch");
  fig_target(f, TARGET_RATIO_GE, 0.5, ">= 0.5x floor batch");
  host_batches(f, true);
}

void run_host_then(void) {
  figure_t *f = fig_new("host_then", "  the same, submit + future_then", "calls/s", "floor_batch");
  host_batches(f, false);
}

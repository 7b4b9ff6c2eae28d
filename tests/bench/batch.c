/* tests/bench/batch.c - batches of 1000 futures: submit them all, then wait for all
 * (synchro_future_wait_all), or take them back through a completion queue. */
#include <stdio.h>

#include "bench.h"

#define BATCH 1000

/* A started synchronizer whose loop runs on `loop_cpu`, the caller on `caller_cpu`:
 * the placement of the floor each figure is compared with (floor.c). */
static synchro_t *start_sync(int caller_cpu, int loop_cpu) {
  synchro_t *s;
  CHECK(synchro_new(&s, NULL));   /* unpinned: the library reads the CPU count here */
  if (pin_loop(s, loop_cpu) != 0) /* starts the loop thread, then pins it */
    die("pin the loop thread", -1);
  pin_self(caller_cpu);
  return s;
}

static void stop_sync(synchro_t *s) {
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
  pin_self(-1);
}

static void submit_batch(synchro_t *s, synchro_future_t **fs) {
  int i;
  for (i = 0; i < BATCH; i++) {
    bench_add_args_t args = {i, 1};
    CHECK(synchro_submit(s, &bench_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, &fs[i]));
  }
}

static int64_t collect(synchro_future_t *f) {
  int64_t v = 0;
  CHECK(synchro_future_result(f, &v));
  synchro_future_free(f);
  return v;
}

static void batch_futures(figure_t *f, const char *wakeups_name, int loop_cpu) {
  long batches = pick(300, 60), b;
  static synchro_future_t *fs[BATCH];
  figure_t *fw = fig_new(wakeups_name, "  loop wakeups per batch of 1000", "wakeups", NULL);
  synchro_t *s = start_sync(0, loop_cpu);
  synchro_stats_t st0, st1;
  int r, i;
  for (r = -1; r < bench_cfg.rounds; r++) {
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    CHECK(synchro_stats(s, &st0));
    for (b = 0; b < batches; b++) {
      int64_t sum = 0;
      submit_batch(s, fs);
      CHECK(synchro_future_wait_all(fs, BATCH, SYNCHRO_TIMEOUT_INFINITE));
      for (i = 0; i < BATCH; i++)
        sum += collect(fs[i]);
      if (sum != (int64_t)BATCH * (BATCH - 1) / 2 + BATCH)
        die("batch: wrong sum", -1);
    }
    if (r >= 0) {
      fig_add(f, (double)batches * BATCH * 1e9 / (double)(now_ns() - t0));
      fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)(batches * BATCH));
      CHECK(synchro_stats(s, &st1));
      fig_add(fw, (double)(st1.wakeups - st0.wakeups) / (double)batches);
    }
  }
  stop_sync(s);
}

void run_batch_futures(void) {
  figure_t *f = fig_new("batch_futures", "batch of 1000 futures, wait_all, cross core", "calls/s",
                        "floor_batch");
  fig_target(f, TARGET_RATIO_GE, 0.9, ">= 0.9x floor batch");
  if (bench_cfg.ncpu > 1)
    batch_futures(f, "batch_futures_wakeups", 1);
}

void run_batch_same(void) {
  figure_t *f = fig_new("batch_same", "batch of 1000 futures, wait_all, one CPU", "calls/s",
                        "floor_batch_same");
  batch_futures(f, "batch_same_wakeups", 0);
}

/* The same batch through synchro_submit_many: one queue operation, one wakeup. */
void run_batch_many(void) {
  figure_t *f =
      fig_new("batch_many", "batch of 1000, submit_many, cross core", "calls/s", "floor_batch");
  long batches = pick(300, 60), b;
  static synchro_future_t *fs[BATCH];
  static bench_add_args_t args[BATCH];
  synchro_t *s;
  int r, i;
  for (i = 0; i < BATCH; i++) {
    args[i].a = i;
    args[i].b = 1;
  }
  fig_target(f, TARGET_RATIO_GE, 0.9, ">= 0.9x floor batch");
  if (bench_cfg.ncpu < 2)
    return;
  s = start_sync(0, 1);
  for (r = -1; r < bench_cfg.rounds; r++) {
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    for (b = 0; b < batches; b++) {
      int64_t sum = 0;
      CHECK(synchro_submit_many(s, &bench_op_add, args, sizeof(args[0]), BATCH,
                                SYNCHRO_TIMEOUT_INFINITE, fs));
      CHECK(synchro_future_wait_all(fs, BATCH, SYNCHRO_TIMEOUT_INFINITE));
      for (i = 0; i < BATCH; i++)
        sum += collect(fs[i]);
      if (sum != (int64_t)BATCH * (BATCH - 1) / 2 + BATCH)
        die("batch: wrong sum", -1);
    }
    if (r >= 0) {
      fig_add(f, (double)batches * BATCH * 1e9 / (double)(now_ns() - t0));
      fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)(batches * BATCH));
    }
  }
  stop_sync(s);
}

void run_batch_cq(void) {
  figure_t *f =
      fig_new("batch_cq", "batch of 1000 futures, cq, cross core", "calls/s", "floor_batch");
  long batches = pick(300, 60), b;
  static synchro_future_t *fs[BATCH];
  synchro_t *s;
  synchro_cq_t *cq;
  int r, i;
  if (bench_cfg.ncpu < 2)
    return;
  s = start_sync(0, 1);
  CHECK(synchro_cq_new(&cq));
  for (r = -1; r < bench_cfg.rounds; r++) {
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    for (b = 0; b < batches; b++) {
      int64_t sum = 0;
      submit_batch(s, fs);
      for (i = 0; i < BATCH; i++)
        CHECK(synchro_cq_add(cq, fs[i]));
      for (i = 0; i < BATCH; i++) {
        synchro_future_t *done;
        CHECK(synchro_cq_next(cq, SYNCHRO_TIMEOUT_INFINITE, &done));
        sum += collect(done);
      }
      if (sum != (int64_t)BATCH * (BATCH - 1) / 2 + BATCH)
        die("batch cq: wrong sum", -1);
    }
    if (r >= 0) {
      fig_add(f, (double)batches * BATCH * 1e9 / (double)(now_ns() - t0));
      fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)(batches * BATCH));
    }
  }
  synchro_cq_free(cq);
  stop_sync(s);
}

/* tests/bench/calls.c - blocking calls: latency of one caller (same core and cross
 * core, default options and with spinning off) and throughput of 2 and 4 callers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "bench.h"

static synchro_t *make_sync(bool spin) {
  synchro_options_t opts;
  synchro_t *s;
  synchro_options_init(&opts);
  opts.name = spin ? "bench" : "bench-nospin";
  if (!spin) {
    opts.caller_spin_ns = 0;
    opts.loop_spin_ns = 0;
  }
  CHECK(synchro_new(&s, &opts)); /* unpinned: the library reads the CPU count here */
  return s;
}

static void close_sync(synchro_t *s) {
  CHECK(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE));
  synchro_free(s);
}

static int64_t add(synchro_t *s, int64_t a) {
  bench_add_args_t args = {a, 1};
  int64_t sum = 0;
  CHECK(synchro_call(s, &bench_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, &sum, NULL));
  return sum;
}

static figure_t *blocking(const char *name, const char *label, int loop_cpu, bool spin,
                          const char *floor) {
  figure_t *f = fig_new(name, label, "ns/call", floor);
  long calls = bench_cfg.calls > 0 ? bench_cfg.calls : pick(20000, 3000);
  synchro_t *s;
  int r;
  long i;
  if (loop_cpu >= bench_cfg.ncpu)
    return f;
  s = make_sync(spin);
  if (pin_loop(s, loop_cpu) != 0) /* starts the loop thread, then pins it */
    die("pin the loop thread", -1);
  pin_self(0);
  for (i = 0; i < 1000; i++) /* warm-up: pools, caches, the loop's CPU */
    add(s, i);
  for (r = 0; r < bench_cfg.rounds; r++) {
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    int64_t sum = 0;
    for (i = 0; i < calls; i++)
      sum += add(s, i);
    fig_add(f, (double)(now_ns() - t0) / (double)calls);
    fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)calls);
    if (sum != calls * (calls - 1) / 2 + calls)
      die("blocking: wrong sum", -1);
  }
  pin_self(-1);
  close_sync(s);
  return f;
}

void run_blocking_same(void) {
  figure_t *f = blocking("blocking_same", "blocking, same core, default (spin on)", 0, true,
                         "floor_latency_same");
  fig_target(f, TARGET_RATIO_LE, 1.5, "<= 1.5x floor");
}

void run_blocking_same_nospin(void) {
  figure_t *f = blocking("blocking_same_nospin", "blocking, same core, spin off", 0, false,
                         "floor_latency_same");
  fig_target(f, TARGET_RATIO_LE, 1.2, "<= 1.2x floor");
}

void run_blocking_cross(void) {
  figure_t *f = blocking("blocking_cross", "blocking, cross core, default (spin on)", 1, true,
                         "floor_latency_cross");
  fig_target(f, TARGET_ABS_LE, 1000.0, "<= 1000 ns");
}

void run_blocking_cross_nospin(void) {
  blocking("blocking_cross_nospin", "blocking, cross core, spin off", 1, false,
           "floor_latency_cross");
}

/* ---- several caller threads, unpinned ---- */

typedef struct {
  synchro_t *s;
  long calls;
  pthread_barrier_t *start;
} caller_arg_t;

static void *caller_main(void *p) {
  caller_arg_t *a = p;
  long i;
  pthread_barrier_wait(a->start);
  for (i = 0; i < a->calls; i++)
    add(a->s, i);
  return NULL;
}

static void callers(const char *name, const char *label, int nthreads) {
  figure_t *f = fig_new(name, label, "calls/s", NULL);
  long calls = bench_cfg.calls > 0 ? bench_cfg.calls : pick(20000, 2000);
  synchro_t *s = make_sync(true);
  pthread_barrier_t start;
  pthread_t th[8];
  caller_arg_t arg;
  int r, i;
  add(s, 0); /* start the loop thread */
  arg.s = s;
  arg.calls = calls;
  arg.start = &start;
  for (r = -1; r < bench_cfg.rounds; r++) { /* round -1 warms up */
    long csw0;
    uint64_t t0;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
    for (i = 0; i < nthreads; i++)
      if (pthread_create(&th[i], NULL, caller_main, &arg) != 0)
        die("pthread_create", -1);
    csw0 = ctx_switches();
    t0 = now_ns();
    pthread_barrier_wait(&start);
    for (i = 0; i < nthreads; i++)
      pthread_join(th[i], NULL);
    if (r >= 0) {
      fig_add(f, (double)calls * nthreads * 1e9 / (double)(now_ns() - t0));
      fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)(calls * nthreads));
    }
    pthread_barrier_destroy(&start);
  }
  close_sync(s);
}

void run_callers_2(void) { callers("callers_2", "2 caller threads, blocking", 2); }
void run_callers_4(void) { callers("callers_4", "4 caller threads, blocking", 4); }

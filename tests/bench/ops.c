/* tests/bench/ops.c - the implementations the figures call, each run on the loop. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "bench.h"

/* ---- add: the no-op call every peer was measured with (x + y) ---- */
static void add_impl(synchro_call_t *call) {
  const bench_add_args_t *a = synchro_call_args(call);
  int64_t sum = a->a + a->b;
  synchro_call_return(call, &sum);
}
const synchro_op_t bench_op_add = {.name = "add",
                                   .impl = add_impl,
                                   .args_size = sizeof(bench_add_args_t),
                                   .result_size = sizeof(int64_t)};

/* ---- pin: moves the loop thread to one CPU (cpu < 0: any CPU) ---- */
static void pin_impl(synchro_call_t *call) {
  const bench_pin_args_t *a = synchro_call_args(call);
  cpu_set_t set;
  int64_t rc;
  int i;
  CPU_ZERO(&set);
  if (a->cpu >= 0)
    CPU_SET(a->cpu, &set);
  else
    for (i = 0; i < CPU_SETSIZE; i++)
      CPU_SET(i, &set);
  rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  synchro_call_return(call, &rc);
}
const synchro_op_t bench_op_pin = {.name = "pin",
                                   .impl = pin_impl,
                                   .args_size = sizeof(bench_pin_args_t),
                                   .result_size = sizeof(int64_t)};

/* ---- never: pending until cancelled, then finishes with SYNCHRO_ECANCELED ---- */
static void never_cancelled(synchro_call_t *call, int reason, void *data) {
  (void)data;
  synchro_call_fail(call, reason, NULL, NULL);
}
static void never_impl(synchro_call_t *call) {
  synchro_call_on_cancel(call, never_cancelled, NULL);
}
const synchro_op_t bench_op_never = {.name = "never", .impl = never_impl};

/* ---- count: yields 0..n-1, pausing on a full buffer until the demand hook ---- */
typedef struct {
  int64_t next, n;
} counter_t;

static void count_produce(synchro_call_t *call, void *data) {
  counter_t *c = data;
  while (c->next < c->n) {
    int rc = synchro_call_yield(call, &c->next);
    if (rc == SYNCHRO_EBUSY)
      return; /* full: the demand hook brings us back */
    if (rc != 0) {
      synchro_call_set_data(call, NULL);
      free(c);
      synchro_call_fail(call, rc, NULL, NULL);
      return;
    }
    c->next++;
  }
  synchro_call_set_data(call, NULL);
  free(c);
  synchro_call_return(call, NULL);
}

static void count_cancelled(synchro_call_t *call, int reason, void *data) {
  (void)data;
  free(synchro_call_data(call));
  synchro_call_set_data(call, NULL);
  synchro_call_fail(call, reason, NULL, NULL);
}

static void count_impl(synchro_call_t *call) {
  const bench_count_args_t *a = synchro_call_args(call);
  counter_t *c = malloc(sizeof(*c));
  if (c == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, NULL);
    return;
  }
  c->next = 0;
  c->n = a->n;
  synchro_call_set_data(call, c);
  synchro_call_on_cancel(call, count_cancelled, NULL);
  synchro_call_on_demand(call, count_produce, c);
  count_produce(call, c);
}
const synchro_op_t bench_op_count = {.name = "count",
                                     .impl = count_impl,
                                     .args_size = sizeof(bench_count_args_t),
                                     .item_size = sizeof(int64_t)};

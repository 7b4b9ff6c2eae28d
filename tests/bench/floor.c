/* tests/bench/floor.c - the floor: the least any sleeping cross-thread call can cost.
 *
 * Latency floor: the caller writes an eventfd; a "loop" thread waiting on it with
 * epoll_wait reads it, computes a + b, and answers with a futex wake on a word the
 * caller sleeps on (FUTEX_WAIT_PRIVATE). Nothing else: no queue, no allocation.
 * Batch floor: the caller pushes 1000 nodes (one cache line each) on an intrusive
 * lock-free stack with CAS and writes the eventfd once; the loop thread takes the
 * whole stack, computes and marks each node done, and wakes the caller once. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define BATCH 1000

typedef struct node_s {
  _Alignas(64) struct node_s *next;
  int64_t a, b, result;
  _Atomic int done;
} node_t;

typedef struct {
  int efd, ep;
  int cpu;                 /* the loop thread's CPU, -1 for any */
  _Atomic uint32_t answer; /* futex word: 0 while the caller waits */
  _Atomic int stop;
  int64_t a, b, result;   /* the single call */
  _Atomic uintptr_t head; /* the batch stack */
  pthread_t thread;
} floor_t;

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *floor_loop(void *arg) {
  floor_t *fl = arg;
  struct epoll_event ev;
  uint64_t value;
  if (fl->cpu >= 0)
    pin_self(fl->cpu);
  for (;;) {
    uintptr_t h;
    if (epoll_wait(fl->ep, &ev, 1, -1) != 1)
      continue;
    if (read(fl->efd, &value, sizeof(value)) != sizeof(value))
      continue;
    if (atomic_load_explicit(&fl->stop, memory_order_acquire))
      break;
    h = atomic_exchange_explicit(&fl->head, 0, memory_order_acquire);
    if (h != 0) {
      node_t *n;
      for (n = (node_t *)h; n != NULL; n = n->next) {
        n->result = n->a + n->b;
        atomic_store_explicit(&n->done, 1, memory_order_release);
      }
    } else {
      fl->result = fl->a + fl->b;
    }
    atomic_store_explicit(&fl->answer, 1, memory_order_release);
    futex_wake(&fl->answer);
  }
  return NULL;
}

static void signal_loop(floor_t *fl) {
  uint64_t one = 1;
  while (write(fl->efd, &one, sizeof(one)) == -1 && errno == EINTR)
    ;
}

static void floor_start(floor_t *fl, int cpu) {
  struct epoll_event ev = {.events = EPOLLIN};
  fl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  fl->ep = epoll_create1(EPOLL_CLOEXEC);
  if (fl->efd < 0 || fl->ep < 0 || epoll_ctl(fl->ep, EPOLL_CTL_ADD, fl->efd, &ev) != 0)
    die("floor: eventfd/epoll", -errno);
  fl->cpu = cpu;
  atomic_init(&fl->answer, 0);
  atomic_init(&fl->stop, 0);
  atomic_init(&fl->head, 0);
  if (pthread_create(&fl->thread, NULL, floor_loop, fl) != 0)
    die("floor: pthread_create", -1);
}

static void floor_stop(floor_t *fl) {
  atomic_store(&fl->stop, 1);
  signal_loop(fl);
  pthread_join(fl->thread, NULL);
  close(fl->ep);
  close(fl->efd);
}

/* One call through the floor: eventfd in, futex out. */
static int64_t floor_call(floor_t *fl, int64_t a) {
  atomic_store_explicit(&fl->answer, 0, memory_order_relaxed);
  fl->a = a;
  fl->b = 1;
  signal_loop(fl); /* the write is a full barrier */
  while (atomic_load_explicit(&fl->answer, memory_order_acquire) == 0)
    futex_wait(&fl->answer, 0);
  return fl->result;
}

static void floor_latency(const char *name, const char *label, int loop_cpu) {
  figure_t *f = fig_floor(name, label, "ns/call");
  long calls = bench_cfg.calls > 0 ? bench_cfg.calls : pick(20000, 3000);
  floor_t fl;
  int r;
  long i;
  if (loop_cpu >= bench_cfg.ncpu)
    return; /* one CPU: no cross-core figure */
  pin_self(0);
  floor_start(&fl, loop_cpu);
  for (i = 0; i < 1000; i++) /* warm-up */
    floor_call(&fl, i);
  for (r = 0; r < bench_cfg.rounds; r++) {
    long csw0 = ctx_switches();
    uint64_t t0 = now_ns();
    int64_t sum = 0;
    for (i = 0; i < calls; i++)
      sum += floor_call(&fl, i);
    fig_add(f, (double)(now_ns() - t0) / (double)calls);
    fig_add_csw(f, (double)(ctx_switches() - csw0) / (double)calls);
    if (sum != calls * (calls - 1) / 2 + calls)
      die("floor: wrong sum", -1);
  }
  floor_stop(&fl);
  pin_self(-1);
}

void run_floor_latency_same(void) {
  floor_latency("floor_latency_same", "floor latency, same core", 0);
}

void run_floor_latency_cross(void) {
  floor_latency("floor_latency_cross", "floor latency, cross core", 1);
}

/* The caller runs on `caller_cpu`, the loop thread on `loop_cpu`. Left to the
 * scheduler, this floor is bimodal on a 2-vCPU guest (10-12 M/s when the threads run
 * on two CPUs, 60-70 M/s when the woken loop lands on the caller's CPU and finds the
 * nodes in its cache), which made every batch ratio a coin toss; pinned, each placement
 * is repeatable and the synchro figures use the same one. */
static void floor_batch(const char *name, const char *label, int caller_cpu, int loop_cpu) {
  figure_t *f = fig_floor(name, label, "calls/s");
  long batches = pick(300, 60);
  node_t *nodes = aligned_alloc(64, BATCH * sizeof(node_t));
  floor_t fl;
  int r;
  long b;
  if (nodes == NULL)
    die("floor: aligned_alloc", -1);
  if (loop_cpu >= bench_cfg.ncpu) {
    free(nodes);
    return; /* one CPU: no cross-core figure */
  }
  pin_self(caller_cpu);
  floor_start(&fl, loop_cpu);
  for (r = -1; r < bench_cfg.rounds; r++) { /* round -1 warms up */
    uint64_t t0 = now_ns();
    for (b = 0; b < batches; b++) {
      int64_t sum = 0;
      int i;
      atomic_store_explicit(&fl.answer, 0, memory_order_relaxed);
      for (i = 0; i < BATCH; i++) {
        node_t *n = &nodes[i];
        uintptr_t h = atomic_load_explicit(&fl.head, memory_order_relaxed);
        n->a = i;
        n->b = 1;
        atomic_store_explicit(&n->done, 0, memory_order_relaxed);
        do
          n->next = (node_t *)h;
        while (!atomic_compare_exchange_weak_explicit(&fl.head, &h, (uintptr_t)n,
                                                      memory_order_release, memory_order_relaxed));
      }
      signal_loop(&fl);
      while (atomic_load_explicit(&fl.answer, memory_order_acquire) == 0)
        futex_wait(&fl.answer, 0);
      for (i = 0; i < BATCH; i++) /* collect the results, as a caller would */
        if (atomic_load_explicit(&nodes[i].done, memory_order_acquire))
          sum += nodes[i].result;
      if (sum != (int64_t)BATCH * (BATCH - 1) / 2 + BATCH)
        die("floor batch: wrong sum", -1);
    }
    if (r >= 0)
      fig_add(f, (double)batches * BATCH * 1e9 / (double)(now_ns() - t0));
  }
  floor_stop(&fl);
  free(nodes);
  pin_self(-1);
}

void run_floor_batch(void) { floor_batch("floor_batch", "floor batch of 1000, cross core", 0, 1); }

/* Caller and loop share one CPU (a one-CPU container, or a loop the scheduler placed
 * beside its caller): the loop runs only when the caller blocks or is preempted. */
void run_floor_batch_same(void) {
  floor_batch("floor_batch_same", "floor batch of 1000, one CPU", 0, 0);
}

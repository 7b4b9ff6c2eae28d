/* lib/wait.c - clocks, futex sleeping and eventfd flags (Linux). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t synchro__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t synchro__deadline_after(int64_t timeout_ms) {
  if (timeout_ms < 0)
    return UINT64_MAX;
  return synchro__now_ns() + (uint64_t)timeout_ms * 1000000u;
}

int synchro__futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t deadline_ns) {
  struct timespec rel, *timeout = NULL;
  if (deadline_ns != UINT64_MAX) {
    uint64_t now = synchro__now_ns();
    if (now >= deadline_ns)
      return SYNCHRO_EPENDING;
    rel.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
    rel.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
    timeout = &rel;
  }
  if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0) == -1 &&
      errno == ETIMEDOUT)
    return SYNCHRO_EPENDING;
  return 0; /* woken, interrupted, or the word had already changed: caller re-checks */
}

void synchro__futex_wake(_Atomic uint32_t *word, int count) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* FUTEX_WAKE_OP on one word: the kernel ORs `bits` into it and wakes `count` sleepers
 * under the futex's own lock. The waker touches the word only inside the system call,
 * so a waiter that sees the bits may free the word at once (the word can live on the
 * waiter's stack), and a waiter that sleeps on the old value cannot miss the wake. */
void synchro__futex_or_wake(_Atomic uint32_t *word, uint32_t bits, int count) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_OP_PRIVATE, count, (void *)(uintptr_t)0,
          (uint32_t *)word, FUTEX_OP(FUTEX_OP_OR, (int)bits, FUTEX_OP_CMP_EQ, 0));
}

/* Waiting for another thread that is a few instructions from done: spin first; then
 * give the CPU away, as that thread may be the one this thread preempted (same CPU);
 * then sleep briefly, which hands the CPU over whatever the scheduler thinks of a
 * yield. */
void synchro__backoff(unsigned *round) {
  unsigned r = (*round)++;
  if (r < 64) {
    synchro__cpu_relax();
  } else if (r < 96) {
    sched_yield();
  } else {
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
  }
}

void synchro__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* CPUs online, not the calling thread's affinity: a caller pinned to one CPU must not
 * turn spinning off for the whole process (the same-CPU check handles that case). */
bool synchro__spin_until(bool (*done)(const void *arg), const void *arg, int64_t budget_ns) {
  uint64_t until = synchro__now_ns() + (uint64_t)budget_ns;
  unsigned round = 0;
  for (;;) {
    if (done(arg))
      return true;
    synchro__cpu_relax();
    if ((++round & 15u) == 0 && synchro__now_ns() >= until)
      return false;
  }
}

int synchro__ncpu(void) {
  static _Atomic int cached;
  int n = atomic_load_explicit(&cached, memory_order_relaxed);
  if (n == 0) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    n = online > 0 ? (int)online : 1;
    atomic_store_explicit(&cached, n, memory_order_relaxed);
  }
  return n;
}

int synchro__current_cpu(void) { return sched_getcpu(); }

_Thread_local synchro__recent_cpu_t synchro__recent_cpu_tls = {-1, 0};

int synchro__recent_cpu_slow(void) {
  synchro__recent_cpu_tls.cpu = sched_getcpu();
  return synchro__recent_cpu_tls.cpu;
}

int synchro__eventfd_new(void) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  SYNCHRO__LIVE(FDS, 1);
  return fd;
}

void synchro__fd_close(int fd) {
  if (fd < 0)
    return;
  close(fd);
  SYNCHRO__LIVE(FDS, -1);
}

void synchro__eventfd_signal(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do
    n = write(fd, &one, sizeof(one));
  while (n == -1 && errno == EINTR);
}

void synchro__eventfd_clear(int fd) {
  uint64_t value;
  ssize_t n;
  do
    n = read(fd, &value, sizeof(value));
  while (n == -1 && errno == EINTR);
}

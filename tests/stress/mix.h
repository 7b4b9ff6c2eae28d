/* tests/stress/mix.h - mixed load and jittered races, shared by the stress program
 * (tests/stress/stress.c: `make stress`, `make soak`, `make race`) and by its scaled-down
 * runs in `make check` (tests/check_stress.c). */
#ifndef SYNCHRO_STRESS_MIX_H
#define SYNCHRO_STRESS_MIX_H

#include <stdint.h>
#include <stdio.h>

#include "synchro.h"

/* The kinds of work a caller thread mixes. */
enum {
  MIX_CALL,           /* blocking add: 0 and a + b */
  MIX_CALL_FAIL,      /* blocking fail: the implementation's code and error */
  MIX_CALL_DEADLINE,  /* blocking add with a 10 s deadline that does not fire: 0 */
  MIX_CALL_TIMEOUT,   /* blocking 10 s sleep with a 1 ms deadline: SYNCHRO_ETIMEDOUT */
  MIX_FUTURE,         /* submit add, wait: 0 and a + b */
  MIX_BATCH,          /* 8 futures (add and upper), wait_all: each 0 and its value */
  MIX_TIMEOUT_BATCH,  /* 16 sleeps with 1-2 ms deadlines, wait_all: each SYNCHRO_ETIMEDOUT */
  MIX_AIO,            /* submit add, then on the host loop thread: callback with 0, a + b */
  MIX_STREAM,         /* 1-16 items 0..n-1, then SYNCHRO_EEND */
  MIX_STREAM_EARLY,   /* endless stream, free after 1-8 items: the producer is cancelled */
  MIX_CANCEL_QUEUED,  /* submit a 10 s sleep, cancel at once: 0, then SYNCHRO_ECANCELED */
  MIX_CANCEL_RUNNING, /* 10 s sleep, a blocking call behind it (so it started), cancel */
  MIX_CANCEL_RACE,    /* submit upper, cancel at once: 0 -> ECANCELED; EALREADY -> 0, text */
  MIX_KINDS
};

typedef struct {
  long threads;  /* caller threads */
  long iters;    /* calls per caller thread (a batch counts as its calls) */
  unsigned seed; /* 0: from the clock */
  synchro_t *s;  /* NULL: a synchronizer of its own, closed at the end */
} mix_opts_t;

typedef struct {
  uint64_t submitted[MIX_KINDS];  /* calls made per kind */
  uint64_t processed[MIX_KINDS];  /* outcomes observed per kind */
  uint64_t bad[MIX_KINDS];        /* outcomes not among the expected ones */
  uint64_t ok, failed, cancelled; /* expected outcomes, to balance against the stats */
  synchro_stats_t stats;          /* the synchronizer's counters at the end */
  double seconds;
  char first_error[256]; /* the first unexpected outcome, "" if none */
} mix_report_t;

extern const char *const mix_kind_names[MIX_KINDS];

/* Runs the mix; returns 0 if every check held (report filled either way). With opts->s
 * given, the stats balance is checked on that synchronizer's counters as they stand
 * once nothing is in flight (a long-lived synchronizer: the soak). */
int mix_run(const mix_opts_t *opts, mix_report_t *out);
void mix_print(FILE *f, const mix_report_t *r);

/* The seam races repeated with random jitter at every seam. */
enum {
  RACE_CANCEL_SUBMIT,   /* cancel right after submit: the loop dequeues and starts meanwhile */
  RACE_CANCEL_COMPLETE, /* cancel after 0-30 us: the loop claims and publishes meanwhile */
  RACE_SUBMIT_CLOSE,    /* a thread submits while the synchronizer is closed */
  RACE_CQ_FREE,         /* a completion queue freed while its future is delivered */
  RACE_HOST_FREE,       /* a host freed (after a dispatch or not) while delivered to */
  RACE_DETACH_FUTURE,   /* a future freed (detached) while it resolves */
  RACE_DETACH_GROUP,    /* a wait_all group that times out while its futures resolve */
  RACE_DETACH_STREAM,   /* a stream freed while its producer yields */
  RACE_KINDS
};

typedef struct {
  uint64_t runs[RACE_KINDS];
  uint64_t outcome_a[RACE_KINDS]; /* the "first" outcome: cancelled, refused, not run... */
  uint64_t outcome_b[RACE_KINDS]; /* the other one */
  uint64_t bad[RACE_KINDS];
  uint64_t jitters; /* seam hooks that delayed a thread */
  double seconds;
  char first_error[256];
} race_report_t;

extern const char *const race_kind_names[RACE_KINDS];

/* Runs `iters` iterations (round-robin over the kinds) with jitter hooks at every seam;
 * returns 0 if every iteration had exactly one expected outcome and the accounting of
 * results and arguments balances (nothing leaked, nothing released twice). */
int race_run(long iters, unsigned seed, race_report_t *out);
void race_print(FILE *f, const race_report_t *r);

/* The process's resident set (kB, from /proc/self/status) and open fds, or -1. */
long mix_rss_kb(void);
long mix_fd_count(void);
long mix_peak_rss_kb(void); /* VmHWM */

#endif

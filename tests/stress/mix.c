/* tests/stress/mix.c - mixed load over every caller-facing path, and the seam races
 * repeated with random jitter. See mix.h. */
#define _GNU_SOURCE
#include "mix.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "support/streamops.h"
#include "support/testops.h"
#include "testing.h"

const char *const mix_kind_names[MIX_KINDS] = {
    "call",          "call_fail",      "call_deadline", "call_timeout", "future",
    "batch",         "timeout_batch",  "aio",           "stream",       "stream_early",
    "cancel_queued", "cancel_running", "cancel_race"};

const char *const race_kind_names[RACE_KINDS] = {
    "cancel_vs_submit",        "cancel_vs_complete",   "submit_vs_close",
    "cq_free_vs_deliver",      "host_free_vs_deliver", "future_free_vs_deliver",
    "group_detach_vs_deliver", "stream_free_vs_yield"};

/* What outcome_a / outcome_b count, per race. */
static const char *const race_outcomes[RACE_KINDS][2] = {
    {"cancelled", "completed"},       {"cancelled", "completed"},
    {"some refused", "all accepted"}, {"pending at free", "resolved"},
    {"callback ran", "no callback"},  {"pending at free", "resolved"},
    {"all resolved", "timed out"},    {"producer running", "producer ended"}};

/* ---- small helpers ----------------------------------------------------------------- */

static uint64_t rnd(uint64_t *st) { /* xorshift64* */
  uint64_t x = *st;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *st = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void spin_us(uint64_t us) {
  double until = now_s() + (double)us / 1e6;
  while (now_s() < until)
    ;
}

static unsigned seed_of(unsigned seed) { return seed != 0 ? seed : (unsigned)(now_s() * 1e6); }

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t n = strlen(key);
  long kb = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, key, n) == 0) {
      kb = atol(line + n);
      break;
    }
  fclose(f);
  return kb;
}

long mix_rss_kb(void) { return status_kb("VmRSS:"); }
long mix_peak_rss_kb(void) { return status_kb("VmHWM:"); }

long mix_fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  long n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

/* ---- the mix ------------------------------------------------------------------------- */

#define AIO_WINDOW 512

typedef struct worker_s {
  pthread_t thread;
  int index;
  long iters;
  uint64_t rng;
  synchro_t *s;
  uint64_t submitted[MIX_KINDS], processed[MIX_KINDS], bad[MIX_KINDS];
  uint64_t ok, failed, cancelled, taken, uppers;
  /* aio: written by the host thread */
  _Atomic uint64_t aio_done, aio_bad, aio_out;
} worker_t;

static worker_t *workers; /* the running mix's workers (one mix at a time) */
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static char *err_buf;
static size_t err_cap;

static void note_bad(const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&err_mu);
  if (err_buf != NULL && err_buf[0] == '\0') {
    va_start(ap, fmt);
    vsnprintf(err_buf, err_cap, fmt, ap);
    va_end(ap);
  }
  pthread_mutex_unlock(&err_mu);
}

#define EXPECT(w, kind, cond)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      (w)->bad[kind]++;                                                                            \
      note_bad("%s: %s (line %d)", mix_kind_names[kind], #cond, __LINE__);                         \
    }                                                                                              \
  } while (0)

/* The host loop thread: a libuv loop with a host; callers attach from their threads. */
typedef struct {
  uv_loop_t loop;
  uv_async_t stop;
  synchro_host_t *h;
  pthread_t thread;
  _Atomic int ready;
} hostloop_t;

static void on_stop(uv_async_t *a) {
  hostloop_t *hl = a->data;
  synchro_host_free(hl->h);
  uv_close((uv_handle_t *)a, NULL);
}

static void *host_main(void *p) {
  hostloop_t *hl = p;
  uv_loop_init(&hl->loop);
  if (synchro_host_new_uv(&hl->h, &hl->loop) != 0) {
    atomic_store(&hl->ready, -1);
    uv_loop_close(&hl->loop);
    return NULL;
  }
  uv_async_init(&hl->loop, &hl->stop, on_stop);
  hl->stop.data = hl;
  atomic_store(&hl->ready, 1);
  uv_run(&hl->loop, UV_RUN_DEFAULT);
  uv_loop_close(&hl->loop);
  return NULL;
}

static hostloop_t *hostloop; /* the running mix's host */

static void on_aio(synchro_future_t *f, int status, void *data) {
  uintptr_t d = (uintptr_t)data;
  worker_t *w = &workers[d & 0xff];
  int64_t expect = (int64_t)(d >> 8), v = -1;
  if (status != 0 || synchro_future_result(f, &v) != 0 || v != expect) {
    atomic_fetch_add(&w->aio_bad, 1);
    note_bad("aio: status %d value %lld, expected 0 and %lld", status, (long long)v,
             (long long)expect);
  }
  atomic_fetch_add(&w->aio_done, 1);
  atomic_fetch_sub(&w->aio_out, 1);
}

static const char *const upper_in = "mix", *const upper_out = "MIX";

static void check_upper(worker_t *w, int kind, synchro_future_t *f) {
  char *out = NULL;
  EXPECT(w, kind,
         synchro_future_result(f, &out) == 0 && out != NULL && strcmp(out, upper_out) == 0);
  if (out != NULL) {
    free(out);
    w->taken++;
  }
}

static void one_call(worker_t *w, int kind) {
  synchro_t *s = w->s;
  test_add_args_t add = {(int64_t)(rnd(&w->rng) >> 40), w->index};
  test_sleep_args_t long_sleep = {10000, 0};
  test_string_args_t up = {(char *)upper_in};
  synchro_future_t *f = NULL, *fs[16];
  synchro_error_t *err = NULL;
  int64_t v = -1;
  int rc, i, n;
  switch (kind) {
  case MIX_CALL:
  case MIX_CALL_DEADLINE:
    rc = synchro_call(s, &test_op_add, &add, kind == MIX_CALL ? SYNCHRO_TIMEOUT_DEFAULT : 10000, &v,
                      NULL);
    EXPECT(w, kind, rc == 0 && v == add.a + add.b);
    w->submitted[kind]++, w->processed[kind]++, w->ok++;
    return;
  case MIX_CALL_FAIL: {
    test_fail_args_t fa = {UV_EIO};
    rc = synchro_call(s, &test_op_fail, &fa, SYNCHRO_TIMEOUT_DEFAULT, &v, &err);
    EXPECT(w, kind,
           rc == UV_EIO && synchro_error_code(err) == UV_EIO &&
               strcmp(synchro_error_message(err), "failed on purpose") == 0);
    synchro_error_free(err);
    w->submitted[kind]++, w->processed[kind]++, w->failed++;
    return;
  }
  case MIX_CALL_TIMEOUT:
    rc = synchro_call(s, &test_op_sleep, &long_sleep, 1, &v, &err);
    EXPECT(w, kind, rc == SYNCHRO_ETIMEDOUT);
    synchro_error_free(err);
    w->submitted[kind]++, w->processed[kind]++, w->cancelled++;
    return;
  case MIX_FUTURE:
    rc = synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f);
    EXPECT(w, kind, rc == 0);
    if (rc != 0)
      return;
    w->submitted[kind]++;
    EXPECT(w, kind, synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == 0);
    EXPECT(w, kind, synchro_future_result(f, &v) == 0 && v == add.a + add.b);
    synchro_future_free(f);
    w->processed[kind]++, w->ok++;
    return;
  case MIX_BATCH:
    for (i = 0; i < 8; i++) {
      rc = (i & 1) ? synchro_submit(s, &test_op_upper, &up, SYNCHRO_TIMEOUT_DEFAULT, &fs[i])
                   : synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]);
      EXPECT(w, kind, rc == 0);
      if (rc != 0)
        return; /* leaks the batch, but the run fails anyway */
      w->submitted[kind]++;
      w->uppers += i & 1;
    }
    EXPECT(w, kind, synchro_future_wait_all(fs, 8, SYNCHRO_TIMEOUT_INFINITE) == 0);
    for (i = 0; i < 8; i++) {
      EXPECT(w, kind, synchro_future_status(fs[i]) == 0);
      if (i & 1) {
        check_upper(w, kind, fs[i]);
      } else {
        EXPECT(w, kind, synchro_future_result(fs[i], &v) == 0 && v == add.a + add.b);
      }
      synchro_future_free(fs[i]);
      w->processed[kind]++, w->ok++;
    }
    return;
  case MIX_TIMEOUT_BATCH:
    for (i = 0; i < 16; i++) {
      rc = synchro_submit(s, &test_op_sleep, &long_sleep, 1 + (i & 1), &fs[i]);
      EXPECT(w, kind, rc == 0);
      if (rc != 0)
        return;
      w->submitted[kind]++;
    }
    EXPECT(w, kind, synchro_future_wait_all(fs, 16, SYNCHRO_TIMEOUT_INFINITE) == 0);
    for (i = 0; i < 16; i++) {
      EXPECT(w, kind, synchro_future_status(fs[i]) == SYNCHRO_ETIMEDOUT);
      synchro_future_free(fs[i]);
      w->processed[kind]++, w->cancelled++;
    }
    return;
  case MIX_AIO:
    while (atomic_load(&w->aio_out) >= AIO_WINDOW)
      sched_yield();
    rc = synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f);
    EXPECT(w, kind, rc == 0);
    if (rc != 0)
      return;
    w->submitted[kind]++, w->ok++;
    atomic_fetch_add(&w->aio_out, 1);
    rc = synchro_future_then(
        f, hostloop->h, on_aio,
        (void *)(uintptr_t)(((uint64_t)(add.a + add.b) << 8) | (unsigned)w->index));
    EXPECT(w, kind, rc == 0);
    if (rc != 0) {
      atomic_fetch_sub(&w->aio_out, 1);
      atomic_fetch_add(&w->aio_done, 1);
      synchro_future_free(f);
    }
    return;
  case MIX_STREAM:
  case MIX_STREAM_EARLY: {
    synchro_stream_t *st = NULL;
    test_count_args_t ca = {(int64_t)(1 + rnd(&w->rng) % 16), -1, 0};
    int64_t item;
    n = kind == MIX_STREAM ? (int)ca.n : (int)(1 + rnd(&w->rng) % 8);
    rc = kind == MIX_STREAM
             ? synchro_stream_open(s, &test_sop_count64, &ca, SYNCHRO_TIMEOUT_DEFAULT, &st)
             : synchro_stream_open(s, &test_sop_infinite, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st);
    EXPECT(w, kind, rc == 0);
    if (rc != 0)
      return;
    w->submitted[kind]++;
    for (i = 0; i < n; i++) {
      item = -1;
      rc = synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE);
      EXPECT(w, kind, rc == 0 && item == i);
    }
    if (kind == MIX_STREAM) {
      EXPECT(w, kind, synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE) == SYNCHRO_EEND);
      w->ok++;
    } else {
      w->cancelled++; /* endless: freeing it cancels the producer */
    }
    synchro_stream_free(st);
    w->processed[kind]++;
    return;
  }
  case MIX_CANCEL_QUEUED:
  case MIX_CANCEL_RUNNING:
    rc = synchro_submit(s, &test_op_sleep, &long_sleep, SYNCHRO_TIMEOUT_DEFAULT, &f);
    EXPECT(w, kind, rc == 0);
    if (rc != 0)
      return;
    w->submitted[kind]++;
    if (kind == MIX_CANCEL_RUNNING) { /* taken in order: once this returns, f started */
      EXPECT(w, kind, synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &v, NULL) == 0);
      w->submitted[kind]++, w->processed[kind]++, w->ok++;
    }
    EXPECT(w, kind, synchro_future_cancel(f) == 0);
    EXPECT(w, kind, synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == SYNCHRO_ECANCELED);
    synchro_future_free(f);
    w->processed[kind]++, w->cancelled++;
    return;
  case MIX_CANCEL_RACE:
    rc = synchro_submit(s, &test_op_upper, &up, SYNCHRO_TIMEOUT_DEFAULT, &f);
    EXPECT(w, kind, rc == 0);
    if (rc != 0)
      return;
    w->submitted[kind]++, w->uppers++;
    rc = synchro_future_cancel(f);
    EXPECT(w, kind, rc == 0 || rc == SYNCHRO_EALREADY);
    if (rc == 0) {
      EXPECT(w, kind, synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == SYNCHRO_ECANCELED);
      w->cancelled++;
    } else {
      EXPECT(w, kind, synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == 0);
      check_upper(w, kind, f);
      w->ok++;
    }
    synchro_future_free(f);
    w->processed[kind]++;
    return;
  }
}

/* Choices per 1,000 picks; a pick makes 1 call (batch: 8, timeout batch: 16,
 * cancel_running: 2). */
static const int weights[MIX_KINDS] = {250, 30, 60, 1, 150, 40, 2, 150, 40, 20, 30, 20, 60};

static int mix_only = -1; /* MIX_ONLY=<kind>: one kind only (debugging) */

static int pick(uint64_t *rng) {
  int total = 0, k, r;
  if (mix_only >= 0)
    return mix_only;
  for (k = 0; k < MIX_KINDS; k++)
    total += weights[k];
  r = (int)(rnd(rng) % (uint64_t)total);
  for (k = 0; k < MIX_KINDS; k++)
    if ((r -= weights[k]) < 0)
      return k;
  return MIX_CALL;
}

static void *worker_main(void *p) {
  worker_t *w = p;
  long done = 0;
  int k;
  while (done < w->iters) {
    uint64_t before = 0, after = 0;
    for (k = 0; k < MIX_KINDS; k++)
      before += w->submitted[k];
    one_call(w, pick(&w->rng));
    for (k = 0; k < MIX_KINDS; k++)
      after += w->submitted[k];
    done += after > before ? (long)(after - before) : 1;
  }
  return NULL;
}

/* Waits (at most 30 s) until the synchronizer has nothing in flight. */
static int settle(synchro_t *s, synchro_stats_t *st) {
  double until = now_s() + 30;
  do {
    synchro_stats(s, st);
    if (st->in_flight == 0 && st->submitted == st->completed + st->failed + st->cancelled)
      return 0;
    sched_yield();
  } while (now_s() < until);
  return -1;
}

int mix_run(const mix_opts_t *opts, mix_report_t *r) {
  synchro_t *s = opts->s;
  synchro_stats_t before = {0};
  hostloop_t hl;
  long t;
  int k, fails = 0;
  uint64_t seed = seed_of(opts->seed), total = 0, taken = 0, uppers = 0;
  double t0 = now_s();
  const char *only = getenv("MIX_ONLY");
  memset(r, 0, sizeof *r);
  err_buf = r->first_error;
  err_cap = sizeof r->first_error;
  testops_reset();
  streamops_reset();
  for (k = 0, mix_only = -1; only != NULL && k < MIX_KINDS; k++)
    if (strcmp(only, mix_kind_names[k]) == 0)
      mix_only = k;
  if (s == NULL) {
    if (synchro_new(&s, NULL) != 0) {
      snprintf(r->first_error, sizeof r->first_error, "synchro_new failed");
      return -1;
    }
  } else {
    synchro_stats(s, &before);
  }
  memset(&hl, 0, sizeof hl);
  hostloop = &hl;
  pthread_create(&hl.thread, NULL, host_main, &hl);
  while (atomic_load(&hl.ready) == 0)
    sched_yield();
  workers = calloc((size_t)opts->threads, sizeof *workers);
  for (t = 0; t < opts->threads; t++) {
    worker_t *w = &workers[t];
    w->index = (int)t;
    w->iters = opts->iters;
    w->s = s;
    w->rng = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t + 1;
    pthread_create(&w->thread, NULL, worker_main, w);
  }
  for (t = 0; t < opts->threads; t++)
    pthread_join(workers[t].thread, NULL);
  for (t = 0; t < opts->threads; t++) { /* every aio callback ran */
    worker_t *w = &workers[t];
    double until = now_s() + 30;
    while (atomic_load(&w->aio_done) < w->submitted[MIX_AIO] && now_s() < until)
      sched_yield();
  }
  uv_async_send(&hl.stop);
  pthread_join(hl.thread, NULL);
  for (t = 0; t < opts->threads; t++) {
    worker_t *w = &workers[t];
    w->processed[MIX_AIO] = atomic_load(&w->aio_done);
    w->bad[MIX_AIO] += atomic_load(&w->aio_bad);
    for (k = 0; k < MIX_KINDS; k++) {
      r->submitted[k] += w->submitted[k];
      r->processed[k] += w->processed[k];
      r->bad[k] += w->bad[k];
    }
    r->ok += w->ok, r->failed += w->failed, r->cancelled += w->cancelled;
    taken += w->taken, uppers += w->uppers;
  }
  free(workers);
  workers = NULL;
  if (opts->s == NULL) {
    if (synchro_close(s, SYNCHRO_TIMEOUT_INFINITE) != 0)
      note_bad("synchro_close failed");
  }
  if (settle(s, &r->stats) != 0)
    note_bad("stats do not settle: in_flight %llu", (unsigned long long)r->stats.in_flight);
  r->stats.submitted -= before.submitted;
  r->stats.completed -= before.completed;
  r->stats.failed -= before.failed;
  r->stats.cancelled -= before.cancelled;
  r->stats.wakeups -= before.wakeups;
  if (opts->s == NULL)
    synchro_free(s);
  r->seconds = now_s() - t0;
  /* processed == submitted per kind; no unexpected outcome */
  for (k = 0; k < MIX_KINDS; k++) {
    total += r->submitted[k];
    if (r->processed[k] != r->submitted[k] || r->bad[k] != 0) {
      fails++;
      note_bad("%s: submitted %llu processed %llu bad %llu", mix_kind_names[k],
               (unsigned long long)r->submitted[k], (unsigned long long)r->processed[k],
               (unsigned long long)r->bad[k]);
    }
  }
  /* the synchronizer's counters balance, and match the outcomes we saw */
  if (r->stats.in_flight != 0 || r->stats.submitted != total || r->stats.completed != r->ok ||
      r->stats.failed != r->failed || r->stats.cancelled != r->cancelled) {
    fails++;
    note_bad("stats: submitted %llu (ours %llu) completed %llu (%llu) failed %llu (%llu) "
             "cancelled %llu (%llu) in_flight %llu",
             (unsigned long long)r->stats.submitted, (unsigned long long)total,
             (unsigned long long)r->stats.completed, (unsigned long long)r->ok,
             (unsigned long long)r->stats.failed, (unsigned long long)r->failed,
             (unsigned long long)r->stats.cancelled, (unsigned long long)r->cancelled,
             (unsigned long long)r->stats.in_flight);
  }
  /* every upper result is released exactly once, every argument block too */
  if (test_results_made != test_results_freed + (long)taken || test_args_freed != (long)uppers) {
    fails++;
    note_bad("upper: made %ld freed %ld taken %llu; args freed %ld of %llu",
             (long)test_results_made, (long)test_results_freed, (unsigned long long)taken,
             (long)test_args_freed, (unsigned long long)uppers);
  }
  /* every running call that was cancelled ran its hook; every early stream its own */
  if (test_hooks_run < (long)r->processed[MIX_CANCEL_RUNNING] / 2 ||
      test_stream_hooks != (long)r->submitted[MIX_STREAM_EARLY]) {
    fails++;
    note_bad("hooks: sleep %ld (>= %llu), stream %ld (== %llu)", (long)test_hooks_run,
             (unsigned long long)r->processed[MIX_CANCEL_RUNNING] / 2, (long)test_stream_hooks,
             (unsigned long long)r->submitted[MIX_STREAM_EARLY]);
  }
  err_buf = NULL;
  return fails == 0 && r->first_error[0] == '\0' ? 0 : -1;
}

void mix_print(FILE *f, const mix_report_t *r) {
  uint64_t total = 0;
  int k;
  for (k = 0; k < MIX_KINDS; k++)
    total += r->submitted[k];
  fprintf(f, "%-16s %12s %12s %6s\n", "kind", "submitted", "processed", "bad");
  for (k = 0; k < MIX_KINDS; k++)
    fprintf(f, "%-16s %12llu %12llu %6llu\n", mix_kind_names[k],
            (unsigned long long)r->submitted[k], (unsigned long long)r->processed[k],
            (unsigned long long)r->bad[k]);
  fprintf(f, "calls %llu in %.2f s (%.0f calls/s)\n", (unsigned long long)total, r->seconds,
          r->seconds > 0 ? (double)total / r->seconds : 0.0);
  fprintf(f, "outcomes: ok %llu, failed %llu, cancelled/timed out %llu\n",
          (unsigned long long)r->ok, (unsigned long long)r->failed,
          (unsigned long long)r->cancelled);
  fprintf(f,
          "stats: submitted %llu completed %llu failed %llu cancelled %llu in_flight %llu wakeups "
          "%llu\n",
          (unsigned long long)r->stats.submitted, (unsigned long long)r->stats.completed,
          (unsigned long long)r->stats.failed, (unsigned long long)r->stats.cancelled,
          (unsigned long long)r->stats.in_flight, (unsigned long long)r->stats.wakeups);
  if (r->first_error[0] != '\0')
    fprintf(f, "FIRST ERROR: %s\n", r->first_error);
}

/* ---- races with jitter ----------------------------------------------------------------- */

static _Atomic uint64_t jitter_count;
static _Atomic uint64_t jitter_seed;
static _Thread_local uint64_t jitter_rng;

/* At every seam: half the time nothing, else a yield or a 0-20 us spin. Never calls
 * into the runtime. */
static void jitter_hook(synchro_seam_t seam, const synchro_call_t *call, void *data) {
  uint64_t r;
  (void)seam;
  (void)call;
  (void)data;
  if (jitter_rng == 0)
    jitter_rng = atomic_fetch_add(&jitter_seed, 0x9E3779B97F4A7C15ULL) | 1;
  r = rnd(&jitter_rng);
  if ((r & 7) < 4)
    return;
  atomic_fetch_add_explicit(&jitter_count, 1, memory_order_relaxed);
  if ((r & 7) < 6)
    sched_yield();
  else
    spin_us((r >> 8) % 20);
}

typedef struct {
  race_report_t *r;
  uint64_t rng;
  long taken;   /* upper results taken by us */
  long uppers;  /* upper calls accepted */
  long refused; /* upper calls refused by a closed synchronizer: their arguments were
                 * copied and released if the refusal came at the push, not before */
  long items_taken;
} race_t;

#define RACE_EXPECT(rc_, kind, cond)                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      (rc_)->r->bad[kind]++;                                                                       \
      note_bad("%s: %s (line %d)", race_kind_names[kind], #cond, __LINE__);                        \
    }                                                                                              \
  } while (0)

static void take_upper(race_t *x, int kind, synchro_future_t *f) {
  char *out = NULL;
  RACE_EXPECT(x, kind,
              synchro_future_result(f, &out) == 0 && out != NULL && strcmp(out, "RACE") == 0);
  if (out != NULL) {
    free(out);
    x->taken++;
  }
}

static const test_string_args_t race_up = {(char *)"race"};

/* submit upper; 0 on success */
static int submit_upper(race_t *x, synchro_t *s, synchro_future_t **f) {
  int rc = synchro_submit(s, &test_op_upper, &race_up, SYNCHRO_TIMEOUT_DEFAULT, f);
  if (rc == 0)
    x->uppers++;
  return rc;
}

/* One accepted cancel means ECANCELED; a refused one (EALREADY) the result, once. */
static void race_cancel(race_t *x, synchro_t *s, int kind, uint64_t spin) {
  synchro_future_t *f = NULL;
  int rc;
  RACE_EXPECT(x, kind, submit_upper(x, s, &f) == 0);
  if (f == NULL)
    return;
  if (spin != 0)
    spin_us(spin);
  rc = synchro_future_cancel(f);
  if (rc == 0) {
    RACE_EXPECT(x, kind, synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == SYNCHRO_ECANCELED);
    x->r->outcome_a[kind]++;
  } else {
    RACE_EXPECT(x, kind, rc == SYNCHRO_EALREADY);
    RACE_EXPECT(x, kind, synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == 0);
    take_upper(x, kind, f);
    x->r->outcome_b[kind]++;
  }
  synchro_future_free(f);
}

typedef struct {
  race_t *x;
  synchro_t *s;
  synchro_future_t *fs[4];
  int rcs[4];
  uint64_t spin;
} closer_race_t;

static void *race_submitter(void *p) {
  closer_race_t *c = p;
  int i;
  for (i = 0; i < 4; i++) {
    c->fs[i] = NULL;
    c->rcs[i] = synchro_submit(c->s, &test_op_upper, &race_up, SYNCHRO_TIMEOUT_DEFAULT, &c->fs[i]);
    if (i == 1)
      spin_us(c->spin);
  }
  return NULL;
}

static void race_submit_close(race_t *x) {
  const int kind = RACE_SUBMIT_CLOSE;
  closer_race_t c;
  pthread_t t;
  synchro_stats_t st;
  int i, refused = 0, accepted = 0;
  memset(&c, 0, sizeof c);
  c.x = x;
  c.spin = rnd(&x->rng) % 20;
  if (synchro_new(&c.s, NULL) != 0) {
    RACE_EXPECT(x, kind, 0);
    return;
  }
  pthread_create(&t, NULL, race_submitter, &c);
  spin_us(rnd(&x->rng) % 40);
  RACE_EXPECT(x, kind, synchro_close(c.s, 0) == 0);
  pthread_join(t, NULL);
  for (i = 0; i < 4; i++) {
    if (c.rcs[i] == SYNCHRO_ESHUTDOWN) {
      RACE_EXPECT(x, kind, c.fs[i] == NULL);
      refused++;
      x->refused++;
      continue;
    }
    RACE_EXPECT(x, kind, c.rcs[i] == 0 && refused == 0); /* once refused, always refused */
    if (c.fs[i] == NULL)
      continue;
    accepted++;
    x->uppers++;
    {
      int rc = synchro_future_wait(c.fs[i], SYNCHRO_TIMEOUT_INFINITE);
      RACE_EXPECT(x, kind, rc == 0 || rc == SYNCHRO_ESHUTDOWN);
      if (rc == 0)
        take_upper(x, kind, c.fs[i]);
    }
    synchro_future_free(c.fs[i]);
  }
  synchro_stats(c.s, &st);
  RACE_EXPECT(x, kind,
              st.in_flight == 0 && st.submitted == (uint64_t)accepted &&
                  st.submitted == st.completed + st.failed + st.cancelled);
  synchro_free(c.s);
  if (refused != 0)
    x->r->outcome_a[kind]++;
  else
    x->r->outcome_b[kind]++;
}

static void race_cq_free(race_t *x, synchro_t *s) {
  const int kind = RACE_CQ_FREE;
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = NULL;
  RACE_EXPECT(x, kind, synchro_cq_new(&cq) == 0);
  RACE_EXPECT(x, kind, submit_upper(x, s, &f) == 0);
  if (cq == NULL || f == NULL)
    return;
  RACE_EXPECT(x, kind, synchro_cq_add(cq, f) == 0);
  spin_us(rnd(&x->rng) % 20);
  if (synchro_future_status(f) == SYNCHRO_EPENDING)
    x->r->outcome_a[kind]++;
  else
    x->r->outcome_b[kind]++;
  synchro_cq_free(cq); /* the future goes with it, pending or resolved */
}

typedef struct {
  race_t *x;
  int runs;
  int status;
} host_cb_t;

static void race_on_host(synchro_future_t *f, int status, void *data) {
  host_cb_t *cb = data;
  cb->runs++;
  cb->status = status;
  if (status == 0)
    take_upper(cb->x, RACE_HOST_FREE, f);
}

static void race_host_free(race_t *x, synchro_t *s) {
  const int kind = RACE_HOST_FREE;
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  host_cb_t cb = {x, 0, 1};
  uint64_t r = rnd(&x->rng);
  RACE_EXPECT(x, kind, synchro_host_new_fd(&h) == 0);
  RACE_EXPECT(x, kind, submit_upper(x, s, &f) == 0);
  if (h == NULL || f == NULL)
    return;
  RACE_EXPECT(x, kind, synchro_future_then(f, h, race_on_host, &cb) == 0);
  spin_us((r >> 4) % 20);
  if (r & 1)
    synchro_host_dispatch(h, 0);
  synchro_host_free(h);
  RACE_EXPECT(x, kind, cb.runs <= 1 && (cb.runs == 0 || cb.status == 0));
  if (cb.runs == 1)
    x->r->outcome_a[kind]++;
  else
    x->r->outcome_b[kind]++;
}

static void race_detach_future(race_t *x, synchro_t *s) {
  const int kind = RACE_DETACH_FUTURE;
  synchro_future_t *f = NULL;
  RACE_EXPECT(x, kind, submit_upper(x, s, &f) == 0);
  if (f == NULL)
    return;
  spin_us(rnd(&x->rng) % 20);
  if (synchro_future_status(f) == SYNCHRO_EPENDING)
    x->r->outcome_a[kind]++;
  else
    x->r->outcome_b[kind]++;
  synchro_future_free(f); /* pending: detached, the late result is released */
}

static void race_detach_group(race_t *x, synchro_t *s) {
  const int kind = RACE_DETACH_GROUP;
  synchro_future_t *fs[2] = {NULL, NULL};
  uint64_t r = rnd(&x->rng);
  int rc, i;
  RACE_EXPECT(x, kind, submit_upper(x, s, &fs[0]) == 0);
  RACE_EXPECT(x, kind, submit_upper(x, s, &fs[1]) == 0);
  if (fs[0] == NULL || fs[1] == NULL)
    return;
  spin_us((r >> 4) % 10);
  rc = synchro_future_wait_all(fs, 2, 0); /* attach, then detach while they resolve */
  RACE_EXPECT(x, kind, rc == 0 || rc == SYNCHRO_EPENDING);
  if (rc == 0) {
    RACE_EXPECT(x, kind, synchro_future_status(fs[0]) == 0 && synchro_future_status(fs[1]) == 0);
    x->r->outcome_a[kind]++;
  } else {
    x->r->outcome_b[kind]++;
  }
  for (i = 0; i < 2; i++) {
    if (r & 1) { /* take the results, or leave them to the detach */
      RACE_EXPECT(x, kind, synchro_future_wait(fs[i], SYNCHRO_TIMEOUT_INFINITE) == 0);
      take_upper(x, kind, fs[i]);
    }
    synchro_future_free(fs[i]);
  }
}

static void race_detach_stream(race_t *x, synchro_t *s) {
  const int kind = RACE_DETACH_STREAM;
  synchro_stream_t *st = NULL;
  uint64_t r = rnd(&x->rng);
  test_count_args_t ca = {(int64_t)(1 + r % 40), -1, 0};
  int64_t k = (int64_t)((r >> 8) % (uint64_t)ca.n), i;
  char want[32];
  RACE_EXPECT(x, kind,
              synchro_stream_open(s, &test_sop_strings, &ca, SYNCHRO_TIMEOUT_DEFAULT, &st) == 0);
  if (st == NULL)
    return;
  for (i = 0; i < k; i++) {
    char *item = NULL;
    RACE_EXPECT(x, kind, synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE) == 0);
    snprintf(want, sizeof want, "item-%lld", (long long)i);
    RACE_EXPECT(x, kind, item != NULL && strcmp(item, want) == 0);
    free(item);
    x->items_taken++;
  }
  spin_us((r >> 16) % 20);
  if (test_stream_ended > 0)
    x->r->outcome_b[kind]++;
  else
    x->r->outcome_a[kind]++;
  test_stream_ended = 0;
  synchro_stream_free(st); /* the producer is cancelled or done; buffered items released */
}

int race_run(long iters, unsigned seed, race_report_t *r) {
  race_t x;
  synchro_t *s = NULL;
  synchro_stats_t st;
  long i;
  int k, fails = 0;
  double t0 = now_s();
  const char *only_env = getenv("RACE_ONLY"); /* one kind, by name (debugging) */
  int only = -1;
  for (k = 0; only_env != NULL && k < RACE_KINDS; k++)
    if (strcmp(only_env, race_kind_names[k]) == 0)
      only = k;
  memset(r, 0, sizeof *r);
  memset(&x, 0, sizeof x);
  x.r = r;
  x.rng = seed_of(seed) * 0x9E3779B97F4A7C15ULL + 1;
  err_buf = r->first_error;
  err_cap = sizeof r->first_error;
  testops_reset();
  streamops_reset();
  atomic_store(&jitter_count, 0);
  atomic_store(&jitter_seed, x.rng);
  for (k = 0; k < SYNCHRO_SEAM_COUNT; k++)
    synchro_test_seam_set((synchro_seam_t)k, jitter_hook, NULL);
  if (synchro_new(&s, NULL) != 0) {
    snprintf(r->first_error, sizeof r->first_error, "synchro_new failed");
    return -1;
  }
  for (i = 0; i < iters; i++) {
    int kind = only >= 0 ? only : (int)(i % RACE_KINDS);
    r->runs[kind]++;
    switch (kind) {
    case RACE_CANCEL_SUBMIT: race_cancel(&x, s, kind, 0); break;
    case RACE_CANCEL_COMPLETE: race_cancel(&x, s, kind, 1 + rnd(&x.rng) % 30); break;
    case RACE_SUBMIT_CLOSE: race_submit_close(&x); break;
    case RACE_CQ_FREE: race_cq_free(&x, s); break;
    case RACE_HOST_FREE: race_host_free(&x, s); break;
    case RACE_DETACH_FUTURE: race_detach_future(&x, s); break;
    case RACE_DETACH_GROUP: race_detach_group(&x, s); break;
    case RACE_DETACH_STREAM: race_detach_stream(&x, s); break;
    }
  }
  if (synchro_close(s, SYNCHRO_TIMEOUT_INFINITE) != 0)
    note_bad("synchro_close failed");
  synchro_stats(s, &st);
  if (st.in_flight != 0 || st.submitted != st.completed + st.failed + st.cancelled) {
    fails++;
    note_bad("stats: submitted %llu completed %llu failed %llu cancelled %llu in_flight %llu",
             (unsigned long long)st.submitted, (unsigned long long)st.completed,
             (unsigned long long)st.failed, (unsigned long long)st.cancelled,
             (unsigned long long)st.in_flight);
  }
  synchro_free(s);
  for (k = 0; k < SYNCHRO_SEAM_COUNT; k++)
    synchro_test_seam_set((synchro_seam_t)k, NULL, NULL);
  r->jitters = atomic_load(&jitter_count);
  /* each result and argument block released exactly once; every stream item too */
  if (test_results_made != test_results_freed + x.taken || test_args_freed < x.uppers ||
      test_args_freed > x.uppers + x.refused) {
    fails++;
    note_bad("upper: made %ld freed %ld taken %ld; args freed %ld of %ld", (long)test_results_made,
             (long)test_results_freed, x.taken, (long)test_args_freed, x.uppers + x.refused);
  }
  if (test_stream_items_made != test_stream_items_freed + x.items_taken) {
    fails++;
    note_bad("stream items: made %ld freed %ld taken %ld", (long)test_stream_items_made,
             (long)test_stream_items_freed, x.items_taken);
  }
  for (k = 0; k < RACE_KINDS; k++)
    if (r->bad[k] != 0 || r->outcome_a[k] + r->outcome_b[k] != r->runs[k])
      fails++;
  r->seconds = now_s() - t0;
  err_buf = NULL;
  return fails == 0 && r->first_error[0] == '\0' ? 0 : -1;
}

void race_print(FILE *f, const race_report_t *r) {
  uint64_t total = 0;
  int k;
  fprintf(f, "%-24s %8s  %-30s %-30s %4s\n", "race", "runs", "outcome A", "outcome B", "bad");
  for (k = 0; k < RACE_KINDS; k++) {
    char a[64], b[64];
    total += r->runs[k];
    snprintf(a, sizeof a, "%s %llu", race_outcomes[k][0], (unsigned long long)r->outcome_a[k]);
    snprintf(b, sizeof b, "%s %llu", race_outcomes[k][1], (unsigned long long)r->outcome_b[k]);
    fprintf(f, "%-24s %8llu  %-30s %-30s %4llu\n", race_kind_names[k],
            (unsigned long long)r->runs[k], a, b, (unsigned long long)r->bad[k]);
  }
  fprintf(f, "iterations %llu in %.2f s; seam hooks that delayed a thread: %llu\n",
          (unsigned long long)total, r->seconds, (unsigned long long)r->jitters);
  if (r->first_error[0] != '\0')
    fprintf(f, "FIRST ERROR: %s\n", r->first_error);
}

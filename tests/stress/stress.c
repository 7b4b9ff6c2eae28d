/* tests/stress/stress.c - the stress, soak and race runs (not part of `make check`):
 *
 *   stress [THREADS [ITERS]]   mixed load: THREADS callers x ITERS calls (16 x 1,000,000)
 *   soak                       mixed load for SOAK_SECONDS (600), printing RSS and open
 *                              fds every SOAK_INTERVAL s (60); fails if they grow after
 *                              the first interval (warm-up) beyond SOAK_RSS_KB (8192 kB)
 *                              or SOAK_FDS (2)
 *   race [ITERS]               the seam races with jitter, ITERS iterations (100,000)
 *
 * SEED sets the random seed. Exit status 0 when every check held. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mix.h"

static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? atol(v) : dflt;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_stress(long threads, long iters) {
  mix_opts_t o = {threads, iters, (unsigned)env_long("SEED", 0), NULL};
  mix_report_t r;
  int rc;
  printf("stress: %ld threads x %ld calls, host loop thread, one synchronizer\n", threads, iters);
  fflush(stdout);
  rc = mix_run(&o, &r);
  mix_print(stdout, &r);
  printf("peak RSS %ld kB, RSS now %ld kB, open fds %ld\n", mix_peak_rss_kb(), mix_rss_kb(),
         mix_fd_count());
  printf("stress: %s\n", rc == 0 ? "PASS" : "FAIL");
  return rc == 0 ? 0 : 1;
}

static int run_race(long iters) {
  race_report_t r;
  int rc = race_run(iters, (unsigned)env_long("SEED", 0), &r);
  race_print(stdout, &r);
  printf("race: %s\n", rc == 0 ? "PASS" : "FAIL");
  return rc == 0 ? 0 : 1;
}

/* Rounds of mixed load on one long-lived synchronizer, each followed by a short round
 * on a synchronizer of its own and a few jittered races, until the time is up. */
static int run_soak(void) {
  long seconds = env_long("SOAK_SECONDS", 600), interval = env_long("SOAK_INTERVAL", 60);
  long rss_tol = env_long("SOAK_RSS_KB", 8192), fd_tol = env_long("SOAK_FDS", 2);
  long parts = env_long("SOAK_PARTS", 7); /* 1: shared mix, 2: own mix, 4: races */
  long base_rss = -1, base_fd = -1, max_rss = 0, max_fd = 0, rounds = 0;
  uint64_t calls = 0, races = 0;
  double t0 = now_s(), next = t0 + (double)interval, end = t0 + (double)seconds;
  synchro_t *s = NULL;
  int failed = 0;
  if (interval <= 0)
    interval = 60;
  if (synchro_new(&s, NULL) != 0)
    return 1;
  printf("soak: %ld s, sampling every %ld s; tolerance after warm-up: RSS +%ld kB, fds +%ld\n",
         seconds, interval, rss_tol, fd_tol);
  printf("%8s %10s %12s %10s %6s %14s\n", "t (s)", "rounds", "calls", "RSS (kB)", "fds",
         "malloc (kB)");
  fflush(stdout);
  while (!failed) {
    mix_opts_t shared = {4, 20000, 0, s}, own = {2, 2000, 0, NULL};
    mix_report_t r;
    race_report_t rr;
    double t;
    int k;
    memset(&r, 0, sizeof r);
    if ((parts & 1) && mix_run(&shared, &r) != 0) {
      mix_print(stdout, &r);
      failed = 1;
      break;
    }
    for (k = 0; k < MIX_KINDS; k++)
      calls += r.submitted[k];
    memset(&r, 0, sizeof r);
    if ((parts & 2) && mix_run(&own, &r) != 0) {
      mix_print(stdout, &r);
      failed = 1;
      break;
    }
    for (k = 0; k < MIX_KINDS; k++)
      calls += r.submitted[k];
    if ((parts & 4) && race_run(400, 0, &rr) != 0) {
      race_print(stdout, &rr);
      failed = 1;
      break;
    }
    races += (parts & 4) ? 400 : 0;
    rounds++;
    t = now_s();
    if (t >= next || t >= end) {
      long rss = mix_rss_kb(), fds = mix_fd_count();
      printf("%8.0f %10ld %12llu %10ld %6ld %14zu\n", t - t0, rounds, (unsigned long long)calls,
             rss, fds, mallinfo2().uordblks / 1024);
      fflush(stdout);
      if (base_rss < 0) { /* the first sample is the warm-up baseline */
        base_rss = rss;
        base_fd = fds;
      } else {
        max_rss = rss > max_rss ? rss : max_rss;
        max_fd = fds > max_fd ? fds : max_fd;
        if (rss > base_rss + rss_tol || fds > base_fd + fd_tol) {
          printf(
              "soak: growth beyond tolerance: RSS %ld kB (baseline %ld), fds %ld (baseline %ld)\n",
              rss, base_rss, fds, base_fd);
          failed = 1;
        }
      }
      while (next <= t)
        next += (double)interval;
    }
    if (t >= end)
      break;
  }
  if (synchro_close(s, 5000) != 0)
    failed = 1;
  synchro_free(s);
  printf("soak: %ld rounds, %llu calls, %llu race iterations in %.0f s; baseline RSS %ld kB, "
         "fds %ld; max after: RSS %ld kB, fds %ld\n",
         rounds, (unsigned long long)calls, (unsigned long long)races, now_s() - t0, base_rss,
         base_fd, max_rss, max_fd);
  printf("soak: %s\n", failed ? "FAIL" : "PASS");
  return failed;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "stress";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(mode, "stress") == 0)
    return run_stress(argc > 2 ? atol(argv[2]) : 16, argc > 3 ? atol(argv[3]) : 1000000);
  if (strcmp(mode, "race") == 0)
    return run_race(argc > 2 ? atol(argv[2]) : 100000);
  if (strcmp(mode, "soak") == 0)
    return run_soak();
  fprintf(stderr, "usage: %s stress [THREADS [ITERS]] | soak | race [ITERS]\n", argv[0]);
  return 2;
}

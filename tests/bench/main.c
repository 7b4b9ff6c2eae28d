/* tests/bench/main.c - options, helpers, and the order the figures run in.
 *
 *   bench [--quick] [--rounds N] [--calls N] [--json FILE] [--only NAME[,NAME...]] [--list]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "bench.h"

bench_config_t bench_cfg;
static cpu_set_t all_cpus; /* the process's affinity at start: what "unpinned" means */

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int pin_self(int cpu) {
  cpu_set_t set;
  if (cpu < 0)
    return pthread_setaffinity_np(pthread_self(), sizeof(all_cpus), &all_cpus);
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int pin_loop(synchro_t *s, int cpu) {
  bench_pin_args_t args = {cpu};
  int64_t rc = -1;
  CHECK(synchro_call(s, &bench_op_pin, &args, SYNCHRO_TIMEOUT_INFINITE, &rc, NULL));
  return (int)rc;
}

long ctx_switches(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

uint64_t cpu_time_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

void die(const char *what, int rc) {
  fprintf(stderr, "bench: %s failed: %d (%s)\n", what, rc, rc < 0 ? synchro_strerror(rc) : "");
  exit(2);
}

long pick(long normal, long quick) { return bench_cfg.quick ? quick : normal; }

typedef struct {
  const char *name;
  void (*run)(void);
  const char *what;
} runner_t;

/* Floors first: every ratio is taken against a floor of this same run. The floors
 * sleep and wake once per round trip or batch, so they follow how fast this guest's
 * idle vCPUs wake, which drifts within a run; the cheap ones run again at the end and
 * their median is over the rounds from both ends. (The cross-core latency floor takes
 * seconds and only the untargeted spin-off figure is a ratio to it.) */
static const runner_t runners[] = {
    {"floor_latency_same", run_floor_latency_same, "floor: eventfd+epoll in, futex out, one CPU"},
    {"floor_latency_cross", run_floor_latency_cross, "floor: the same on two CPUs"},
    {"floor_batch", run_floor_batch, "floor: 1000 nodes on a CAS stack, one wake each way"},
    {"floor_batch_same", run_floor_batch_same, "floor: the same batch, both threads on CPU 0"},
    /* first synchro figure: the record pool is still empty */
    {"bytes_per_future", run_bytes_per_future, "library bytes per pending future (100 000)"},
    {"allocs_per_call", run_allocs_per_call, "allocator calls per blocking call, steady state"},
    {"blocking_same", run_blocking_same, "synchro_call, caller and loop on CPU 0, default options"},
    {"blocking_same_nospin", run_blocking_same_nospin, "the same with both spins off"},
    {"blocking_cross", run_blocking_cross,
     "synchro_call, caller CPU 0, loop CPU 1, default options"},
    {"blocking_cross_nospin", run_blocking_cross_nospin, "the same with both spins off"},
    {"callers_2", run_callers_2, "2 threads making blocking calls, aggregate"},
    {"callers_4", run_callers_4, "4 threads making blocking calls, aggregate"},
    {"batch_futures", run_batch_futures, "1000 synchro_submit, then synchro_future_wait_all"},
    {"batch_same", run_batch_same, "the same, caller and loop on CPU 0"},
    {"batch_cq", run_batch_cq, "1000 synchro_submit through a synchro_cq_t"},
    {"batch_many", run_batch_many, "1000 calls in one synchro_submit_many, then wait_all"},
    {"host_aio", run_host_aio, "1000 synchro_submit_then calls delivered on a host uv loop"},
    {"host_then", run_host_then, "the same with synchro_submit + synchro_future_then"},
    {"stream_items", run_stream_items, "items/s of a counting stream via synchro_stream_next"},
    {"idle", run_idle, "CPU and loop wakeups of an idle synchronizer over 2 s"},
};
#define NRUNNERS (sizeof(runners) / sizeof(runners[0]))
static const char *const floors_again[] = {"floor_latency_same", "floor_batch", "floor_batch_same"};

static bool selected(const char *name) {
  const char *p = bench_cfg.only;
  size_t len = strlen(name);
  if (p == NULL)
    return true;
  while (*p) {
    size_t n = strcspn(p, ",");
    if (n == len && strncmp(p, name, n) == 0)
      return true;
    p += n;
    if (*p == ',')
      p++;
  }
  return false;
}

static bool again(const char *name) {
  size_t i;
  for (i = 0; i < sizeof(floors_again) / sizeof(floors_again[0]); i++)
    if (strcmp(floors_again[i], name) == 0)
      return true;
  return false;
}

static void run_one(const runner_t *r, const char *suffix) {
  uint64_t t = now_ns();
  printf("  %-22s ...", r->name);
  fflush(stdout);
  r->run();
  pin_self(-1);
  printf(" %.1f s%s\n", (double)(now_ns() - t) / 1e9, suffix);
}

static void usage(FILE *out) {
  size_t i;
  fprintf(out, "usage: bench [--quick] [--rounds N] [--calls N] [--json FILE] [--only NAME,...]\n"
               "  --quick      fewer and smaller rounds (under 20 s)\n"
               "  --rounds N   rounds per figure (default 5, quick 3)\n"
               "  --calls N    calls per round of the latency and caller figures\n"
               "  --json FILE  where to write every round (default build/bench.json)\n"
               "  --only LIST  run only these (comma-separated); ratios need their floor too\n"
               "  --list       list the names\nnames:\n");
  for (i = 0; i < NRUNNERS; i++)
    fprintf(out, "  %-22s %s\n", runners[i].name, runners[i].what);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"quick", no_argument, NULL, 'q'},        {"json", required_argument, NULL, 'j'},
      {"rounds", required_argument, NULL, 'r'}, {"only", required_argument, NULL, 'o'},
      {"calls", required_argument, NULL, 'c'},  {"list", no_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  uint64_t t0;
  size_t i;
  int c;

  /* The counting allocator must see every library allocation: first synchro call. */
  CHECK(counting_allocator_install());

  bench_cfg.json = "build/bench.json";
  while ((c = getopt_long(argc, argv, "qj:r:o:c:lh", longopts, NULL)) != -1) {
    switch (c) {
    case 'q': bench_cfg.quick = true; break;
    case 'j': bench_cfg.json = optarg; break;
    case 'r': bench_cfg.rounds = atoi(optarg); break;
    case 'o': bench_cfg.only = optarg; break;
    case 'c': bench_cfg.calls = atol(optarg); break;
    case 'l': usage(stdout); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (getenv("QUICK") != NULL && strcmp(getenv("QUICK"), "0") != 0 &&
      strcmp(getenv("QUICK"), "") != 0)
    bench_cfg.quick = true;
  if (bench_cfg.rounds <= 0)
    bench_cfg.rounds = bench_cfg.quick ? 3 : 5;
  if (bench_cfg.rounds > BENCH_MAX_ROUNDS)
    bench_cfg.rounds = BENCH_MAX_ROUNDS;
  if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus) != 0)
    die("sched_getaffinity", -1);
  bench_cfg.ncpu = CPU_COUNT(&all_cpus);

  printf("synchro %s, libuv %s, %d CPUs, %d rounds per figure%s\n", synchro_version_string(),
         uv_version_string(), bench_cfg.ncpu, bench_cfg.rounds, bench_cfg.quick ? " (quick)" : "");
  t0 = now_ns();
  for (i = 0; i < NRUNNERS; i++)
    if (selected(runners[i].name))
      run_one(&runners[i], "");
  for (i = 0; i < NRUNNERS; i++)
    if (again(runners[i].name) && selected(runners[i].name))
      run_one(&runners[i], " (again)");
  report_print();
  printf("\ntotal %.1f s; figures compare as ratios within this run only.\n",
         (double)(now_ns() - t0) / 1e9);
  if (report_json(bench_cfg.json) != 0) {
    fprintf(stderr, "bench: cannot write %s\n", bench_cfg.json);
    return 1;
  }
  printf("wrote %s\n", bench_cfg.json);
  return 0;
}

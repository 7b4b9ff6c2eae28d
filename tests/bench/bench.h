/* tests/bench/bench.h - the benchmark suite's shared declarations.
 *
 * Every measurement is a "figure": a named series of rounds (one value per round),
 * reported as median, min and max, as a ratio to the floor measured in the same run
 * (the floor is a figure too), and against the target from PERFORMANCE.md. */
#ifndef SYNCHRO_BENCH_H
#define SYNCHRO_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "synchro.h"

#define BENCH_MAX_ROUNDS 64

typedef enum {
  TARGET_NONE,
  TARGET_RATIO_LE, /* median / floor <= value */
  TARGET_RATIO_GE, /* median / floor >= value */
  TARGET_ABS_LE,   /* median <= value */
  TARGET_ABS_GE,   /* median >= value */
  TARGET_ABS_LT    /* median < value */
} target_kind_t;

typedef struct {
  const char *name;  /* machine name, used by --only and in the JSON */
  const char *label; /* what the table shows */
  const char *unit;
  const char *floor; /* name of the floor figure the ratio is taken against, or NULL */
  target_kind_t target_kind;
  double target_value;
  const char *target_text;
  double rounds[BENCH_MAX_ROUNDS];
  int nrounds;
  double csw[BENCH_MAX_ROUNDS]; /* context switches per call, per round (optional) */
  int ncsw;
  const char *note; /* free text for the JSON (e.g. how the value was derived) */
} figure_t;

/* Run configuration, from the command line. */
typedef struct {
  bool quick;
  int rounds;       /* rounds per figure */
  long calls;       /* calls per round for latency figures (0: default) */
  const char *json; /* output path */
  const char *only; /* comma-separated runner names, or NULL for all */
  int ncpu;
} bench_config_t;

extern bench_config_t bench_cfg;

/* ---- report.c --------------------------------------------------------------------- */
figure_t *fig_new(const char *name, const char *label, const char *unit, const char *floor);
/* A floor's figure: a floor measured again later in the run adds to its rounds. */
figure_t *fig_floor(const char *name, const char *label, const char *unit);
void fig_target(figure_t *f, target_kind_t kind, double value, const char *text);
void fig_add(figure_t *f, double value);
void fig_add_csw(figure_t *f, double per_call);
figure_t *fig_find(const char *name);
double fig_median(const figure_t *f);
double fig_min(const figure_t *f);
double fig_max(const figure_t *f);
double stats_median(const double *v, int n);
void report_print(void);
int report_json(const char *path);

/* ---- util (main.c) ---------------------------------------------------------------- */
uint64_t now_ns(void);
/* Pins the calling thread to one CPU; cpu < 0 restores every CPU of the process. */
int pin_self(int cpu);
/* Pins `s`'s loop thread to `cpu` (< 0: every CPU) by running the pin op on it. */
int pin_loop(synchro_t *s, int cpu);
/* Voluntary + involuntary context switches of the whole process so far. */
long ctx_switches(void);
/* CPU time (user + system) of the whole process so far, in ns. */
uint64_t cpu_time_ns(void);
void die(const char *what, int rc);
#define CHECK(expr)                                                                                \
  do {                                                                                             \
    int check_rc_ = (expr);                                                                        \
    if (check_rc_ != 0)                                                                            \
      die(#expr, check_rc_);                                                                       \
  } while (0)
/* Rounds/sizes: the default value or the quick one. */
long pick(long normal, long quick);

/* ---- ops.c: implementations run on the loop ------------------------------------- */
typedef struct {
  int64_t a, b;
} bench_add_args_t;
typedef struct {
  int cpu;
} bench_pin_args_t;
typedef struct {
  int64_t n;
} bench_count_args_t;
extern const synchro_op_t bench_op_add;   /* a + b, at once */
extern const synchro_op_t bench_op_pin;   /* pins the loop thread; returns 0 or errno */
extern const synchro_op_t bench_op_never; /* finishes only when cancelled */
extern const synchro_op_t bench_op_count; /* stream of n int64 items 0..n-1 */

/* ---- memory.c: the counting allocator ---------------------------------------------- */
int counting_allocator_install(void);
typedef struct {
  int64_t live_bytes;  /* requested bytes currently allocated */
  int64_t live_usable; /* malloc_usable_size + header of what is allocated */
  int64_t allocations; /* malloc + calloc + realloc calls that allocated */
  int64_t frees;
} alloc_counts_t;
void counting_allocator_read(alloc_counts_t *out);

/* ---- the runners, one per figure group ----------------------------------------------- */
void run_floor_latency_same(void);
void run_floor_latency_cross(void);
void run_floor_batch(void);
void run_floor_batch_same(void);
void run_blocking_same(void);
void run_blocking_same_nospin(void);
void run_blocking_cross(void);
void run_blocking_cross_nospin(void);
void run_callers_2(void);
void run_callers_4(void);
void run_batch_futures(void);
void run_batch_same(void);
void run_batch_cq(void);
void run_batch_many(void);
void run_host_aio(void);
void run_host_then(void);
void run_stream_items(void);
void run_bytes_per_future(void);
void run_allocs_per_call(void);
void run_idle(void);

#endif

/* tests/bench/kv/kv_bench.c - the kv section of `make bench`: the kv module (synchro +
 * examples/kv) next to hiredis's own synchronous API, against one local redis-server,
 * in the same run.
 *
 *   kv_bench [--quick] [--rounds N] [--json FILE]
 *
 * Figures (median, min and max over the rounds; ratio = kv / hiredis):
 *   get_latency   blocking kv_client_get()  vs redisCommand(ctx, "GET %s")       ns/call
 *   set_pipeline  N kv_client_set_future() + synchro_future_wait_all()
 *                 vs N redisAppendCommand() + N redisGetReply()                 SET/s
 * Both clients talk to the same server over loopback TCP; neither is pinned. Skips (exit
 * 0) with a message when redis-server is not installed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "kv.h"
#include "kv/redis_server.h"

#define MAX_ROUNDS 32

typedef struct series_s {
  double v[MAX_ROUNDS];
  int n;
} series_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const series_t *s) {
  double t[MAX_ROUNDS];
  memcpy(t, s->v, sizeof(double) * (size_t)s->n);
  qsort(t, (size_t)s->n, sizeof(double), cmp_double);
  return s->n % 2 ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}

static double min_of(const series_t *s) {
  double m = s->v[0];
  for (int i = 1; i < s->n; i++)
    m = s->v[i] < m ? s->v[i] : m;
  return m;
}

static double max_of(const series_t *s) {
  double m = s->v[0];
  for (int i = 1; i < s->n; i++)
    m = s->v[i] > m ? s->v[i] : m;
  return m;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "kv_bench: %s failed: %d (%s)\n", what, rc, rc < 0 ? kv_strerror(rc) : "");
  exit(2);
}

/* ---- the four measurements ------------------------------------------------------------ */

static double kv_get_ns(kv_client_t *c, long calls) {
  char *v = NULL;
  uint64_t t0 = uv_hrtime();
  int rc;
  for (long i = 0; i < calls; i++) {
    if ((rc = kv_client_get(c, "bench:key", &v, NULL)) != 0)
      die("kv_client_get", rc);
    synchro_mem_free(v);
  }
  return (double)(uv_hrtime() - t0) / (double)calls;
}

static double hiredis_get_ns(redisContext *ctx, long calls) {
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < calls; i++) {
    redisReply *r = redisCommand(ctx, "GET %s", "bench:key");
    if (r == NULL || r->type != REDIS_REPLY_STRING)
      die("redisCommand GET", -1);
    freeReplyObject(r);
  }
  return (double)(uv_hrtime() - t0) / (double)calls;
}

static double kv_set_rate(kv_client_t *c, synchro_future_t **fs, long n) {
  char key[32];
  uint64_t t0 = uv_hrtime();
  int rc;
  for (long i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "bench:p:%ld", i);
    if ((rc = kv_client_set_future(c, key, "value", &fs[i])) != 0)
      die("kv_client_set_future", rc);
  }
  if ((rc = synchro_future_wait_all(fs, (size_t)n, 60000)) != 0)
    die("synchro_future_wait_all", rc);
  for (long i = 0; i < n; i++) {
    if ((rc = kv_client_set_result(fs[i])) != 0)
      die("kv_client_set_result", rc);
    synchro_future_free(fs[i]);
  }
  return (double)n / ((double)(uv_hrtime() - t0) / 1e9);
}

static double hiredis_set_rate(redisContext *ctx, long n) {
  char key[32];
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "bench:p:%ld", i);
    if (redisAppendCommand(ctx, "SET %s %s", key, "value") != REDIS_OK)
      die("redisAppendCommand", -1);
  }
  for (long i = 0; i < n; i++) {
    void *r = NULL;
    if (redisGetReply(ctx, &r) != REDIS_OK || r == NULL ||
        ((redisReply *)r)->type != REDIS_REPLY_STATUS)
      die("redisGetReply", -1);
    freeReplyObject(r);
  }
  return (double)n / ((double)(uv_hrtime() - t0) / 1e9);
}

/* ---- report ---------------------------------------------------------------------------- */

static void row(const char *label, const series_t *s, const char *unit) {
  printf("  %-44s %12.0f %12.0f %12.0f  %s\n", label, median(s), min_of(s), max_of(s), unit);
}

static void json_series(FILE *f, const char *name, const series_t *s, int last) {
  fprintf(f, "    \"%s\": [", name);
  for (int i = 0; i < s->n; i++)
    fprintf(f, "%s%.1f", i ? ", " : "", s->v[i]);
  fprintf(f, "]%s\n", last ? "" : ",");
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"quick", no_argument, NULL, 'q'},
                                           {"rounds", required_argument, NULL, 'r'},
                                           {"json", required_argument, NULL, 'j'},
                                           {NULL, 0, NULL, 0}};
  const char *json = "build/bench-kv.json";
  int quick = 0, rounds = 0, opt, rc;
  long calls, batch;
  redis_server_t srv;
  redisContext *ctx;
  struct timeval tv = {5, 0};
  synchro_t *sync = NULL;
  kv_client_t *c = NULL;
  synchro_error_t *err = NULL;
  synchro_future_t **fs;
  series_t kv_get = {{0}, 0}, hr_get = {{0}, 0}, kv_set = {{0}, 0}, hr_set = {{0}, 0};
  char ratio[64];
  FILE *f;

  while ((opt = getopt_long(argc, argv, "qr:j:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'q': quick = 1; break;
    case 'r': rounds = atoi(optarg); break;
    case 'j': json = optarg; break;
    default: fprintf(stderr, "usage: kv_bench [--quick] [--rounds N] [--json FILE]\n"); return 2;
    }
  }
  if (rounds <= 0)
    rounds = quick ? 3 : 5;
  if (rounds > MAX_ROUNDS)
    rounds = MAX_ROUNDS;
  calls = quick ? 5000 : 20000;
  batch = quick ? 20000 : 100000;

  printf("\nkv bench (examples/kv vs hiredis %d.%d.%d, one local redis-server)\n", HIREDIS_MAJOR,
         HIREDIS_MINOR, HIREDIS_PATCH);
  if (!redis_server_available()) {
    printf("  skipped: redis-server is not installed (make deps, or apt-get install "
           "redis-server)\n");
    return 0;
  }
  memset(&srv, 0, sizeof(srv));
  if (redis_server_start(&srv, 0) != 0) {
    printf("  skipped: redis-server would not start\n");
    return 0;
  }
  if ((fs = calloc((size_t)batch, sizeof(*fs))) == NULL)
    die("calloc", -1);
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = kv_use_synchronizer(sync)) != 0)
    die("synchro_new", rc);
  if ((rc = kv_client_new("127.0.0.1", srv.port, 60000, 0, &c, &err)) != 0 ||
      (rc = kv_client_open(c, &err)) != 0)
    die(synchro_error_message(err), rc);
  ctx = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
  if (ctx == NULL || ctx->err)
    die("redisConnect", -1);
  if (kv_client_set(c, "bench:key", "a value of some 24 bytes", NULL) != 0)
    die("kv_client_set", -1);

  printf("  %d rounds; %ld blocking GETs per round, %ld pipelined SETs per round\n", rounds, calls,
         batch);
  kv_get_ns(c, calls / 10); /* warm-up */
  hiredis_get_ns(ctx, calls / 10);
  for (int i = 0; i < rounds; i++) { /* interleaved, so drift hits both alike */
    kv_get.v[kv_get.n++] = kv_get_ns(c, calls);
    hr_get.v[hr_get.n++] = hiredis_get_ns(ctx, calls);
    kv_set.v[kv_set.n++] = kv_set_rate(c, fs, batch);
    hr_set.v[hr_set.n++] = hiredis_set_rate(ctx, batch);
  }

  printf("  %-44s %12s %12s %12s  %s\n", "figure", "median", "min", "max", "unit");
  row("GET latency, blocking kv_client_get", &kv_get, "ns/call");
  snprintf(ratio, sizeof(ratio), "%.2fx (lower is better)", median(&kv_get) / median(&hr_get));
  row("GET latency, hiredis redisCommand", &hr_get, "ns/call");
  printf("  %-44s %s\n", "  ratio kv / hiredis", ratio);
  row("SET pipelined, kv set_future + wait_all", &kv_set, "SET/s");
  row("SET pipelined, hiredis Append + GetReply", &hr_set, "SET/s");
  snprintf(ratio, sizeof(ratio), "%.2fx (higher is better)", median(&kv_set) / median(&hr_set));
  printf("  %-44s %s\n", "  ratio kv / hiredis", ratio);

  if ((f = fopen(json, "w")) != NULL) {
    fprintf(f, "{\n  \"hiredis\": \"%d.%d.%d\",\n  \"libuv\": \"%s\",\n  \"rounds\": {\n",
            HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, uv_version_string());
    json_series(f, "kv_get_ns", &kv_get, 0);
    json_series(f, "hiredis_get_ns", &hr_get, 0);
    json_series(f, "kv_set_per_s", &kv_set, 0);
    json_series(f, "hiredis_set_per_s", &hr_set, 1);
    fprintf(f, "  },\n  \"get_latency_ratio\": %.3f,\n  \"set_throughput_ratio\": %.3f\n}\n",
            median(&kv_get) / median(&hr_get), median(&kv_set) / median(&hr_set));
    fclose(f);
    printf("  wrote %s\n", json);
  }

  redisFree(ctx);
  kv_client_free(c);
  synchro_close(sync, 1000);
  synchro_free(sync);
  free(fs);
  redis_server_stop(&srv);
  return 0;
}

/* examples/kv/kv_load.c - a pipelined loader: N kv_client_set_future() calls at once.
 *
 *   kv_load [-h HOST] [-p PORT] [-n COUNT] [-c]
 *
 * Starts COUNT (100 000) SETs of load:<i> = v<i> without waiting for any, then waits for
 * all of them with synchro_future_wait_all() (or, with -c, takes them from a completion
 * queue in the order they finish). The implementation writes the burst of commands in a
 * few large writes and matches the replies in order, so this is Redis pipelining,
 * written as plain futures. Prints the rate, checks a few keys back with MGET, and
 * deletes what it wrote. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "kv.h"

static int report(const char *what, int rc, synchro_error_t *err) {
  fprintf(stderr, "kv_load: %s: %s\n", what,
          err != NULL ? synchro_error_message(err) : kv_strerror(rc));
  synchro_error_free(err);
  return 1;
}

/* Starts every SET; returns how many were started. */
static size_t start_all(kv_client_t *c, synchro_future_t **fs, size_t n) {
  char key[32], value[32];
  size_t i;
  int rc;

  for (i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "load:%zu", i);
    snprintf(value, sizeof(value), "v%zu", i);
    if ((rc = kv_client_set_future(c, key, value, &fs[i])) != 0) {
      report("kv_client_set_future", rc, NULL);
      break;
    }
  }
  return i;
}

/* Waits for all with one wait_all; returns how many failed. */
static size_t wait_all(synchro_future_t **fs, size_t n) {
  size_t bad = 0;
  int rc;

  if ((rc = synchro_future_wait_all(fs, n, 120000)) != 0) {
    report("synchro_future_wait_all", rc, NULL);
    return n;
  }
  for (size_t i = 0; i < n; i++) {
    if ((rc = kv_client_set_result(fs[i])) != 0 && bad++ == 0)
      report("a SET", rc, NULL);
    synchro_future_free(fs[i]);
  }
  return bad;
}

/* Hands every future to a completion queue and takes them back as they finish. */
static size_t wait_cq(synchro_future_t **fs, size_t n) {
  synchro_cq_t *cq = NULL;
  synchro_future_t *f;
  size_t bad = 0, taken = 0;
  int rc;

  if ((rc = synchro_cq_new(&cq)) != 0) {
    report("synchro_cq_new", rc, NULL);
    return n;
  }
  for (size_t i = 0; i < n; i++)
    synchro_cq_add(cq, fs[i]);
  while (taken < n && synchro_cq_next(cq, 120000, &f) == 0) {
    taken++;
    if ((rc = kv_client_set_result(f)) != 0 && bad++ == 0)
      report("a SET", rc, NULL);
    synchro_future_free(f);
  }
  synchro_cq_free(cq);
  return bad + (n - taken);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"host", required_argument, NULL, 'h'},  {"port", required_argument, NULL, 'p'},
      {"count", required_argument, NULL, 'n'}, {"cq", no_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'H'},        {NULL, 0, NULL, 0}};
  const char *host = "127.0.0.1";
  long port = 6379, count = 100000;
  int use_cq = 0, opt, rc, status = 0;
  synchro_t *sync = NULL;
  kv_client_t *c = NULL;
  synchro_error_t *err = NULL;
  synchro_future_t **fs;
  size_t started, bad;
  uint64_t t0;
  double secs;

  while ((opt = getopt_long(argc, argv, "h:p:n:c", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h': host = optarg; break;
    case 'p': port = strtol(optarg, NULL, 10); break;
    case 'n': count = strtol(optarg, NULL, 10); break;
    case 'c': use_cq = 1; break;
    case 'H': printf("usage: kv_load [-h HOST] [-p PORT] [-n COUNT] [-c|--cq]\n"); return 0;
    default: fprintf(stderr, "usage: kv_load [-h HOST] [-p PORT] [-n COUNT] [-c|--cq]\n"); return 2;
    }
  }
  if (count < 1 || (fs = calloc((size_t)count, sizeof(*fs))) == NULL) {
    fprintf(stderr, "kv_load: bad count\n");
    return 2;
  }
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = kv_use_synchronizer(sync)) != 0) {
    free(fs);
    synchro_free(sync);
    return report("synchro_new", rc, NULL);
  }
  if ((rc = kv_client_new(host, port, 10000, 2, &c, &err)) != 0 ||
      (rc = kv_client_open(c, &err)) != 0) {
    status = report("connect", rc, err);
    goto out;
  }

  t0 = uv_hrtime();
  started = start_all(c, fs, (size_t)count);
  bad = use_cq ? wait_cq(fs, started) : wait_all(fs, started);
  secs = (double)(uv_hrtime() - t0) / 1e9;
  printf("%zu SETs (%s) in %.3f s: %.0f SET/s, %zu failed\n", started,
         use_cq ? "futures, completion queue" : "futures, wait_all", secs, (double)started / secs,
         bad);
  if (bad != 0 || started != (size_t)count)
    status = 1;

  { /* read a few back, then delete everything this wrote */
    char last[32];
    const char *keys[3] = {"load:0", "load:1", last};
    kv_string_array_t v = {NULL, 0};
    snprintf(last, sizeof(last), "load:%ld", count - 1);
    if ((rc = kv_client_mget(c, keys, 3, &v, &err)) != 0) {
      status = report("mget", rc, err);
    } else {
      printf("MGET load:0 load:1 %s -> %s %s %s\n", last, v.items[0] ? v.items[0] : "(nil)",
             v.items[1] ? v.items[1] : "(nil)", v.items[2] ? v.items[2] : "(nil)");
      kv_string_array_free(&v);
    }
  }
  {
    int64_t deleted = 0, total = 0;
    char **keys = calloc(1000, sizeof(*keys));
    for (long i = 0; keys != NULL && i < count; i += 1000) {
      long j, m = count - i < 1000 ? count - i : 1000;
      for (j = 0; j < m; j++) {
        keys[j] = malloc(32);
        snprintf(keys[j], 32, "load:%ld", i + j);
      }
      if (kv_client_del(c, (const char *const *)keys, (size_t)m, &deleted, NULL) == 0)
        total += deleted;
      for (j = 0; j < m; j++)
        free(keys[j]);
    }
    free(keys);
    printf("deleted %" PRId64 " keys\n", total);
  }
  kv_client_close(c, NULL);
out:
  kv_client_free(c);
  synchro_close(sync, 1000);
  synchro_free(sync);
  free(fs);
  return status;
}

/* examples/http/http_gather.c - many requests at once, then wait for all of them: the
 * asyncio.gather() pattern with futures.
 *
 *   http_gather BASE_URL [N [PATH]]      (N defaults to 100, PATH to /json)
 *
 * Starts N http_client_get_json_future() calls for PATH?id=0 .. PATH?id=N-1 without
 * waiting, then waits for all with synchro_future_wait_all(). The transfers run
 * concurrently on one curl multi handle on the synchronizer's loop thread (at most
 * HTTP_MAX_HOST_CONNECTIONS connections per host; curl queues the rest). Checks that
 * every answer carries its own id; exits 1 if any request failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http.h"

int main(int argc, char **argv) {
  const char *base = argc > 1 ? argv[1] : NULL;
  long n = argc > 2 ? atol(argv[2]) : 100;
  const char *path = argc > 3 ? argv[3] : "/json";
  synchro_t *sync = NULL;
  http_client_t *client = NULL;
  synchro_future_t **fs;
  synchro_error_t *err = NULL;
  long i, ok = 0, started = 0;
  uint64_t t0;
  int rc;

  if (base == NULL || n < 1) {
    fprintf(stderr, "usage: http_gather BASE_URL [N [PATH]]\n");
    return 2;
  }
  if ((fs = calloc((size_t)n, sizeof(*fs))) == NULL)
    return 1;
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = http_use_synchronizer(sync)) != 0 ||
      (rc = http_client_new(base, 10000, 2, NULL, &client, &err)) != 0 ||
      (rc = http_client_open(client, &err)) != 0) {
    fprintf(stderr, "http_gather: setup failed: %s\n",
            err != NULL ? synchro_error_message(err) : synchro_strerror(rc));
    synchro_error_free(err);
    http_client_free(client);
    if (sync != NULL) {
      synchro_close(sync, 1000);
      synchro_free(sync);
    }
    free(fs);
    return 1;
  }

  t0 = uv_hrtime();
  for (i = 0; i < n; i++) {
    char p[512];
    snprintf(p, sizeof(p), "%s%sid=%ld", path, strchr(path, '?') != NULL ? "&" : "?", i);
    if ((rc = http_client_get_json_future(client, p, &fs[i])) != 0) {
      fprintf(stderr, "http_gather: request %ld not started: %s\n", i, synchro_strerror(rc));
      break;
    }
    started++;
  }
  printf("started %ld requests in %.1f ms\n", started, (double)(uv_hrtime() - t0) / 1e6);
  rc = synchro_future_wait_all(fs, (size_t)started, 60000);
  printf("all %ld resolved in %.1f ms (wait_all: %s)\n", started, (double)(uv_hrtime() - t0) / 1e6,
         rc == 0 ? "ok" : synchro_err_name(rc));

  for (i = 0; i < started; i++) {
    json_t *doc = NULL;
    int st = http_client_get_json_result(fs[i], &doc);
    if (st == 0 && json_integer_value(json_object_get(doc, "id")) == i)
      ok++;
    else if (ok + 5 > i) { /* print the first few failures */
      const synchro_error_t *e = synchro_future_error(fs[i]);
      fprintf(stderr, "  request %ld: %s\n", i,
              st != 0 ? (e != NULL ? synchro_error_message(e) : synchro_strerror(st))
                      : "wrong id in the answer");
    }
    json_decref(doc);
    synchro_future_free(fs[i]);
  }
  printf("%ld/%ld succeeded\n", ok, n);

  http_client_close(client, NULL);
  http_client_free(client);
  synchro_close(sync, 1000);
  synchro_free(sync);
  free(fs);
  return ok == n ? 0 : 1;
}

/* examples/http/http_get.c - a blocking CLI: fetch one path from an API, pretty-print it.
 *
 *   http_get [--raw] [--token T] [--timeout MS] [--retries N] BASE_URL PATH
 *
 * Calls the http module's blocking wrappers (http_client_get_json(), or http_client_get()
 * with --raw) from main(): the request itself runs on the synchronizer's loop thread
 * (libcurl's multi interface on libuv, examples/http/http_impl.c). Prints the JSON with
 * json_dumps(JSON_INDENT(2)), or the raw bytes; on an error prints its message, its
 * code and its JSON details, and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static const char *code_name(int rc) {
  switch (rc) {
  case HTTP_ENOT_FOUND: return "HTTP_ENOT_FOUND";
  case HTTP_ERATE_LIMITED: return "HTTP_ERATE_LIMITED";
  case HTTP_ESERVER: return "HTTP_ESERVER";
  case HTTP_ETIMEOUT: return "HTTP_ETIMEOUT";
  case HTTP_ETRANSPORT: return "HTTP_ETRANSPORT";
  default: return synchro_err_name(rc);
  }
}

static void report(const char *what, int rc, const synchro_error_t *err) {
  json_t *details = synchro_error_details(err);
  char *text = details != NULL ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

  fprintf(stderr, "http_get: %s: %s (%s)%s%s\n", what,
          err != NULL ? synchro_error_message(err) : http_strerror(rc), code_name(rc),
          text != NULL ? " " : "", text != NULL ? text : "");
  free(text);
}

static int usage(void) {
  fprintf(stderr, "usage: http_get [--raw] [--token T] [--timeout MS] [--retries N] "
                  "BASE_URL PATH\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *token = NULL, *base = NULL, *path = NULL;
  int64_t timeout_ms = 10000, retries = 2;
  int raw = 0, rc, status = 0, i;
  synchro_t *sync = NULL;
  http_client_t *client = NULL;
  synchro_error_t *err = NULL;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--raw") == 0)
      raw = 1;
    else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
      token = argv[++i];
    else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
      timeout_ms = atoll(argv[++i]);
    else if (strcmp(argv[i], "--retries") == 0 && i + 1 < argc)
      retries = atoll(argv[++i]);
    else if (argv[i][0] == '-')
      return usage();
    else if (base == NULL)
      base = argv[i];
    else if (path == NULL)
      path = argv[i];
    else
      return usage();
  }
  if (base == NULL || path == NULL)
    return usage();

  /* Our own synchronizer, so that the program can shut it down and free everything. */
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = http_use_synchronizer(sync)) != 0) {
    fprintf(stderr, "http_get: no synchronizer: %s\n", synchro_strerror(rc));
    synchro_free(sync);
    return 1;
  }
  if ((rc = http_client_new(base, timeout_ms, retries, token, &client, &err)) != 0) {
    report("http_client_new", rc, err);
    status = 1;
  } else if ((rc = http_client_open(client, &err)) != 0) {
    report("http_client_open", rc, err);
    status = 1;
  } else if (raw) {
    http_bytes_t body = {NULL, 0};
    if ((rc = http_client_get(client, path, &body, &err)) != 0) {
      report(path, rc, err);
      status = 1;
    } else {
      fwrite(body.data, 1, body.len, stdout);
      synchro_mem_free(body.data);
    }
  } else {
    json_t *doc = NULL;
    if ((rc = http_client_get_json(client, path, &doc, &err)) != 0) {
      report(path, rc, err);
      status = 1;
    } else {
      char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY);
      printf("%s\n", text != NULL ? text : "(cannot print)");
      free(text);
      json_decref(doc);
    }
  }
  synchro_error_free(err);
  if (client != NULL) {
    http_client_close(client, NULL); /* releases the multi handle and its connections */
    http_client_free(client);
  }
  synchro_close(sync, 1000);
  synchro_free(sync);
  return status;
}

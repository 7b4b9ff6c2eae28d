/* examples/kv/kv_cli.c - a blocking Redis command line on the kv module.
 *
 *   kv [-h HOST] [-p PORT] [-t TIMEOUT_MS] get KEY
 *   kv ... set KEY VALUE | incr KEY | del KEY... | mget KEY... | scan [PATTERN]
 *
 * Every command is one blocking call (kv_client_get(), ...): the async implementation
 * runs on the synchronizer's loop thread while this thread waits. A missing key prints
 * (nil). Errors go to stderr with the module's code name; the exit status is then 1
 * (2 for a usage error). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

static const char *code_name(int rc) {
  switch (rc) {
  case KV_ESERVER: return "KV_ESERVER";
  case KV_EDISCONNECTED: return "KV_EDISCONNECTED";
  case KV_ETIMEOUT: return "KV_ETIMEOUT";
  case KV_EPROTOCOL: return "KV_EPROTOCOL";
  default: return synchro_err_name(rc);
  }
}

static int failed(const char *what, int rc, synchro_error_t *err) {
  fprintf(stderr, "kv: %s: %s (%s)\n", what,
          err != NULL ? synchro_error_message(err) : kv_strerror(rc), code_name(rc));
  synchro_error_free(err);
  return 1;
}

static void usage(FILE *out) {
  fprintf(out, "usage: kv [-h HOST] [-p PORT] [-t TIMEOUT_MS] COMMAND ARGS...\n"
               "  get KEY            the value, or (nil)\n"
               "  set KEY VALUE      OK\n"
               "  incr KEY           the new value\n"
               "  del KEY...         how many keys existed\n"
               "  mget KEY...        one line per key: the value or (nil)\n"
               "  scan [PATTERN]     every key (matching PATTERN), one per line\n"
               "options: -h, --host HOST (127.0.0.1); -p, --port PORT (6379);\n"
               "         -t, --timeout MS (2000); --help\n");
}

/* Runs one command on an open client; returns the exit status. */
static int run(kv_client_t *c, const char *cmd, int argc, char **argv) {
  synchro_error_t *err = NULL;
  int rc;

  if (strcmp(cmd, "get") == 0 && argc == 1) {
    char *value = NULL;
    if ((rc = kv_client_get(c, argv[0], &value, &err)) != 0)
      return failed("get", rc, err);
    printf("%s\n", value != NULL ? value : "(nil)");
    synchro_mem_free(value);
  } else if (strcmp(cmd, "set") == 0 && argc == 2) {
    if ((rc = kv_client_set(c, argv[0], argv[1], &err)) != 0)
      return failed("set", rc, err);
    printf("OK\n");
  } else if (strcmp(cmd, "incr") == 0 && argc == 1) {
    int64_t value = 0;
    if ((rc = kv_client_incr(c, argv[0], &value, &err)) != 0)
      return failed("incr", rc, err);
    printf("%" PRId64 "\n", value);
  } else if (strcmp(cmd, "del") == 0 && argc >= 1) {
    int64_t n = 0;
    if ((rc = kv_client_del(c, (const char *const *)argv, (size_t)argc, &n, &err)) != 0)
      return failed("del", rc, err);
    printf("%" PRId64 "\n", n);
  } else if (strcmp(cmd, "mget") == 0 && argc >= 1) {
    kv_string_array_t values = {NULL, 0};
    if ((rc = kv_client_mget(c, (const char *const *)argv, (size_t)argc, &values, &err)) != 0)
      return failed("mget", rc, err);
    for (size_t i = 0; i < values.count; i++)
      printf("%s\n", values.items[i] != NULL ? values.items[i] : "(nil)");
    kv_string_array_free(&values);
  } else if (strcmp(cmd, "scan") == 0 && argc <= 1) {
    kv_client_scan_stream_t *st = NULL;
    char *key = NULL;
    if ((rc = kv_client_scan_open(c, argc == 1 ? argv[0] : NULL, &st)) != 0)
      return failed("scan", rc, NULL);
    while ((rc = kv_client_scan_next(st, &key, SYNCHRO_TIMEOUT_INFINITE)) == 0) {
      printf("%s\n", key);
      synchro_mem_free(key);
    }
    if (rc != SYNCHRO_EEND) {
      const synchro_error_t *e = kv_client_scan_error(st);
      fprintf(stderr, "kv: scan: %s (%s)\n", e != NULL ? synchro_error_message(e) : kv_strerror(rc),
              code_name(rc));
      kv_client_scan_close(st);
      return 1;
    }
    kv_client_scan_close(st);
  } else {
    usage(stderr);
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                           {"port", required_argument, NULL, 'p'},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"help", no_argument, NULL, 'H'},
                                           {NULL, 0, NULL, 0}};
  const char *host = "127.0.0.1";
  long port = 6379, timeout_ms = 2000;
  synchro_t *sync = NULL;
  kv_client_t *c = NULL;
  synchro_error_t *err = NULL;
  int opt, rc, status;

  while ((opt = getopt_long(argc, argv, "h:p:t:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h': host = optarg; break;
    case 'p': port = strtol(optarg, NULL, 10); break;
    case 't': timeout_ms = strtol(optarg, NULL, 10); break;
    case 'H': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return 2;
  }
  /* The module would make its own synchronizer on first use; owning one lets the
   * program shut it down and free everything before it exits. */
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = kv_use_synchronizer(sync)) != 0) {
    fprintf(stderr, "kv: no synchronizer: %s\n", synchro_strerror(rc));
    synchro_free(sync);
    return 1;
  }
  if ((rc = kv_client_new(host, port, timeout_ms, 2, &c, &err)) != 0) {
    status = failed("bad arguments", rc, err);
  } else if ((rc = kv_client_open(c, &err)) != 0) {
    status = failed("connect", rc, err);
  } else {
    status = run(c, argv[optind], argc - optind - 1, argv + optind + 1);
    kv_client_close(c, NULL);
  }
  kv_client_free(c);
  synchro_close(sync, 1000);
  synchro_free(sync);
  return status;
}

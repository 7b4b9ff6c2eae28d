/* bridge/main.c - the command line: bridge generate|check|validate SPEC.json. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "emit.h"
#include "spec.h"

/* Exit codes, documented in --help. */
enum {
  EXIT_OK = 0,
  EXIT_DRIFT = 1,
  EXIT_USAGE = 2,
  EXIT_INVALID_SPEC = 3,
  EXIT_IO = 4,
};

/* The name the tool was run as ("bridge" in the tree, "synchro-bridge" installed). */
static const char *progname = "bridge";

static void print_usage(void) {
  printf("usage: %s generate SPEC.json -o DIR   write DIR/MOD.h, DIR/MOD.c, DIR/MOD_impl.h\n"
         "       %s check SPEC.json -o DIR      fail (with a diff) if DIR's files are stale\n"
         "       %s validate SPEC.json          parse and validate only; silent when valid\n"
         "       %s --help | --version\n",
         progname, progname, progname, progname);
  fputs("\n"
        "options:\n"
        "  -o, --output DIR   where generated files are written or compared (created by\n"
        "                     generate if missing)\n"
        "  -h, --help         show this help\n"
        "  -V, --version      show the version\n"
        "\n"
        "exit status:\n"
        "  0  ok\n"
        "  1  check found drift between the spec and DIR\n"
        "  2  usage error\n"
        "  3  invalid spec (or a feature this version cannot generate)\n"
        "  4  I/O error\n"
        "\n"
        "Spec errors name the file and the JSON Pointer of the offending value, e.g.\n"
        "  kv.json: /functions/2/args/0/type: unknown type \"strng\"; expected ...\n"
        "The spec format is described in docs/spec.md.\n",
        stdout);
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", progname);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry '%s --help'.\n", progname);
  return EXIT_USAGE;
}

/* Prints a spec error as FILE:LINE:COL: text (syntax) or FILE: /path: text. */
static void print_spec_error(const char *file, const bridge_error_t *err) {
  if (err->line > 0)
    fprintf(stderr, "%s:%d:%d: %s\n", file, err->line, err->column, err->text);
  else if (err->path[0] != '\0')
    fprintf(stderr, "%s: %s: %s\n", file, err->path, err->text);
  else
    fprintf(stderr, "%s: %s\n", file, err->text);
}

/* Loads and validates a spec file. Returns EXIT_OK with *out set, or an exit code. */
static int load_spec(const char *file, bridge_spec_t **out) {
  bridge_error_t err;
  char *text;
  size_t len;
  int rc;

  rc = bridge_read_file(file, &text, &len);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot read %s: %s\n", progname, file, strerror(-rc));
    return EXIT_IO;
  }
  rc = bridge_spec_parse(text, len, out, &err);
  free(text);
  if (rc != 0) {
    print_spec_error(file, &err);
    return EXIT_INVALID_SPEC;
  }
  return EXIT_OK;
}

/* Fails with the spec path of a feature that cannot be generated yet. */
static int require_supported(const char *file, const bridge_spec_t *spec) {
  bridge_error_t err;

  if (bridge_check_supported(spec, &err) == 0)
    return EXIT_OK;
  print_spec_error(file, &err);
  return EXIT_INVALID_SPEC;
}

static int run_generate(const char *file, const bridge_spec_t *spec, const char *dir) {
  int rc = require_supported(file, spec);

  if (rc != EXIT_OK)
    return rc;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "%s: cannot create %s: %s\n", progname, dir, strerror(errno));
    return EXIT_IO;
  }
  rc = bridge_emit(spec, dir);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot write into %s: %s\n", progname, dir, strerror(-rc));
    return EXIT_IO;
  }
  return EXIT_OK;
}

static int run_check(const char *file, const bridge_spec_t *spec, const char *dir) {
  int rc = require_supported(file, spec);

  if (rc != EXIT_OK)
    return rc;
  rc = bridge_check(spec, dir);
  if (rc == 1)
    fprintf(stderr, "%s: %s is out of date with %s; run: %s generate %s -o %s\n", progname, dir,
            file, progname, file, dir);
  return rc < 0 ? EXIT_IO : rc;
}

/* The command line, once parsed. */
typedef struct cli_s {
  const char *command;
  const char *spec;
  const char *output;
} cli_t;

/* Parses options; returns -1 to go on, else an exit code (for --help, --version and
 * usage errors). */
static int parse_cli(int argc, char **argv, cli_t *cli) {
  static const struct option options[] = {
      {"output", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  int c;

  memset(cli, 0, sizeof(*cli));
  opterr = 0; /* our own messages */
  while ((c = getopt_long(argc, argv, "+:o:hV", options, NULL)) != -1 || optind < argc) {
    if (c == -1) {
      /* "+" stops at operands: take one and keep parsing, so options may follow */
      if (cli->command == NULL)
        cli->command = argv[optind];
      else if (cli->spec == NULL)
        cli->spec = argv[optind];
      else
        return usage_error("unexpected argument '%s'", argv[optind]);
      optind++;
      continue;
    }
    switch (c) {
    case 'o': cli->output = optarg; break;
    case 'h': print_usage(); return EXIT_OK;
    case 'V': printf("%s (synchro) %s\n", progname, BRIDGE_VERSION); return EXIT_OK;
    case ':': return usage_error("option '%s' needs an argument", argv[optind - 1]);
    default: return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  return -1;
}

/* Checks that the command got what it needs. Returns -1 if so, else an exit code. */
static int check_cli(const cli_t *cli) {
  bool wants_output;

  if (cli->command == NULL)
    return usage_error("%s", "missing command: generate, check or validate");
  if (strcmp(cli->command, "generate") != 0 && strcmp(cli->command, "check") != 0 &&
      strcmp(cli->command, "validate") != 0)
    return usage_error("unknown command '%s'; expected generate, check or validate", cli->command);
  if (cli->spec == NULL)
    return usage_error("%s: missing SPEC.json", cli->command);
  wants_output = strcmp(cli->command, "validate") != 0;
  if (wants_output && cli->output == NULL)
    return usage_error("%s: missing -o DIR", cli->command);
  if (!wants_output && cli->output != NULL)
    return usage_error("%s: -o is not used by validate", cli->command);
  return -1;
}

int main(int argc, char **argv) {
  bridge_spec_t *spec;
  cli_t cli;
  int rc;

  if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
    const char *slash = strrchr(argv[0], '/');
    progname = slash != NULL ? slash + 1 : argv[0];
  }
  rc = parse_cli(argc, argv, &cli);
  if (rc < 0)
    rc = check_cli(&cli);
  if (rc >= 0)
    return rc;
  rc = load_spec(cli.spec, &spec);
  if (rc != EXIT_OK)
    return rc;
  if (strcmp(cli.command, "generate") == 0)
    rc = run_generate(cli.spec, spec, cli.output);
  else if (strcmp(cli.command, "check") == 0)
    rc = run_check(cli.spec, spec, cli.output);
  bridge_spec_free(spec);
  return rc;
}

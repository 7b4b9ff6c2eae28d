/* tests/bench/report.c - medians, the table, and the JSON file. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "bench.h"

#define MAX_FIGURES 64

static figure_t figures[MAX_FIGURES];
static int nfigures;

figure_t *fig_new(const char *name, const char *label, const char *unit, const char *floor) {
  figure_t *f;
  if (nfigures == MAX_FIGURES)
    die("too many figures", -1);
  f = &figures[nfigures++];
  memset(f, 0, sizeof(*f));
  f->name = name;
  f->label = label;
  f->unit = unit;
  f->floor = floor;
  return f;
}

figure_t *fig_floor(const char *name, const char *label, const char *unit) {
  figure_t *f = fig_find(name);
  return f != NULL ? f : fig_new(name, label, unit, NULL);
}

void fig_target(figure_t *f, target_kind_t kind, double value, const char *text) {
  f->target_kind = kind;
  f->target_value = value;
  f->target_text = text;
}

void fig_add(figure_t *f, double value) {
  if (f->nrounds < BENCH_MAX_ROUNDS)
    f->rounds[f->nrounds++] = value;
}

void fig_add_csw(figure_t *f, double per_call) {
  if (f->ncsw < BENCH_MAX_ROUNDS)
    f->csw[f->ncsw++] = per_call;
}

figure_t *fig_find(const char *name) {
  int i;
  for (i = 0; i < nfigures; i++)
    if (strcmp(figures[i].name, name) == 0)
      return &figures[i];
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double stats_median(const double *v, int n) {
  double tmp[BENCH_MAX_ROUNDS];
  if (n <= 0)
    return NAN;
  memcpy(tmp, v, (size_t)n * sizeof(double));
  qsort(tmp, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

double fig_median(const figure_t *f) { return stats_median(f->rounds, f->nrounds); }

double fig_min(const figure_t *f) {
  double m = NAN;
  int i;
  for (i = 0; i < f->nrounds; i++)
    if (i == 0 || f->rounds[i] < m)
      m = f->rounds[i];
  return m;
}

double fig_max(const figure_t *f) {
  double m = NAN;
  int i;
  for (i = 0; i < f->nrounds; i++)
    if (i == 0 || f->rounds[i] > m)
      m = f->rounds[i];
  return m;
}

/* The ratio to the figure's floor in this run, NAN without one. */
static double fig_ratio(const figure_t *f) {
  const figure_t *fl = f->floor != NULL ? fig_find(f->floor) : NULL;
  if (fl == NULL || fl->nrounds == 0 || f->nrounds == 0)
    return NAN;
  return fig_median(f) / fig_median(fl);
}

/* 1 met, 0 missed, -1 no target or cannot tell (no floor in this run). */
static int fig_met(const figure_t *f) {
  double m = fig_median(f), r = fig_ratio(f);
  if (f->nrounds == 0)
    return -1;
  switch (f->target_kind) {
  case TARGET_RATIO_LE: return isnan(r) ? -1 : r <= f->target_value;
  case TARGET_RATIO_GE: return isnan(r) ? -1 : r >= f->target_value;
  case TARGET_ABS_LE: return m <= f->target_value;
  case TARGET_ABS_GE: return m >= f->target_value;
  case TARGET_ABS_LT: return m < f->target_value;
  case TARGET_NONE: break;
  }
  return -1;
}

/* Values from 0.001 to 100 M, compactly: 3 or 4 significant digits, k/M suffixes. From
 * 100 to 1000 one decimal shows, so that a figure near a target such as 192 bytes is
 * not rounded across it. */
static void fmt_value(char *buf, size_t len, double v) {
  double a = fabs(v);
  if (isnan(v))
    snprintf(buf, len, "-");
  else if (a >= 1e7)
    snprintf(buf, len, "%.2f M", v / 1e6);
  else if (a >= 1e5)
    snprintf(buf, len, "%.0f k", v / 1e3);
  else if (a >= 1000)
    snprintf(buf, len, "%.0f", v);
  else if (a >= 100)
    snprintf(buf, len, "%.1f", v);
  else if (a >= 1)
    snprintf(buf, len, "%.2f", v);
  else if (a == 0)
    snprintf(buf, len, "0");
  else
    snprintf(buf, len, "%.4f", v);
}

void report_print(void) {
  int i;
  printf("\n%-44s %10s %10s %10s  %-12s %8s %8s  %-26s %s\n", "figure", "median", "min", "max",
         "unit", "csw/call", "ratio", "target", "met");
  for (i = 0; i < 140; i++)
    putchar('-');
  putchar('\n');
  for (i = 0; i < nfigures; i++) {
    const figure_t *f = &figures[i];
    char med[32], mn[32], mx[32], csw[32], ratio[32];
    double r = fig_ratio(f);
    int met = fig_met(f);
    if (f->nrounds == 0)
      continue;
    fmt_value(med, sizeof(med), fig_median(f));
    fmt_value(mn, sizeof(mn), fig_min(f));
    fmt_value(mx, sizeof(mx), fig_max(f));
    if (f->ncsw > 0)
      snprintf(csw, sizeof(csw), "%.2f", stats_median(f->csw, f->ncsw));
    else
      snprintf(csw, sizeof(csw), "-");
    if (isnan(r))
      snprintf(ratio, sizeof(ratio), "-");
    else
      snprintf(ratio, sizeof(ratio), "%.2fx", r);
    printf("%-44s %10s %10s %10s  %-12s %8s %8s  %-26s %s\n", f->label, med, mn, mx, f->unit, csw,
           ratio, f->target_text ? f->target_text : "-",
           met < 0 ? "-"
           : met   ? "yes"
                   : "NO");
  }
}

static json_t *num_or_null(double v) { return isnan(v) || isinf(v) ? json_null() : json_real(v); }

int report_json(const char *path) {
  json_t *root = json_object(), *machine = json_object(), *figs = json_array();
  char date[64];
  time_t t = time(NULL);
  struct tm tm;
  int i, rc;
  gmtime_r(&t, &tm);
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_object_set_new(machine, "cpus", json_integer(bench_cfg.ncpu));
  json_object_set_new(machine, "libuv", json_string(uv_version_string()));
  json_object_set_new(root, "machine", machine);
  json_object_set_new(root, "synchro", json_string(synchro_version_string()));
  json_object_set_new(root, "date", json_string(date));
  json_object_set_new(root, "quick", json_boolean(bench_cfg.quick));
  json_object_set_new(root, "rounds", json_integer(bench_cfg.rounds));
  for (i = 0; i < nfigures; i++) {
    const figure_t *f = &figures[i];
    json_t *o = json_object(), *rounds = json_array(), *csw = json_array();
    int j, met = fig_met(f);
    if (f->nrounds == 0) {
      json_decref(o);
      json_decref(rounds);
      json_decref(csw);
      continue;
    }
    for (j = 0; j < f->nrounds; j++)
      json_array_append_new(rounds, json_real(f->rounds[j]));
    for (j = 0; j < f->ncsw; j++)
      json_array_append_new(csw, json_real(f->csw[j]));
    json_object_set_new(o, "name", json_string(f->name));
    json_object_set_new(o, "label", json_string(f->label));
    json_object_set_new(o, "unit", json_string(f->unit));
    json_object_set_new(o, "median", num_or_null(fig_median(f)));
    json_object_set_new(o, "min", num_or_null(fig_min(f)));
    json_object_set_new(o, "max", num_or_null(fig_max(f)));
    json_object_set_new(o, "rounds", rounds);
    if (f->ncsw > 0)
      json_object_set_new(o, "ctx_switches_per_call", csw);
    else
      json_decref(csw);
    json_object_set_new(o, "floor", f->floor ? json_string(f->floor) : json_null());
    json_object_set_new(o, "ratio_to_floor", num_or_null(fig_ratio(f)));
    json_object_set_new(o, "target", f->target_text ? json_string(f->target_text) : json_null());
    json_object_set_new(o, "met", met < 0 ? json_null() : json_boolean(met));
    if (f->note != NULL)
      json_object_set_new(o, "note", json_string(f->note));
    json_array_append_new(figs, o);
  }
  json_object_set_new(root, "figures", figs);
  rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
  json_decref(root);
  return rc;
}

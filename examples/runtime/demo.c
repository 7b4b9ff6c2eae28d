/* examples/runtime/demo.c - the runtime API by hand (no generator).
 *
 * One asynchronous implementation, `square`, runs on the synchronizer's libuv loop:
 * it waits on a uv_timer, then returns x*x. The caller uses it blocking, as ten
 * futures at once, through a completion queue, with a deadline, and cancels one.
 * A second operation, `file_size`, fails with a libuv error and JSON details. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

#include "synchro.h"

/* ---- the implementation side: runs on the loop thread -------------------------- */

typedef struct {
  int64_t x;
  int64_t delay_ms;
} square_args_t;

typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
  int64_t x;
} square_state_t;

static void free_state(uv_handle_t *handle) { free(handle->data); }

static void square_fired(uv_timer_t *timer) {
  square_state_t *st = timer->data;
  int64_t result = st->x * st->x;
  synchro_call_return(st->call, &result); /* finishes the call, exactly once */
  uv_close((uv_handle_t *)timer, free_state);
}

/* The cancel hook: caller's cancel, deadline or shutdown. Stop the work, then finish. */
static void square_cancel(synchro_call_t *call, int reason, void *data) {
  square_state_t *st = data;
  uv_close((uv_handle_t *)&st->timer, free_state); /* closing also stops the timer */
  synchro_call_fail(call, reason, NULL, "square stopped");
}

static void square_impl(synchro_call_t *call) {
  const square_args_t *args = synchro_call_args(call);
  square_state_t *st = malloc(sizeof(*st));
  if (st == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, NULL);
    return;
  }
  st->call = call;
  st->x = args->x;
  uv_timer_init(synchro_call_loop(call), &st->timer);
  st->timer.data = st;
  uv_timer_start(&st->timer, square_fired, (uint64_t)args->delay_ms, 0);
  synchro_call_on_cancel(call, square_cancel, st);
}

static const synchro_op_t square_op = {.name = "square",
                                       .impl = square_impl,
                                       .args_size = sizeof(square_args_t),
                                       .result_size = sizeof(int64_t)};

/* file_size: uv_fs_stat on the loop; fails with libuv's code and JSON details. */
typedef struct {
  char path[128];
} path_args_t;

static void stat_done(uv_fs_t *req) {
  synchro_call_t *call = req->data;
  if (req->result < 0) {
    json_t *details = json_pack("{s:s, s:s}", "path", req->path, "syscall", "stat");
    synchro_call_fail(call, (int)req->result, details, "cannot stat %s", req->path);
  } else {
    int64_t size = (int64_t)req->statbuf.st_size;
    synchro_call_return(call, &size);
  }
  uv_fs_req_cleanup(req);
  free(req);
}

static void file_size_impl(synchro_call_t *call) {
  const path_args_t *args = synchro_call_args(call);
  uv_fs_t *req = malloc(sizeof(*req));
  int rc = req ? uv_fs_stat(synchro_call_loop(call), req, args->path, stat_done) : UV_ENOMEM;
  if (rc < 0) {
    free(req);
    synchro_call_fail(call, rc, NULL, "cannot stat %s", args->path);
    return;
  }
  req->data = call;
}

static const synchro_op_t file_size_op = {.name = "file_size",
                                          .impl = file_size_impl,
                                          .args_size = sizeof(path_args_t),
                                          .result_size = sizeof(int64_t)};

/* ---- the caller side: any thread but the loop's ---------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", what, synchro_strerror(rc));
    exit(1);
  }
}

int main(void) {
  synchro_t *s;
  synchro_error_t *err = NULL;
  synchro_future_t *fs[10], *f;
  size_t j;
  synchro_cq_t *cq;
  synchro_stats_t stats;
  int64_t result;
  double t0;
  int i, rc;

  printf("synchro %s\n", synchro_version_string());
  check(synchro_new(&s, NULL), "synchro_new"); /* starts no thread yet */

  printf("\n1. blocking call\n");
  square_args_t a42 = {42, 300};
  check(synchro_call(s, &square_op, &a42, SYNCHRO_TIMEOUT_DEFAULT, &result, NULL), "call");
  printf("   square(42) = %" PRId64 "\n", result);

  printf("\n2. ten futures at once, then wait for all\n");
  t0 = now_s();
  for (i = 0; i < 10; i++) {
    square_args_t a = {i + 1, 300};
    check(synchro_submit(s, &square_op, &a, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), "submit");
  }
  check(synchro_future_wait_all(fs, 10, SYNCHRO_TIMEOUT_INFINITE), "wait_all");
  printf("   ten 300 ms calls took %.2f s:", now_s() - t0);
  for (i = 0; i < 10; i++) {
    check(synchro_future_result(fs[i], &result), "result");
    printf(" %" PRId64, result);
    synchro_future_free(fs[i]);
  }
  printf("\n");

  printf("\n3. completion queue: results in the order they finish\n");
  static const square_args_t jobs[] = {{1, 300}, {2, 100}, {3, 200}};
  check(synchro_cq_new(&cq), "cq_new");
  t0 = now_s();
  for (i = 0; i < 3; i++) {
    check(synchro_submit(s, &square_op, &jobs[i], SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), "submit");
    check(synchro_cq_add(cq, fs[i]), "cq_add"); /* the queue owns it until cq_next */
  }
  while ((rc = synchro_cq_next(cq, SYNCHRO_TIMEOUT_INFINITE, &f)) == 0) {
    for (j = 0; fs[j] != f; j++) /* which job is it? */
      ;
    check(synchro_future_result(f, &result), "result");
    printf("   at %.2f s: square(%" PRId64 ") = %" PRId64 "\n", now_s() - t0, jobs[j].x, result);
    synchro_future_free(f);
  }
  printf("   then synchro_cq_next: %s\n", synchro_err_name(rc)); /* SYNCHRO_EEMPTY */
  synchro_cq_free(cq);

  printf("\n4. a deadline that expires, and a cancel\n");
  square_args_t a7 = {7, 300};
  t0 = now_s();
  rc = synchro_call(s, &square_op, &a7, 100 /* ms */, &result, &err);
  printf("   square(7) with a 100 ms deadline: %s, \"%s\" after %.2f s\n", synchro_err_name(rc),
         synchro_strerror(rc), now_s() - t0);
  synchro_error_free(err); /* a static error here: freeing it is harmless */

  square_args_t a9 = {9, 300};
  check(synchro_submit(s, &square_op, &a9, SYNCHRO_TIMEOUT_DEFAULT, &f), "submit");
  rc = synchro_future_wait(f, 50);
  printf("   square(9), wait 50 ms: %s (the call keeps running)\n", synchro_err_name(rc));
  check(synchro_future_cancel(f), "cancel");
  rc = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE);
  printf("   after synchro_future_cancel: %s, \"%s\"\n", synchro_err_name(rc),
         synchro_strerror(rc));
  synchro_future_free(f);

  printf("\n5. an error with JSON details\n");
  path_args_t p = {"/nonexistent/synchro-demo.conf"};
  rc = synchro_call(s, &file_size_op, &p, SYNCHRO_TIMEOUT_DEFAULT, &result, &err);
  char *details = json_dumps(synchro_error_details(err), 0);
  printf("   file_size(\"%s\") failed\n", p.path);
  printf("   code     %s (%d)\n", synchro_err_name(rc), synchro_error_code(err));
  printf("   message  %s\n", synchro_error_message(err));
  printf("   origin   %s\n", synchro_error_origin(err));
  printf("   details  %s\n", details ? details : "(none)");
  free(details);
  synchro_error_free(err); /* the caller owns it */

  check(synchro_close(s, 1000), "close"); /* joins the loop thread: counters are final */
  check(synchro_stats(s, &stats), "stats");
  printf("\ncalls: %" PRIu64 " submitted, %" PRIu64 " completed, %" PRIu64 " failed, %" PRIu64
         " cancelled or timed out\n",
         stats.submitted, stats.completed, stats.failed, stats.cancelled);
  synchro_free(s);
  return 0;
}

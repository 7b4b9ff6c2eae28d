/* tests/support/affinity.c - A31: libuv is not thread-safe, so nothing may touch a
 * synchronizer's loop from another thread while that loop runs.
 *
 * Every test program is linked with -Wl,--wrap for the libuv functions below, so each
 * call made by the runtime, the test implementations or the examples' implementations
 * comes here first. A call that targets a running synchronizer's loop from any thread
 * but that loop's own aborts the test with the function's name. A synchronizer's loop
 * is recognised by the test build's table of initialised synchronizer loops (lib/seam.c;
 * nothing of a program's own loop is read). After the loop thread has been
 * joined, or in a fork child, the thread that owns the synchronizer may touch it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "support/affinity.h"

static atomic_long violations_seen;
static atomic_int abort_on_violation = 1;

long affinity_violations(void) { return atomic_load(&violations_seen); }
void affinity_abort_on_violation(int on) { atomic_store(&abort_on_violation, on); }

static synchro_t *bridge_of(const uv_loop_t *loop) {
  synchro_t *s;
  if (loop == NULL)
    return NULL;
  s = (synchro_t *)(void *)((char *)(uintptr_t)loop - offsetof(synchro_t, loop));
  return synchro__test_is_known_loop(s) ? s : NULL;
}

/* true: the call must not go through (counting mode; in the default mode it aborts) */
static bool violates(const uv_loop_t *loop, const char *fn) {
  synchro_t *s = bridge_of(loop);
  uint64_t gen = atomic_load(&synchro__fork_gen) + 1;
  if (s == NULL || atomic_load(&s->run_gen) != gen || synchro__on_loop(s))
    return false;
  atomic_fetch_add(&violations_seen, 1);
  if (atomic_load(&abort_on_violation)) {
    fprintf(stderr, "affinity: %s on synchronizer '%s' from a thread that is not its loop\n", fn,
            s->name);
    abort();
  }
  return true;
}

#define WRAP(ret, name, params, loop_expr, args)                                                   \
  ret __real_##name params;                                                                        \
  ret __wrap_##name params;                                                                        \
  ret __wrap_##name params {                                                                       \
    if (violates(loop_expr, #name))                                                                \
      return UV_EINVAL;                                                                            \
    return __real_##name args;                                                                     \
  }

WRAP(int, uv_timer_init, (uv_loop_t * l, uv_timer_t *h), l, (l, h))
WRAP(int, uv_timer_start, (uv_timer_t * h, uv_timer_cb cb, uint64_t t, uint64_t r), h->loop,
     (h, cb, t, r))
WRAP(int, uv_timer_stop, (uv_timer_t * h), h->loop, (h))
WRAP(int, uv_poll_init, (uv_loop_t * l, uv_poll_t *h, int fd), l, (l, h, fd))
WRAP(int, uv_poll_start, (uv_poll_t * h, int ev, uv_poll_cb cb), h->loop, (h, ev, cb))
WRAP(int, uv_poll_stop, (uv_poll_t * h), h->loop, (h))
WRAP(int, uv_prepare_start, (uv_prepare_t * h, uv_prepare_cb cb), h->loop, (h, cb))
WRAP(int, uv_idle_start, (uv_idle_t * h, uv_idle_cb cb), h->loop, (h, cb))
WRAP(int, uv_tcp_init, (uv_loop_t * l, uv_tcp_t *h), l, (l, h))
WRAP(int, uv_read_start, (uv_stream_t * h, uv_alloc_cb a, uv_read_cb r), h->loop, (h, a, r))
WRAP(int, uv_read_stop, (uv_stream_t * h), h->loop, (h))
WRAP(int, uv_write,
     (uv_write_t * q, uv_stream_t *h, const uv_buf_t bufs[], unsigned int n, uv_write_cb cb),
     h->loop, (q, h, bufs, n, cb))
WRAP(int, uv_queue_work, (uv_loop_t * l, uv_work_t *q, uv_work_cb w, uv_after_work_cb a), l,
     (l, q, w, a))

/* the void ones */
void __real_uv_close(uv_handle_t *h, uv_close_cb cb);
void __wrap_uv_close(uv_handle_t *h, uv_close_cb cb);
void __wrap_uv_close(uv_handle_t *h, uv_close_cb cb) {
  if (!violates(h->loop, "uv_close"))
    __real_uv_close(h, cb);
}
void __real_uv_stop(uv_loop_t *l);
void __wrap_uv_stop(uv_loop_t *l);
void __wrap_uv_stop(uv_loop_t *l) {
  if (!violates(l, "uv_stop"))
    __real_uv_stop(l);
}

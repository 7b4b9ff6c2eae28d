/* lib/context.c - ambient context snapshots and cancel tokens (A30, A28).
 *
 * A context is an immutable, refcounted chain of nodes: each node sets (or removes) one
 * key, or installs a cancel token, on top of its parent. Setting a key on a thread
 * makes a new node over the thread's current chain (copy-on-write: every snapshot
 * already taken stays as it was). Long chains are flattened on the next set.
 *
 * Tokens wake the loops they concern without locks: every synchronizer that ran a call
 * under a token owns one slot of a fixed table (registered at the first such call); a
 * firing token marks itself, bumps each slot's kick count and writes the slot's wake
 * eventfd. A loop that sees its kick count move cancels its calls whose token fired. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "internal.h"

enum { NODE_STR, NODE_PTR, NODE_DEL, NODE_TOKEN };
#define FLATTEN_DEPTH 32

struct synchro_token_s {
  _Atomic uint32_t refs;
  _Atomic int fired;
};

struct synchro_ctx_s {
  _Atomic uint32_t refs;
  uint32_t depth;                /* nodes in the chain, this one included */
  struct synchro_ctx_s *parent;  /* a reference, or NULL */
  struct synchro_token_s *token; /* the effective token: own (a reference) or inherited */
  int kind;
  const char *key; /* NULL for a token node */
  union {
    const char *str;
    void *ptr;
  } value;
  char data[]; /* key and string value */
};

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "tokens need lock-free atomics (signal safety)");

_Thread_local synchro_ctx_t *synchro__tls_ctx __attribute__((tls_model("initial-exec")));

/* ---- references ------------------------------------------------------------------- */

static void token_unref(synchro_token_t *tok) {
  if (tok != NULL && atomic_fetch_sub_explicit(&tok->refs, 1, memory_order_acq_rel) == 1)
    synchro__free(tok);
}

void synchro__ctx_ref(synchro_ctx_t *ctx) {
  atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void synchro__ctx_unref(synchro_ctx_t *ctx) {
  while (ctx != NULL && atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1) {
    synchro_ctx_t *parent = ctx->parent; /* iterative: chains may be long */
    if (ctx->kind == NODE_TOKEN)
      token_unref(ctx->token);
    synchro__free(ctx);
    ctx = parent;
  }
}

bool synchro__ctx_cancelled(const synchro_ctx_t *ctx) {
  return ctx->token != NULL && atomic_load_explicit(&ctx->token->fired, memory_order_acquire);
}

/* ---- the thread's current context ---------------------------------------------------- */

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Thread_local bool exit_armed;

static void on_thread_exit(void *unused) {
  (void)unused;
  synchro__ctx_unref(synchro__tls_ctx);
  synchro__tls_ctx = NULL;
}

static void make_key(void) { pthread_key_create(&exit_key, on_thread_exit); }

/* The thread's context is released when the thread exits. */
static void arm_exit(void) {
  if (exit_armed)
    return;
  pthread_once(&key_once, make_key);
  if (pthread_setspecific(exit_key, &exit_armed) == 0)
    exit_armed = true;
}

/* Installs `ctx` (its reference passes to the thread) and releases the previous one. */
static void install(synchro_ctx_t *ctx) {
  synchro_ctx_t *old = synchro__tls_ctx;
  if (ctx != NULL)
    arm_exit();
  synchro__tls_ctx = ctx;
  synchro__ctx_unref(old);
}

synchro_ctx_t *synchro__ctx_enter(synchro_ctx_t *ctx) {
  synchro_ctx_t *saved = synchro__tls_ctx;
  if (ctx != NULL)
    synchro__ctx_ref(ctx);
  synchro__tls_ctx = ctx;
  return saved;
}

void synchro__ctx_leave(synchro_ctx_t *saved) {
  synchro__ctx_unref(synchro__tls_ctx); /* the entered one, or what the callback set */
  synchro__tls_ctx = saved;
}

/* ---- building snapshots ------------------------------------------------------------- */

static synchro_ctx_t *node_new(synchro_ctx_t *parent, int kind, const char *key, const char *str,
                               void *ptr, synchro_token_t *tok) {
  size_t klen = key != NULL ? strlen(key) + 1 : 0, slen = str != NULL ? strlen(str) + 1 : 0;
  synchro_ctx_t *n = synchro__malloc(sizeof(*n) + klen + slen);
  if (n == NULL)
    return NULL;
  atomic_init(&n->refs, 1);
  n->parent = parent;
  if (parent != NULL)
    synchro__ctx_ref(parent);
  n->depth = parent != NULL ? parent->depth + 1 : 1;
  n->kind = kind;
  n->key = NULL;
  if (key != NULL)
    n->key = memcpy(n->data, key, klen);
  n->value.ptr = ptr;
  if (kind == NODE_STR)
    n->value.str = memcpy(n->data + klen, str, slen);
  if (kind == NODE_TOKEN) {
    n->token = tok;
    if (tok != NULL)
      atomic_fetch_add_explicit(&tok->refs, 1, memory_order_relaxed);
  } else {
    n->token = parent != NULL ? parent->token : NULL;
  }
  return n;
}

static const synchro_ctx_t *find(const synchro_ctx_t *ctx, const char *key) {
  for (; ctx != NULL; ctx = ctx->parent)
    if (ctx->key != NULL && strcmp(ctx->key, key) == 0)
      return ctx;
  return NULL;
}

/* A chain with the same content and no shadowed or removed entries. NULL: out of
 * memory, or nothing left (*empty then). */
static synchro_ctx_t *flatten(const synchro_ctx_t *ctx, bool *empty) {
  const synchro_ctx_t *live[FLATTEN_DEPTH * 2];
  const synchro_ctx_t *n;
  synchro_ctx_t *out = NULL;
  size_t count = 0, i;
  *empty = false;
  for (n = ctx; n != NULL && count < sizeof(live) / sizeof(live[0]); n = n->parent)
    if (n->key != NULL && find(ctx, n->key) == n && n->kind != NODE_DEL)
      live[count++] = n;
  if (n != NULL)
    return NULL; /* deeper than expected: keep the chain */
  if (ctx->token != NULL &&
      (out = node_new(NULL, NODE_TOKEN, NULL, NULL, NULL, ctx->token)) == NULL)
    return NULL;
  for (i = count; i-- > 0;) {
    synchro_ctx_t *next = node_new(out, live[i]->kind, live[i]->key,
                                   live[i]->kind == NODE_STR ? live[i]->value.str : NULL,
                                   live[i]->kind == NODE_PTR ? live[i]->value.ptr : NULL, NULL);
    synchro__ctx_unref(out);
    if (next == NULL)
      return NULL;
    out = next;
  }
  *empty = out == NULL;
  return out;
}

static int push_node(int kind, const char *key, const char *str, void *ptr, synchro_token_t *tok) {
  synchro_ctx_t *cur = synchro__tls_ctx, *n;
  if (cur != NULL && cur->depth >= FLATTEN_DEPTH) {
    bool empty;
    synchro_ctx_t *flat = flatten(cur, &empty);
    if (flat != NULL || empty) {
      install(flat);
      cur = flat;
    }
  }
  if (kind == NODE_DEL &&
      (cur == NULL || find(cur, key) == NULL || find(cur, key)->kind == NODE_DEL))
    return 0; /* nothing to remove */
  if ((n = node_new(cur, kind, key, str, ptr, tok)) == NULL)
    return SYNCHRO_ENOMEM;
  install(n);
  return 0;
}

/* ---- public: the calling thread's context -------------------------------------------- */

int synchro_ctx_set(const char *key, const char *value) {
  if (key == NULL)
    return SYNCHRO_EINVAL;
  return push_node(value != NULL ? NODE_STR : NODE_DEL, key, value, NULL, NULL);
}

int synchro_ctx_set_ptr(const char *key, void *ptr) {
  if (key == NULL)
    return SYNCHRO_EINVAL;
  return push_node(ptr != NULL ? NODE_PTR : NODE_DEL, key, NULL, ptr, NULL);
}

const char *synchro_ctx_lookup(const synchro_ctx_t *ctx, const char *key) {
  const synchro_ctx_t *n = key != NULL ? find(ctx, key) : NULL;
  return n != NULL && n->kind == NODE_STR ? n->value.str : NULL;
}

void *synchro_ctx_lookup_ptr(const synchro_ctx_t *ctx, const char *key) {
  const synchro_ctx_t *n = key != NULL ? find(ctx, key) : NULL;
  return n != NULL && n->kind == NODE_PTR ? n->value.ptr : NULL;
}

const char *synchro_ctx_get(const char *key) { return synchro_ctx_lookup(synchro__tls_ctx, key); }

void *synchro_ctx_get_ptr(const char *key) { return synchro_ctx_lookup_ptr(synchro__tls_ctx, key); }

synchro_ctx_t *synchro_ctx_capture(void) {
  if (synchro__tls_ctx != NULL)
    synchro__ctx_ref(synchro__tls_ctx);
  return synchro__tls_ctx;
}

synchro_ctx_t *synchro_ctx_swap(synchro_ctx_t *ctx) {
  synchro_ctx_t *old = synchro__tls_ctx;
  if (ctx != NULL) {
    synchro__ctx_ref(ctx);
    arm_exit();
  }
  synchro__tls_ctx = ctx;
  return old; /* its reference passes to the caller */
}

void synchro_ctx_clear(void) { install(NULL); }

void synchro_ctx_free(synchro_ctx_t *ctx) { synchro__ctx_unref(ctx); }

int synchro_ctx_set_token(synchro_token_t *tok) {
  if (tok == NULL && (synchro__tls_ctx == NULL || synchro__tls_ctx->token == NULL))
    return 0;
  return push_node(NODE_TOKEN, NULL, NULL, NULL, tok);
}

synchro_token_t *synchro_ctx_token(void) {
  return synchro__tls_ctx != NULL ? synchro__tls_ctx->token : NULL;
}

/* ---- public: the implementation's view ------------------------------------------------ */

static const synchro_ctx_t *call_ctx(const synchro_call_t *call) {
  if (synchro__rec_check(call) != 0 || !synchro__on_loop(call->sync))
    return NULL;
  return call->ctx;
}

const char *synchro_call_ctx_get(const synchro_call_t *call, const char *key) {
  return synchro_ctx_lookup(call_ctx(call), key);
}

void *synchro_call_ctx_get_ptr(const synchro_call_t *call, const char *key) {
  return synchro_ctx_lookup_ptr(call_ctx(call), key);
}

int synchro_call_ctx_cancelled(const synchro_call_t *call) {
  const synchro_ctx_t *ctx = call_ctx(call);
  return ctx != NULL && synchro__ctx_cancelled(ctx);
}

/* ---- tokens --------------------------------------------------------------------------- */

typedef struct {
  _Atomic(synchro_t *) owner; /* NULL: free */
  _Atomic int fd;             /* the owner's wake eventfd, -1 while it has none */
  _Atomic uint32_t busy;      /* firing tokens between reading fd and writing it */
  _Atomic uint32_t kicks;     /* tokens fired since the slot was taken */
} wake_slot_t;

static wake_slot_t slots[SYNCHRO_TOKEN_MAX_SYNCHRONIZERS];
static pthread_mutex_t slots_mutex = PTHREAD_MUTEX_INITIALIZER; /* registration only */

int synchro_token_new(synchro_token_t **out) {
  synchro_token_t *tok;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  if ((tok = synchro__malloc(sizeof(*tok))) == NULL)
    return SYNCHRO_ENOMEM;
  atomic_init(&tok->refs, 1);
  atomic_init(&tok->fired, 0);
  *out = tok;
  return 0;
}

void synchro_token_free(synchro_token_t *tok) { token_unref(tok); }

int synchro_token_cancelled(const synchro_token_t *tok) {
  return tok != NULL && atomic_load_explicit(&tok->fired, memory_order_acquire);
}

/* Async-signal-safe: lock-free atomics and write(2) only; errno is preserved. */
void synchro_token_cancel(synchro_token_t *tok) {
  int saved_errno = errno;
  size_t i;
  if (tok == NULL || atomic_exchange(&tok->fired, 1) != 0)
    return;
  for (i = 0; i < SYNCHRO_TOKEN_MAX_SYNCHRONIZERS; i++) {
    wake_slot_t *sl = &slots[i];
    int fd;
    if (atomic_load(&sl->owner) == NULL)
      continue;
    atomic_fetch_add(&sl->busy, 1);
    fd = atomic_load(&sl->fd);
    if (fd >= 0) {
      atomic_fetch_add(&sl->kicks, 1); /* before the write: the loop reads it after */
      synchro__eventfd_signal(fd);
    }
    atomic_fetch_sub(&sl->busy, 1);
  }
  errno = saved_errno;
}

static void register_sync(synchro_t *s) {
  size_t i;
  synchro__lock(&slots_mutex);
  for (i = 0; i < SYNCHRO_TOKEN_MAX_SYNCHRONIZERS && atomic_load(&s->tok_slot) == 0; i++) {
    wake_slot_t *sl = &slots[i];
    if (atomic_load(&sl->owner) != NULL)
      continue;
    atomic_store(&sl->fd, s->wake_fd);
    atomic_store(&sl->owner, s);
    atomic_store(&s->tok_slot, (int)i + 1);
  }
  /* Table full: the call is still refused at dequeue if its token fired, but a running
   * call is not cancelled by the token (docs/context.md). */
  synchro__unlock(&slots_mutex);
}

void synchro__ctx_bind(synchro_t *s, synchro_call_t *rec, synchro_ctx_t *ctx) {
  synchro__ctx_ref(ctx);
  rec->ctx = ctx;
  if (ctx->token != NULL && atomic_load_explicit(&s->tok_slot, memory_order_acquire) == 0)
    register_sync(s);
}

bool synchro__token_kicked(synchro_t *s) {
  int slot = atomic_load_explicit(&s->tok_slot, memory_order_acquire);
  uint32_t kicks;
  if (slot == 0)
    return false;
  kicks = atomic_load(&slots[slot - 1].kicks);
  if (kicks == s->tok_seen)
    return false;
  s->tok_seen = kicks;
  return true;
}

void synchro__token_slot_update(synchro_t *s) {
  int slot = atomic_load(&s->tok_slot);
  if (slot != 0)
    atomic_store(&slots[slot - 1].fd, s->wake_fd);
}

void synchro__token_slot_release(synchro_t *s, bool wait) {
  int slot = atomic_load(&s->tok_slot);
  wake_slot_t *sl;
  if (slot == 0)
    return;
  sl = &slots[slot - 1];
  atomic_store(&sl->fd, -1);
  if (wait) { /* a token that read the fd writes it before the fd may be closed */
    unsigned round = 0;
    while (atomic_load(&sl->busy) != 0)
      synchro__backoff(&round);
  } else {
    atomic_store(&sl->busy, 0); /* fork child: no other thread is left */
  }
  /* No lock here: a fork child may inherit slots_mutex held by a thread it lacks. */
  atomic_store(&s->tok_slot, 0);
  atomic_store(&sl->owner, NULL);
}

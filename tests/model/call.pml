/* tests/model/call.pml - one call record's state machine, for the Spin model checker.
 *
 * Threads: the caller (submits, then waits / cancels and waits / waits with a
 * deadline and gives up / frees the future at once), an optional canceller on a
 * third thread, the loop thread, and a watchdog that checks the final state. Every
 * atomic read-modify-write of the C code is one `atomic` block (sequential
 * consistency: the model proves the protocol, not the C11 orderings). Names follow
 * lib/record.c, lib/future.c and lib/loop.c; see tests/model/README.md.
 *
 * Properties:
 *   assertions  - the outcome is published once (PENDING -> DONE exactly once) and
 *                 `status` never changes after DONE; a cancel that returned 0 means the
 *                 outcome is a cancellation; nothing touches the record after the last
 *                 reference is gone (every access asserts !freed); the control stack
 *                 never holds the record twice;
 *   end states  - nobody is left blocked: a waiter asleep on the futex while nobody
 *                 will wake it is an invalid end state (the watchdog also asserts it);
 *                 the loop must not sleep with a queued call or control request;
 *                 at the end the record is resolved and freed (no leak);
 *   LTL         - a sleeper is always woken, queued work is always taken, every run
 *                 resolves and frees the record (the ltl blocks at the end; pan -a -N). */

/* state word (lib/internal.h) */
#define PENDING     0
#define DONE        2
#define PHASE_MASK  3
#define CANCEL      4
#define WAITING     8
#define CTL_QUEUED  16
#define PHASE(s)    ((s) & PHASE_MASK)

/* outcomes: 0 is success, as in the C code (status 0 is also "no cancel reason") */
#define OK          0
#define ECANCELED   1
#define ETIMEDOUT   2
#define EFAIL       3 /* the implementation failed */
#define EALREADY    4
#define IS_CANCEL(s) ((s) == ECANCELED || (s) == ETIMEDOUT)

/* ---- the record ---------------------------------------------------------------- */
byte state = PENDING;
byte refs = 2;          /* the caller's and the loop's (synchro__init_record) */
bit  freed = 0;         /* refs reached 0 and the record went back to the pool */
byte status = OK;       /* cancel reason while pending, the outcome once DONE */
bit  has_deadline = 0;  /* rec->deadline_ns != 0 */

/* loop-only fields (rec->lflags and what the implementation holds) */
bit started = 0;        /* L_STARTED */
bit impl_done = 0;      /* L_IMPL_DONE */
bit cancel_seen = 0;    /* L_CANCEL_SEEN */
bit has_hook = 0;       /* rec->cancel_fn != NULL */
bit impl_pending = 0;   /* the implementation will complete the call from a callback */
bit in_heap = 0;        /* in the deadline heap */
bit in_finished = 0;    /* on s->finished: the loop reference is dropped at iteration end */

/* ---- the synchronizer ------------------------------------------------------------ */
bit sq = 0;             /* the record is on the submission stack (submit_head) */
bit cq = 0;             /* the record is on the control stack (cancel_head) */
bit awake = 0;          /* s->awake: 1 while the loop drains (it starts asleep in epoll) */
bit evfd = 0;           /* the eventfd is readable */

/* ---- the futex and the observers -------------------------------------------------- */
bit  sleeping = 0;      /* the caller sleeps in futex_wait(&rec->state) */
byte ndone = 0;         /* how many times DONE was published */
byte pub_status = 255;  /* status when DONE was published */
bit  cancel_ok = 0;     /* some synchro_future_cancel returned 0 */
bit  timed_out = 0;     /* the deadline timer cancelled the call */
bit  cdone = 1;         /* the canceller thread finished (joined by the caller) */

/* ---- shared pieces ------------------------------------------------------------------ */

/* synchro__rec_unref: fetch_sub; whoever drops the last reference frees. */
inline rec_unref() {
  atomic { assert(!freed); assert(refs > 0); refs--; last = (refs == 0) }
  if
  :: last -> atomic { assert(!freed); freed = 1 } /* release_payload, magic = FREED, pool_put */
  :: else
  fi
}

/* push_and_wake on a stack that only ever holds this record: h == 0 always, so the
 * pusher always checks `awake` (seq_cst load after the seq_cst CAS). */
inline wake_if_asleep() {
  atomic { wk = !awake }
  if
  :: wk -> evfd = 1 /* synchro__wake_loop: write the eventfd */
  :: else
  fi
}

/* synchro__post_control(rec, 0) */
inline post_control() {
  atomic { assert(!freed); old = state; state = state | CTL_QUEUED }
  if
  :: (old & CTL_QUEUED) -> skip /* already queued: the loop reads every bit */
  :: else ->
     atomic { assert(!freed); refs++ }  /* the queue's reference */
     atomic { assert(!freed); assert(!cq); cq = 1 } /* CAS onto cancel_head (cancel_next) */
     wake_if_asleep()
  fi
}

/* synchro_future_cancel: returns 0 (requested now or before) or EALREADY. The
 * settled_done() check and the relaxed load only feed the CAS loop, which checks the
 * same conditions again: one atomic step decides. */
inline future_cancel(rc) {
  atomic {
    assert(!freed); /* future_check */
    if
    :: PHASE(state) != PENDING -> rc = EALREADY; posted = 0
    :: PHASE(state) == PENDING && (state & CANCEL) -> rc = 0; posted = 0 /* already requested */
    :: PHASE(state) == PENDING && !(state & CANCEL) -> state = state | CANCEL; rc = 0; posted = 1
    fi;
    if
    :: rc == 0 -> cancel_ok = 1
    :: else
    fi
  }
  if
  :: posted -> post_control()
  :: else
  fi
}

/* wait_done(rec, deadline): load; DONE? return; set WAITING with a CAS; futex_wait on
 * the value with WAITING set (sleeps only while the word still equals it). spin_briefly
 * is only more loads of the state word, which the first iteration already does. */
inline wait_done(timed) {
  do
  :: atomic { assert(!freed); st = state }
     if
     :: PHASE(st) == DONE -> break
     :: else ->
        if
        :: !(st & WAITING) ->
           atomic { /* compare_exchange_weak(&state, &st, st | WAITING) */
             assert(!freed);
             if
             :: state == st -> state = state | WAITING; st = state; ok = 1
             :: else -> ok = 0 /* changed under us: load again */
             fi
           }
        :: else -> ok = 1
        fi;
        if
        :: ok ->
           atomic { /* synchro__futex_wait(&state, st, deadline) */
             assert(!freed);
             if
             :: state == st -> sleeping = 1
             :: else /* EAGAIN: the word changed */
             fi
           }
           if
           :: !sleeping -> skip /* woken (or never slept): load again */
           :: atomic { timed && sleeping -> sleeping = 0 } ; break /* the deadline passed */
           fi
        :: else
        fi
     fi
  od
}

/* ---- the loop side ------------------------------------------------------------------- */

/* synchro__resolve: load the state; unless it is PENDING, EALREADY. A CANCEL seen
 * decides the outcome; the outcome is written, the sink taken, then one CAS publishes
 * DONE. A CAS that fails because a caller added CANCEL meanwhile overrules the outcome
 * with the cancellation (a cancel that returned 0 always means a cancelled call), and
 * one that fails because WAITING was added retries with the new value: the wake is
 * decided from the value the successful CAS replaced. */
inline resolve(o) {
  outcome = o; published = 0; overruled = 0;
  atomic { assert(!freed); seen = state; first = seen; reason = status }
  if
  :: PHASE(seen) != PENDING -> skip /* SYNCHRO_EALREADY: decided before (a cancel resolved it) */
  :: else ->
     if
     :: (seen & CANCEL) -> outcome = (reason != OK -> reason : ECANCELED); overruled = 1
     :: else
     fi;
     atomic { assert(!freed); assert(PHASE(state) == PENDING); status = outcome } /* write_outcome */
     do
     :: published -> break
     :: else ->
        atomic { /* compare_exchange_weak(&state, &seen, seen | DONE) */
          assert(!freed);
          if
          :: state == seen ->
             rold = state;
             state = state | DONE;
             assert(PHASE(rold) == PENDING && PHASE(state) == DONE);
             ndone++;
             pub_status = status;
             published = 1
          :: else -> seen = state /* failed: the CAS returns the current value */
          fi
        }
        if
        :: !published && (seen & CANCEL) && !overruled -> /* overrule() */
           atomic { assert(!freed); assert(PHASE(state) == PENDING);
                    status = (reason != OK -> reason : ECANCELED) };
           overruled = 1
        :: else
        fi
     od;
     if
     :: (rold & WAITING) -> atomic { assert(!freed); sleeping = 0 } /* futex_wake(&state, all) */
     :: else
     fi
  fi
}

/* synchro__loop_finish_call: the loop reference waits on s->finished. */
inline finish_call() {
  atomic { assert(!freed); impl_done = 1; in_heap = 0; in_finished = 1 }
}

/* call.c finish(): the implementation completes the call (synchro_call_return/_fail). */
inline finish(o) {
  atomic { assert(!freed); fin_again = impl_done }
  if
  :: fin_again -> skip /* a second completion: EALREADY */
  :: else -> impl_pending = 0; resolve(o); finish_call()
  fi
}

/* release_finished: drops the loop reference of finished calls (end of the iteration). */
inline release_finished() {
  if
  :: in_finished -> in_finished = 0; rec_unref()
  :: else
  fi
}

/* cancel_call -> cancel_started: hook, or resolve at once. */
inline cancel_call(reason) {
  atomic { assert(!freed); go = started && !impl_done }
  if
  :: go ->
     atomic { assert(!freed); cold = state; state = state | CANCEL }
     if
     :: PHASE(cold) != PENDING -> skip /* outcome already decided */
     :: else ->
        if
        :: !(cold & CANCEL) -> atomic { assert(!freed); assert(PHASE(state) != DONE); status = reason }
        :: else
        fi;
        if
        :: cancel_seen -> skip
        :: else ->
           atomic { assert(!freed); cancel_seen = 1; in_heap = 0 }
           if
           :: has_hook ->
              has_hook = 0;
              if
              :: finish(ECANCELED) /* the hook stops the work and finishes the call now */
              :: skip              /* the hook stops the work; it completes later */
              fi
           :: else -> resolve(ECANCELED) /* nothing can stop the work: resolve now */
           fi
        fi
     fi
  :: else
  fi
}

/* start_call, then synchro__loop_run_impl: the implementation finishes the call at
 * once, or later from a callback, with or without a cancel hook. With a deadline, the
 * second and third branches overlap on purpose: the deadline may or may not be past. */
inline start_call() {
  atomic { assert(!freed); st = state }
  if
  :: (st & CANCEL) -> resolve(ECANCELED); finish_call()
  :: !(st & CANCEL) && has_deadline -> /* already expired */
     atomic { assert(!freed); status = ETIMEDOUT }; timed_out = 1;
     resolve(ETIMEDOUT); finish_call()
  :: !(st & CANCEL) ->
     atomic { assert(!freed); in_heap = has_deadline; started = 1 }
     if
     :: finish(OK); atomic { assert(!freed) } /* impl may still read its call */
     :: atomic { assert(!freed); has_hook = 1; impl_pending = 1 } /* synchro_call_on_cancel */
     :: impl_pending = 1
     fi
  fi
}

/* drain_once: take both stacks, start the calls, then handle control requests. */
inline drain_once() {
  atomic { took_call = sq; sq = 0 } /* take_fifo(&submit_head) */
  atomic { took_ctl = cq; cq = 0 }  /* take_fifo(&cancel_head) */
  if
  :: took_call -> start_call()
  :: else
  fi;
  if
  :: took_ctl ->
     atomic { assert(!freed); st = state; state = state & ~CTL_QUEUED }
     if
     :: (st & CANCEL) -> cancel_call(ECANCELED) /* not started: the submit pass sees CANCEL */
     :: else
     fi;
     rec_unref() /* the queue's reference */
  :: else
  fi;
  any = took_call || took_ctl
}

/* drain: announce sleep, then re-check both queues. */
inline drain() {
  awake = 1;
  do
  :: drain_once();
     if
     :: any -> forget()
     :: else ->
        release_finished();
        awake = 0; /* atomic_store(&s->awake, 0), seq_cst */
        if
        :: sq -> awake = 1
        :: !sq && cq -> awake = 1
        :: !sq && !cq -> break
        fi
     fi
  od
}

/* Locals back to 0 once a step is over, so that stale values do not split states. */
inline forget() {
  d_step { st = 0; cold = 0; seen = 0; first = 0; rold = 0; outcome = 0; reason = 0; last = 0;
           published = 0; overruled = 0; took_call = 0; took_ctl = 0; any = 0; go = 0;
           fin_again = 0 }
}

active proctype Loop() {
  byte st, cold, seen, first, rold, outcome, reason, last;
  bit published, overruled, took_call, took_ctl, any, go, fin_again;
  if /* other calls may have woken the loop already: it drains while ours is pushed */
  :: drain(); forget()
  :: skip
  fi;
end_idle: /* uv_run blocked in epoll: a valid end state */
  do
  :: atomic { evfd -> evfd = 0 }; drain(); forget() /* on_wake: clear the eventfd, drain */
  :: impl_pending -> /* the implementation's callback completes the call */
     if
     :: finish(OK)
     :: finish(EFAIL)
     fi;
     atomic { assert(!freed) }; /* ... and may still read its call in that callback */
     release_finished();        /* on_prepare, next iteration */
     forget()
  :: in_heap -> /* on_deadline */
     atomic { assert(!freed); in_heap = 0 };
     timed_out = 1;
     cancel_call(ETIMEDOUT);
     release_finished();
     forget()
  od
}

/* ---- the callers ------------------------------------------------------------------------ */

proctype Canceller() { /* another thread holding the future, joined before the free */
  byte st, old, rc;
  bit posted, wk;
  future_cancel(rc);
  cdone = 1
}

active proctype Caller() {
  byte st, old, rc = 255, last;
  bit posted, wk, ok;
  if /* op->timeout_ms: a deadline or none */
  :: has_deadline = 1
  :: skip
  fi;
  /* synchro__submit: push_chain -> push_and_wake(&submit_head) */
  atomic { assert(!sq); sq = 1 }
  wake_if_asleep();
  if /* a third thread may cancel the future */
  :: cdone = 0; run Canceller()
  :: skip
  fi;
  if
  :: wait_done(0); /* synchro_call / synchro_future_wait(INFINITE) */
     atomic { assert(!freed); assert(PHASE(state) == DONE); assert(status == pub_status) }
  :: future_cancel(rc); wait_done(0);
     atomic {
       assert(!freed); assert(PHASE(state) == DONE); assert(status == pub_status);
       assert(rc != 0 || IS_CANCEL(status)) /* an accepted cancel decides the outcome */
     }
  :: wait_done(1) /* a finite timeout: may give up with WAITING left set */
  :: skip         /* synchro_future_free right away */
  fi;
  cdone; /* pthread_join(canceller) */
  /* synchro_future_free / the end of finish_blocking */
  atomic { assert(!freed) } /* future_check, cflags |= C_FREED */
  rec_unref()
}

/* Runs only when nothing else can move: the final state must be clean. */
active proctype Watchdog() {
  timeout ->
  atomic {
    assert(!sq && !cq);             /* the loop is not left asleep with queued work */
    assert(!sleeping);              /* no lost wakeup */
    assert(ndone == 1 && PHASE(state) == DONE && status == pub_status);
    assert(refs == 0 && freed);     /* released exactly once, no leak */
    assert(!cancel_ok || IS_CANCEL(pub_status));
    assert(!IS_CANCEL(pub_status) || cancel_ok || timed_out)
  }
}

/* ---- LTL (pan -a -N name; compiled without -DNOCLAIM) ------------------------------------
 * They hold without weak fairness (pan -f), which is the stronger result: no scheduling,
 * however unfair, starves them. "status never changes after DONE" is not here: every
 * write of status asserts the phase is not DONE, and the publishing CAS asserts it
 * replaced PENDING. */
ltl woken   { [] (sleeping -> <> !sleeping) }            /* a sleeper is always woken */
ltl served  { [] ((sq || cq) -> <> !(sq || cq)) }        /* queued work is always taken */
ltl decided { <> (PHASE(state) == DONE && freed) }        /* every run resolves and frees (both stay set) */

/* tests/model/batch.pml - the batch-wait group (synchro_future_wait_all / _wait_any in
 * lib/future.c) against the resolvers that notify it, for the Spin model checker.
 *
 * The group lives on the waiter's stack: once the waiter returns it is gone, and a
 * notification still touching it would write into a dead stack frame. The protocol:
 * attach with a CAS on each future's sink word (NONE -> group); the resolver exchanges
 * the sink for SINK_DONE, publishes DONE, then notifies (remaining, woken + futex wake,
 * and last acks); the waiter detaches with a CAS (group -> NONE) and waits until
 * acks == attached - detached before returning.
 *
 * Each future has its own resolver process. In the library one loop thread resolves
 * them one after the other; letting them run in parallel only adds interleavings, so
 * what holds here holds there.
 *
 * Properties: no notification touches the group after the waiter returned (`gone`);
 * every attached future is detached or acknowledged exactly once; a wait_all that
 * returned 0 saw every future DONE, a wait_any one of them; nobody is left blocked
 * (futex sleeper without a waker, or a waiter spinning on acks forever). */

#define N 3 /* futures in the batch */

/* sink word (lib/internal.h): NONE, DONE, or a pointer */
#define SINK_NONE  0
#define SINK_DONE  1
#define SINK_GROUP 2 /* our group */
#define SINK_OTHER 3 /* a completion queue or host owns the future */

#define EALREADY 4
#define EINVAL   5
#define EPENDING 6

byte sink[N];          /* rec->sink */
bit  done[N];          /* PHASE(rec->state) == DONE */

/* the group (group_t on the waiter's stack) */
byte remaining;        /* notifications still needed before waking (uint32: may wrap) */
bit  woken;            /* futex word */
byte acks;             /* notifications finished touching the group */
bit  gsleep;           /* the waiter sleeps in futex_wait(&g->woken, 0) */
bit  gone;             /* the waiter returned: the group's stack frame is dead */

/* the waiter's choices and counters (globals so that the watchdog can read them) */
bit  all;              /* wait_all (1) or wait_any (0) */
bit  timed;            /* a finite timeout: the futex wait may give up */
byte attached, detached;
byte wrc = 255;        /* what the wait returned */

/* group_notify, run by the resolver that took the group out of the sink word */
inline group_notify() {
  atomic { assert(!gone); old = remaining; remaining-- } /* fetch_sub(&g->remaining, 1) */
  if
  :: old == 1 ->
     atomic { assert(!gone); woken = 1 }  /* store(&g->woken, 1) */
     atomic { assert(!gone); gsleep = 0 } /* futex_wake(&g->woken, 1) */
  :: else
  fi;
  atomic { assert(!gone); acks++ }        /* last touch of g */
}

/* synchro__resolve's tail for future i: take the sink, publish DONE, notify. */
proctype Resolver(byte i) {
  byte s, old;
  atomic { s = sink[i]; sink[i] = SINK_DONE } /* exchange(&rec->sink, SINK_DONE) */
  done[i] = 1;                                /* fetch_add: COMPLETING -> DONE */
  if
  :: s == SINK_GROUP -> group_notify()
  :: else /* nobody, or another sink's notify: not our group */
  fi
}

/* synchro__attach_sink(fs[i], &g->base) */
inline attach_sink(i, rc) {
  atomic {
    if
    :: sink[i] == SINK_NONE -> sink[i] = SINK_GROUP; rc = 0
    :: sink[i] == SINK_DONE -> rc = EALREADY
    :: sink[i] == SINK_OTHER -> rc = EINVAL
    fi
  }
  if
  :: rc == EALREADY -> done[i] /* the resolver publishes DONE right after: spin */
  :: else
  fi
}

/* attach_group: per_call (wait_all) counts each future in remaining. */
inline attach_group(rc) {
  i = 0;
  do
  :: i < N ->
     if
     :: all -> remaining++ /* fetch_add(&g->remaining, 1), relaxed */
     :: else
     fi;
     attach_sink(i, arc);
     if
     :: arc == 0 -> attached++
     :: else ->
        if
        :: all -> remaining-- /* fetch_sub(&g->remaining, 1) */
        :: else
        fi
     fi;
     if
     :: arc == EINVAL -> rc = EINVAL; break
     :: else -> i++
     fi
  :: i >= N -> break
  od
}

/* detach_group: CAS group -> NONE on each, then wait for the notifications that got
 * hold of the group to finish with it. */
inline detach_group() {
  i = 0;
  do
  :: i < N ->
     atomic {
       if
       :: sink[i] == SINK_GROUP -> sink[i] = SINK_NONE; detached++
       :: else
       fi
     }
     i++
  :: i >= N -> break
  od;
  acks >= attached - detached /* spin until every notification acknowledged */
}

/* wait_group: sleep on woken == 0; a finite timeout may give up. */
inline wait_group(rc) {
  do
  :: woken -> rc = 0; break
  :: atomic { !woken -> gsleep = 1 } /* futex_wait(&g->woken, 0, deadline) */
     if
     :: !gsleep -> skip /* woken: look again */
     :: atomic { timed && gsleep -> gsleep = 0 } ; /* the deadline passed */
        rc = (woken -> 0 : EPENDING); break
     fi
  od
}

/* first_done: the index of the first DONE future, or N */
inline first_done(k) {
  k = 0;
  do
  :: k < N && !done[k] -> k++
  :: k >= N || done[k] -> break
  od
}

proctype Waiter() {
  byte i, arc, k, rc = 0, old;
  if
  :: all ->
     remaining = 1; /* our own token */
     attach_group(rc);
     if
     :: rc == EINVAL -> detach_group()
     :: else ->
        atomic { old = remaining; remaining-- };
        if
        :: old == 1 -> woken = 1 /* everything was already done */
        :: else
        fi;
        wait_group(rc);
        detach_group()
     fi
  :: !all ->
     first_done(k);
     if
     :: k < N -> rc = 0 /* one is done already: no group at all */
     :: else ->
        remaining = 1; /* the first notification wakes us */
        attach_group(rc);
        if
        :: rc == EINVAL -> detach_group()
        :: else ->
           first_done(k);
           if
           :: k < N -> woken = 1 /* one resolved while we attached */
           :: else
           fi;
           wait_group(rc);
           detach_group()
        fi
     fi
  fi;
  gone = 1; /* return: the group's frame is dead from here on */
  wrc = rc;
  if
  :: rc == 0 && all -> for (i : 0 .. N - 1) { assert(done[i]) }
  :: rc == 0 && !all -> first_done(k); assert(k < N)
  :: else
  fi
}

init {
  byte i;
  atomic {
    if :: all = 1 :: all = 0 fi;
    if :: timed = 1 :: timed = 0 fi;
    if :: sink[N - 1] = SINK_OTHER :: skip fi; /* the last future belongs to a queue */
    for (i : 0 .. N - 1) { run Resolver(i) };
    run Waiter()
  }
}

active proctype Watchdog() {
  byte i;
  timeout ->
  atomic {
    assert(gone);                          /* the waiter returned */
    assert(!gsleep);                       /* no sleeper left behind */
    assert(acks + detached == attached);   /* each attachment ended exactly once */
    for (i : 0 .. N - 1) { assert(sink[i] == SINK_DONE && done[i]) }
  }
}

ltl returns { <> gone } /* the waiter always returns (pan -a; holds without fairness) */

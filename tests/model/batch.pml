/* tests/model/batch.pml - the batch-wait group (synchro_future_wait_all / _wait_any in
 * lib/future.c) against the resolvers that notify it, for the Spin model checker.
 *
 * The group lives on the waiter's stack: once the waiter returns it is gone, and a
 * notification still touching it would write into a dead stack frame. The protocol:
 * attach claims each future's sink word with a CAS (NONE -> group), then sets SINKED
 * in its state word with a CAS that fails once the future is DONE (then it gives the
 * word back); the resolver's one CAS that publishes DONE tells it whether SINKED was
 * set, and only then does it read the word and notify: one decrement of remaining,
 * which is its last touch of the group, except for the notification that takes it to
 * zero: that one sets woken and notifier_done and futex-wakes in one kernel step
 * (FUTEX_WAKE_OP), its last touch.
 * wait_all takes one token per future plus its own up front and gives back, in one
 * decrement, the tokens of the futures it could not attach and its own. The waiter
 * detaches by clearing SINKED with a CAS that fails once DONE (then gives the word
 * back), then waits until remaining holds what the
 * notifications it still expects leave behind, and for notifier_done if one of them
 * took remaining to zero.
 *
 * Each future has its own resolver process. In the library one loop thread resolves
 * them one after the other; letting them run in parallel only adds interleavings, so
 * what holds here holds there.
 *
 * Properties: no notification touches the group after the waiter returned (`gone`);
 * every attached future is detached or notifies exactly once; a wait_all that
 * returned 0 saw every future DONE, a wait_any one of them; nobody is left blocked
 * (futex sleeper without a waker, or a waiter spinning forever). */

#define N 3 /* futures in the batch */

/* sink word (lib/internal.h): NONE or a pointer; it counts only while SINKED is set */
#define SINK_NONE  0
#define SINK_GROUP 2 /* our group */
#define SINK_OTHER 3 /* a completion queue or host owns the future */

#define EALREADY 4
#define EINVAL   5
#define EPENDING 6

byte sink[N];          /* rec->sink */
bit  sinked[N];        /* rec->state & SINKED */
bit  done[N];          /* PHASE(rec->state) == DONE */

/* the group (group_t on the waiter's stack) */
byte remaining;        /* notifications still needed before waking (uint32: may wrap) */
bit  woken;            /* futex word, GROUP_WOKEN */
bit  ndone;            /* futex word, GROUP_NOTIFIER_DONE */
byte notes;            /* ghost: notifications made (not in the library) */
bit  gsleep;           /* the waiter sleeps in futex_wait(&g->woken, 0) */
bit  gone;             /* the waiter returned: the group's stack frame is dead */

/* the waiter's choices and counters (globals so that the watchdog can read them) */
bit  all;              /* wait_all (1) or wait_any (0) */
bit  timed;            /* a finite timeout: the futex wait may give up */
byte attached, detached;
bit  self_zero;        /* the waiter's own decrement took remaining to zero */
byte wrc = 255;        /* what the wait returned */

/* group_notify, run by the resolver that took the group out of the sink word */
inline group_notify() {
  /* fetch_sub(&g->remaining, 1): the last touch of g unless it returned 1 */
  atomic { assert(!gone); old = remaining; remaining--; notes++ }
  if
  :: old == 1 ->
     /* futex_or_wake(&g->woken, GROUP_WOKEN | GROUP_NOTIFIER_DONE): one kernel step
      * sets both bits and wakes the sleeper; the last touch */
     atomic { assert(!gone); woken = 1; ndone = 1; gsleep = 0 }
  :: else
  fi
}

/* synchro__resolve's tail for future i: publish DONE with the CAS, whose old value
 * says whether a sink is attached; if so, read the word and notify. */
proctype Resolver(byte i) {
  byte s, old;
  bit had;
  atomic { had = sinked[i]; done[i] = 1 } /* the CAS: PENDING -> DONE */
  if
  :: had ->
     s = sink[i]; /* the relaxed load, ordered by the CAS that read SINKED */
     if
     :: s == SINK_GROUP -> group_notify()
     :: else -> assert(s != SINK_NONE) /* another sink's notify: not our group */
     fi
  :: else
  fi
}

/* synchro__attach_sink(fs[i], &g->base): DONE already? claim the word; set SINKED
 * unless DONE meanwhile (then give the word back). */
inline attach_sink(i, rc) {
  rc = (done[i] -> EALREADY : 0); /* the acquire load of the state */
  if
  :: rc == 0 ->
     atomic { /* CAS(&rec->sink, NONE, group) */
       if
       :: sink[i] == SINK_NONE -> sink[i] = SINK_GROUP
       :: else -> rc = EINVAL
       fi
     }
     if
     :: rc == EINVAL -> rc = (done[i] -> EALREADY : EINVAL) /* synchro__is_done */
     :: else ->
        atomic { /* CAS(&rec->state, st, st | SINKED), retried until it fails on DONE */
          if
          :: done[i] -> rc = EALREADY
          :: else -> sinked[i] = 1
          fi
        }
        if
        :: rc == EALREADY -> sink[i] = SINK_NONE /* resolved meanwhile: give the word back */
        :: else
        fi
     fi
  :: else
  fi
}

/* attach_group: counts the attached futures (wait_all took their tokens already). */
inline attach_group(rc) {
  i = 0;
  do
  :: i < N ->
     attach_sink(i, arc);
     if
     :: arc == 0 -> attached++
     :: else
     fi;
     if
     :: arc == EINVAL -> rc = EINVAL; break
     :: else -> i++
     fi
  :: i >= N -> break
  od
}

/* detach_group: CAS group -> NONE on each, then wait for the notifications that got
 * hold of the group to finish with it. `base`: remaining once every attached future
 * notified, counted after the waiter's own decrement (wait_all: attached; wait_any: 1). */
inline detach_group(base) {
  i = 0;
  if
  :: attached == 0 -> goto detached_all /* nothing attached: nothing to wait for */
  :: else
  fi;
  do
  :: i < N ->
     if
     :: sink[i] == SINK_GROUP -> /* ours: detach_sink */
        atomic { /* CAS(&rec->state, st, st & ~SINKED), failing once DONE */
          if
          :: !done[i] && sinked[i] -> sinked[i] = 0; detached++; ok = 1
          :: else -> ok = 0
          fi
        }
        if
        :: ok -> sink[i] = SINK_NONE /* give the word back */
        :: else
        fi
     :: else
     fi;
     i++
  :: i >= N -> break
  od;
  notifying = attached - detached;
  final = base - notifying;  /* byte arithmetic wraps as the uint32 does */
  remaining == final;        /* spin: every notification made its decrement */
  if
  :: !self_zero && notifying != 0 && notifying >= base ->
     ndone /* spin: the one that took remaining to zero is done with the group */
  :: else
  fi;
detached_all:
  skip
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
  byte i, arc, k, rc = 0, old, give, notifying, final;
  bit ok;
  if
  :: all ->
     remaining = N + 1; /* one token per future and our own, before any can notify */
     attach_group(rc);
     give = N - attached + 1; /* the unattached futures' tokens and our own */
     atomic { old = remaining; remaining = remaining - give };
     if
     :: old == give -> self_zero = 1; woken = 1 /* everything was already done */
     :: else
     fi;
     if
     :: rc == EINVAL -> skip
     :: else -> wait_group(rc)
     fi;
     detach_group(attached)
  :: !all ->
     first_done(k);
     if
     :: k < N -> rc = 0 /* one is done already: no group at all */
     :: else ->
        remaining = 1; /* the first notification wakes us */
        attach_group(rc);
        if
        :: rc == EINVAL -> detach_group(1)
        :: else ->
           first_done(k);
           if
           :: k < N -> woken = 1 /* one resolved while we attached */
           :: else
           fi;
           wait_group(rc);
           detach_group(1)
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
    if :: sink[N - 1] = SINK_OTHER; sinked[N - 1] = 1 :: skip fi; /* the last belongs to a queue */
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
    assert(notes + detached == attached);  /* each attachment ended exactly once */
    for (i : 0 .. N - 1) { assert(done[i] && (sink[i] != SINK_GROUP || sinked[i])) }
  }
}

ltl returns { <> gone } /* the waiter always returns (pan -a; holds without fairness) */

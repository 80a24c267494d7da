/*
 * cancel.pml: Promela model of the backup stream/copier cancel protocol
 * (DESIGN.md "Iterator and copier", rules 1-5).
 *
 * Checked by tests/model/check-model.sh (make check); see README.md in this
 * directory for what is modelled, what is abstracted away, and how to replay
 * a counterexample.
 *
 * Threads: copier (fills a RING-slot ring, rate limiter as a timed wait),
 * reader (edb_backup_read in a loop, then maybe closes), closer (close from
 * another thread), stopper (edb_backup_stop), envclose (edb_env_close, the one
 * place that waits for copiers).  init picks the scenario nondeterministically.
 *
 * Seeded bugs (spin -DBUG_x), each of which the check requires to be caught:
 *   BUG_WAIT_IGNORES_CANCEL  copier's not-full wait loop does not re-check canceled
 *   BUG_CANCEL_NO_MUTEX      cancel writes the flag and wakes without holding the lock
 *   BUG_SIGNAL_ONE           cancel wakes only not-empty, not both conditions
 *   BUG_JOIN_LOCKED          env close waits for the copier holding the stream lock
 *   BUG_FREE_NO_REF          close frees the shared state without a reference
 *   BUG_READ_NO_REF          read does not hold a reference while it waits
 */

#define RING    2      /* ring slots: the copier can fill the ring and block */
#ifndef NBATCH
#define NBATCH 3
#endif
#ifndef MAXSPUR
#define MAXSPUR 1
#endif

#define R_OK       0
#define R_CANCELED 1
#define R_EOF      2
#define R_ERR      3

/* ---- shared state of one stream (freed with the last reference) ---- */
bit  lk;               /* s->lock */
bit  w_nf;             /* copier waiting on s->not_full */
bit  w_ne;             /* reader waiting on s->not_empty */
byte count;            /* ring slots filled, under lk */
bit  canceled;         /* sticky, under lk */
bit  fin;              /* copier done producing (end or error), under lk */
bit  failed;           /* copier's error, under lk */
byte refs = 2;         /* the handle's and the copier's */
bit  freed;

/* ---- env/backup state (outlives the stream) ---- */
bit  bklk;             /* env->bk_lock: guards listed and ncopiers */
bit  listed = 1;       /* stream on its backup's list: not yet closed */
byte ncopiers = 1;     /* live copiers of the env, under bklk */
bit  w_env;            /* env close waiting on env->bk_cond */

/* ---- scenario and application contract ---- */
bit  closing;          /* the application has called close: no read begins after */
byte spur = MAXSPUR;

/* ---- observations for the LTL claims ---- */
bit  close_ret, copier_gone, env_closed, reader_done;
bit  want_close = 1, want_env;

/* the condition under which the copier's not-full wait goes on waiting */
#ifdef BUG_WAIT_IGNORES_CANCEL
#define LIVE_WAIT 1
#else
#define LIVE_WAIT (!canceled)
#endif

inline lock(l)   { atomic { l == 0 -> l = 1 } }
inline unlock(l) { assert(l == 1); l = 0 }

/* pthread_cond_wait: unlock and mark waiting in one step, wait for the mark
 * to be cleared by a signal/broadcast or a spurious wakeup, re-lock. */
inline condwait(l, mark) {
    atomic { assert(l == 1); l = 0; mark = 1 };
    if
    :: mark == 0
    :: atomic { spur > 0 && mark == 1 -> spur--; mark = 0 }
    fi;
    lock(l)
}
/* pthread_cond_timedwait: as above, and it may time out at any moment. */
inline timedwait(l, mark) {
    atomic { assert(l == 1); l = 0; mark = 1 };
    if
    :: mark == 0
    :: mark = 0        /* timed out */
    fi;
    lock(l)
}
inline wake(mark) { mark = 0 }

inline put() {
    atomic {
        assert(!freed && refs > 0);
        refs--;
        if
        :: refs == 0 -> freed = 1
        :: else
        fi
    }
}

/* cancel one stream: under its lock, set the flag and wake both conditions */
inline cancel() {
#ifndef BUG_CANCEL_NO_MUTEX
    lock(lk);
#endif
    assert(!freed);
    canceled = 1;
#ifndef BUG_SIGNAL_ONE
    wake(w_nf);
#endif
    wake(w_ne);
#ifndef BUG_CANCEL_NO_MUTEX
    unlock(lk)
#endif
}

proctype copier()
{
    byte b = 0;
    do
    :: b < NBATCH ->
        /* read and hash one batch: no lock held (I/O) */
        if
        :: skip
        :: lock(lk); assert(!freed); failed = 1; unlock(lk); break   /* I/O error */
        fi;
        lock(lk);
        assert(!freed);
        /* rate limiter: a timed wait that cancel interrupts */
        if
        :: !canceled -> timedwait(lk, w_nf); assert(!freed)
        :: else
        fi;
        /* wait for a free slot */
        do
        :: !LIVE_WAIT -> break
        :: LIVE_WAIT && count < RING -> break
        :: LIVE_WAIT && count == RING -> condwait(lk, w_nf); assert(!freed)
        od;
        if
        :: canceled -> unlock(lk); break
        :: else -> count++; wake(w_ne); unlock(lk)
        fi;
        b++
    :: else -> break
    od;
    /* the one exit path: finish, wake the reader, leave, unreference */
    lock(lk);
    assert(!freed);
    fin = 1;
    wake(w_ne);
    unlock(lk);
    lock(bklk);
    ncopiers--;
    wake(w_env);
    unlock(bklk);
    copier_gone = 1;
    put()
}

/* edb_backup_close: unlink from the backup (once), cancel, drop the handle's reference */
inline close_stream() {
    lock(bklk);
    if
    :: listed ->
        listed = 0;
        unlock(bklk);
        cancel();
#ifdef BUG_FREE_NO_REF
        freed = 1
#else
        put()
#endif
    :: else -> unlock(bklk)
    fi
}

/* the application's reading thread: edb_backup_read until it returns no
 * data, then closes the stream unless another thread does */
proctype reader(bit closes)
{
    byte rc;
    do
    :: atomic { !closing ->                 /* read entered before close was called */
#ifndef BUG_READ_NO_REF
           refs++                           /* the read's reference */
#else
           skip
#endif
       };
       lock(lk);
       assert(!freed);
       do
       :: canceled -> rc = R_CANCELED; break
       :: !canceled && count > 0 -> count--; wake(w_nf); rc = R_OK; break
       :: !canceled && count == 0 && fin && failed -> rc = R_ERR; break
       :: !canceled && count == 0 && fin && !failed -> rc = R_EOF; break
       :: !canceled && count == 0 && !fin -> condwait(lk, w_ne); assert(!freed)
       od;
       unlock(lk);
#ifndef BUG_READ_NO_REF
       put();
#endif
       if
       :: rc == R_OK
       :: else -> break
       fi
    :: closing -> break
    od;
    reader_done = 1;
    if
    :: closes -> closing = 1; close_stream(); close_ret = 1
    :: else
    fi
}

/* another application thread closes the stream at any moment */
proctype closer()
{
    closing = 1;
    close_stream();
    close_ret = 1
}

/* edb_backup_stop from any thread: cancel every listed stream */
proctype stopper()
{
    lock(bklk);
    if
    :: listed -> cancel()
    :: else
    fi;
    unlock(bklk)
}

/* edb_env_close: end the backup (close its stream if still open), then wait
 * for its copiers to leave */
proctype envclose()
{
    closing = 1;
    close_stream();
#ifdef BUG_JOIN_LOCKED
    lock(lk);
#endif
    lock(bklk);
    do
    :: ncopiers == 0 -> break
    :: else -> condwait(bklk, w_env)
    od;
    unlock(bklk);
#ifdef BUG_JOIN_LOCKED
    unlock(lk);
#endif
    env_closed = 1
}

init {
    atomic {
        run copier();
        if
        :: run reader(1)
        :: run reader(0); run closer()
        fi;
        if
        :: run stopper()
        :: skip
        fi;
        if
        :: want_env = 1; run envclose()
        :: skip
        fi
    }
}

#ifdef LIVE
/* close returns */
ltl close_returns { <> close_ret }
/* every read returns, at the latest with EDB_CANCELED */
ltl read_returns  { <> reader_done }
/* once canceled, the copier leaves */
ltl copier_ends   { [] (canceled -> <> copier_gone) }
/* the shared state is freed */
ltl freed_ends    { <> freed }
/* env close returns (when it is called) */
ltl env_returns   { [] (want_env -> <> env_closed) }
#endif
#ifdef LIVE
ltl all_done { <> (close_ret && reader_done && copier_gone && freed && (!want_env || env_closed)) }
#endif

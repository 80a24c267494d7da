/*
 * cancel.pml: Promela model of the backup cancel protocol AS IMPLEMENTED in
 * backup/ring.c, stream.c, copier.c and backup.c (DESIGN.md "Iterator and
 * copier", rules 1-5; doc/threading.md).
 *
 * Checked by tests/model/check-model.sh in `make check`.  README.md in this
 * directory says what is modelled, what is abstracted away, how to replay a
 * counterexample, and what each seeded bug is.
 *
 * The model starts where edb_backup_begin() and edb_backup_open() have
 * returned: one backup (bk) with one stream (s) whose copier thread runs.
 * Threads:
 *   copier   copier_main(): reserve / fill / rate-limit / commit NBATCH slots
 *            of a RING-slot ring, then its one exit path
 *   reader   the application's reading thread: edb_backup_read() until it
 *            returns no data; then, in some runs, edb_backup_close()
 *   closer   (other runs) edb_backup_close() from another thread, at any moment
 *   stopper  (some runs) edb_backup_stop() from any thread
 *   owner    edb_backup_end(), then edb_env_close() (reg_shutdown: the one
 *            place that waits for copiers), or only one of the two, or each
 *            in its own thread, racing
 *   wakeups  spurious wakeups (at most MAXSPUR) and the rate limiter's timer
 * init picks the scenario nondeterministically (16 of them; -DQUICK: 3).
 *
 * Line numbers (file:line) refer to backup/*.c and engine/env.c at commit
 * caaf293 of the backup branch (README.md), except in the SC_BEGIN parts
 * (beginner, backup_open): backup.c and stream.c at commit 3f40f84 (model2);
 * reg_get and env close's first step: backup.c and engine/env.c at commit
 * 3cc9bc6 (model3); the zero-copy drain: ring.c and copier.c at main 5920ab2.
 *
 * Memory safety: each object (ring+stream, backup, registry, snapshot) has a
 * reference count and a `freed` flag set by the put that drops the last
 * reference; every access to an object asserts that it is not freed.
 *
 * Seeded bugs (spin -DBUG_x); the check requires each to be caught:
 *   BUG_WAIT_IGNORES_CANCEL  edb__ring_reserve's wait loop does not re-check canceled
 *   BUG_CANCEL_NO_MUTEX      edb__ring_cancel sets the flag and broadcasts without ring.mu
 *   BUG_SIGNAL_ONE           edb__ring_cancel wakes only not_empty, not both conditions
 *   BUG_JOIN_LOCKED          reg_shutdown joins the claimed copier while holding reg->lock
 *   BUG_FREE_NO_REF          edb_backup_close frees the stream instead of dropping its reference
 *   BUG_READ_NO_REF          edb_backup_read does not hold a reference while it reads
 *   BUG_END_NO_REF           bk_end_work closes a stream without taking a reference on it
 *   BUG_BEGIN_LEAVE_EARLY    (SC_BEGIN) edb_backup_begin leaves reg->busy before releasing the
 *                            snapshot of a backup it cancels because env close is closing
 *                            (the order of backup.c before commit 3f40f84)
 *   BUG_BEGIN_NO_BUSY        (SC_BEGIN) edb_backup_begin does not count itself in reg->busy
 *   BUG_OPEN_START_LATE      (SC_BEGIN) edb_backup_open registers and starts the copier after
 *                            leaving reg->busy
 *   BUG_DRAIN_IGNORES_CANCEL edb__ring_drain (every copier, after finish) waits until a reader
 *                            got the end or the error, without re-checking canceled
 *   BUG_LEAVE_NO_WAKE        a reader leaving a canceled or drained ring does not broadcast
 *                            not_full: a copier waiting in edb__ring_drain for `!reading`
 *                            sleeps on
 *   BUG_POLL_IGNORES_WAKE    (SC_WRITEFD) edb_backup_write_fd's wait for its descriptor to
 *                            drain (save.c sink_wait) polls the descriptor only, not the
 *                            stream's wake-up eventfd: a cancel never reaches a writer whose
 *                            reader stopped reading (the blocking write() of main ad5c262)
 *   BUG_CLOSE_NO_MARK        (SC_BEGIN) edb_env_close marks the env closed for backups only when
 *                            a registry exists (engine/env.c before commit 3cc9bc6): a begin that
 *                            makes the first registry just after close looked snapshots a
 *                            closing LMDB
 *
 * -DSC_BEGIN: a different start, edb_backup_begin racing edb_env_close (the
 * busy / closing handshake): no backup, stream or copier exists yet, the
 * registry does; one thread calls edb_backup_begin and, if it succeeds,
 * edb_backup_open, edb_backup_close and edb_backup_end; another closes the
 * env; edb_backup_stop may race (SC_STOP).  The registry may also not exist
 * yet (no backup was ever made on the env): then begin creates it, with the
 * env-close hook, unless env close has already taken the env out of the list
 * of open envs (engine/env.c edb__env_bk_lock, commit 3cc9bc6).
 *
 * -DSC_WRITEFD: the stream is drained by edb_backup_write_fd (process
 * writer, backup/save.c) into a non-blocking descriptor whose reader may stop
 * reading at any moment; a write that would block polls the descriptor and
 * the wake-up eventfd that edb__ring_cancel signals.  Others: stop then end,
 * end, or env close.
 *
 * Zero-copy streams (edb_backup_save / edb_backup_write_fd): in every start
 * the stream is nondeterministically zero-copy (zc): its slots reference the
 * snapshot's pages, and the copier waits in edb__ring_drain after finishing
 * until every slot is drained or the stream is canceled.
 */

#ifndef RING
#define RING    2      /* ring slots (edb__ring_init: at least 2) */
#endif
#ifndef NBATCH
#define NBATCH  3      /* slots the copier publishes: more than RING, so it blocks */
#endif
#ifndef MAXSPUR
#define MAXSPUR 1      /* spurious wakeups in one execution (every wait loops) */
#endif
#ifndef FAILAT
#define FAILAT  1      /* the batch whose read may fail (after one slot is out) */
#endif

#ifndef RATEAT
#define RATEAT  255    /* the batch after which the rate limiter may sleep; 255: any */
#endif

/* The initial state: after edb_backup_begin + edb_backup_open (default), or
 * before edb_backup_begin, with the env's registry created (SC_BEGIN). */
#ifdef SC_BEGIN
#define I_ONE  0       /* backup, stream, copier, snapshot: not yet */
#define I_REG  1       /* the registry: the env's reference only */
#else
#define I_ONE  1
#define I_REG  3       /* the env, the backup, the copier */
#endif

#define R_OK       0
#define R_CANCELED 1
#define R_EOF      2
#define R_ERR      3   /* the copier's I/O error (EDB_IO / EDB_CORRUPT) */

/* ---- ring + stream (ring.h struct edb__ring, stream.h struct edb_backup_stream) ---- */
bit  mu;               /* ring.mu */
bit  w_nf;             /* the copier waits on not_full (reserve, and the rate limiter) */
bit  w_ne;             /* the reader waits on not_empty */
byte count;            /* ring.count */
bit  canceled;         /* ring.canceled: sticky, under mu */
bit  done;             /* ring.done */
byte err;              /* ring.err: R_OK, R_CANCELED or R_ERR */
bit  eof;              /* ring.eof: the end was handed to a reader */
bit  reading;          /* ring.reading */
bit  drained;          /* ring.drained: a reader was given the end or the copier's error */
bit  memfreed;         /* the copier freed the slot memory (edb__ring_release_mem) */
byte srefs = 2*I_ONE;  /* s->ref: the handle and the copier */
bit  sfreed;
bit  linked = I_ONE;   /* s->linked: in bk->streams, under bk->lock */
bit  s_inh = I_ONE;    /* the stream handle is in the handle table (g_lock) */

/* ---- backup (backup.h struct edb_backup) ---- */
bit  bkl;              /* bk->lock */
byte bkrefs = 2*I_ONE; /* bk->ref: the handle and the stream */
bit  bkfreed;
bit  bk_inh = I_ONE;   /* the backup handle is in the handle table */
bit  bk_linked = I_ONE; /* bk->linked: in reg->backups, under reg->lock */
bit  bk_ended, bk_canceled;
bit  bk_hassnap = I_ONE; /* bk->snap != NULL */

/* ---- registry (backup.h struct edb__bk_reg) and the copier's entry in it ---- */
bit  rl;               /* reg->lock */
byte rrefs = I_REG;    /* reg->ref: the env, the backup, the copier */
bit  rfreed;
bit  env_inh = 1;      /* the env is in the handle table */
bit  closing;          /* reg->closing */
byte busy;             /* reg->busy */
bit  w_idle;           /* env close waits on reg->idle */
bit  c_registered = I_ONE; /* c->registered: in reg->copiers */
bit  c_claimed;        /* c->claimed: env close will join it */
bit  c_detached;

/* ---- snapshot (snapshot.h edb__snap): the backup and the copier hold it ---- */
byte snrefs = 2*I_ONE;
bit  snfreed;
bit  lmdb_closed;      /* edb_env_close went on to close LMDB */

byte spur = MAXSPUR;

/* ---- observations for the LTL claims ---- */
bit  close_ret, reader_done, copier_gone, stop_done;
byte owner_done, owners = 1;   /* owner threads finished / started */
bit  want_env, env_closed;
bit  begin_done;       /* SC_BEGIN: edb_backup_begin (and end, if it succeeded) returned */
bit  el;               /* env->bk_lock (SC_BEGIN: the only steps that take it are modelled) */
bit  env_gone;         /* env->bk_state == &env_closed */
bit  c_started;        /* SC_BEGIN: edb_backup_open started a copier thread */
bit  hook = 1;         /* env->bk_shutdown is set (a registry was made); SC_BEGIN may start without */
bit  zc;               /* the stream is zero-copy: its slots point into the snapshot's map */
/* ---- SC_WRITEFD: edb_backup_write_fd's output descriptor and wake-up eventfd ---- */
bit  wake_reg;         /* ring.wake_fd is registered (edb__ring_set_wake), under mu */
bit  wakefd;           /* the eventfd is readable (cancel or set_wake wrote to it); sticky */
bit  stalled;          /* the descriptor's reader stopped reading: writes would block, for good */

/* ---- locks and condition variables (TESTING.md "Hangs") ----
 *
 * A mutex is `atomic { l == 0 -> l = 1 }`.  A condition wait unlocks and marks
 * the waiter in one atomic step, waits for the mark to be cleared (by a
 * broadcast, a spurious wakeup or, for a timed wait, the timer; the last two
 * come from the process `wakeups`), then re-locks.
 *
 * Critical sections (CS) are atomic blocks from the lock to the unlock.  That
 * is the classic reduction (Lipton): every variable touched inside is guarded
 * by the lock, or is a reference count or `freed` flag whose only writers are
 * atomic puts that commute with the section; a wait inside a section ends the
 * atomic step (the mark test blocks), as does a lock that is taken.  The
 * reduction is unsound when shared state is written WITHOUT the lock, so the
 * one seeded bug that does that (BUG_CANCEL_NO_MUTEX) runs fine-grained
 * (FINE: every statement its own step). */
#ifdef BUG_CANCEL_NO_MUTEX
#define FINE
#endif
#ifdef FINE
#define CS
#else
#define CS atomic
#endif

#define LOCK(l, fr)   assert(!(fr)); atomic { l == 0 -> l = 1 }; assert(!(fr))
#define UNLOCK(l, fr) assert(!(fr) && l == 1); l = 0
#define WAIT(l, fr, mark) \
    atomic { assert(!(fr) && l == 1); l = 0; mark = 1 }; \
    mark == 0; \
    LOCK(l, fr)

bit  tmo;              /* the copier's wait on not_full is the rate limiter's timed one */
bit  timedout;         /* ... and the timer ended it (ETIMEDOUT) */

/* Spurious wakeups (at most MAXSPUR in all) and the rate limiter's timer. */
active proctype wakeups()
{
end:
    do
    :: atomic { spur > 0 && w_nf == 1 -> spur--; w_nf = 0 }
    :: atomic { spur > 0 && w_ne == 1 -> spur--; w_ne = 0 }
    :: atomic { spur > 0 && w_idle == 1 -> spur--; w_idle = 0 }
    :: atomic { tmo && w_nf == 1 -> w_nf = 0; timedout = 1 }
#ifdef SC_WRITEFD
    :: atomic { !stalled -> stalled = 1 }   /* the descriptor's reader stops reading */
#endif
    od
}

/* ---- reference counts (engine/ref.h: each get or put is one atomic step) ---- */
inline snput() {
    atomic {
        assert(!snfreed && snrefs > 0);
        snrefs--;
        if
        :: snrefs == 0 -> snfreed = 1; assert(!lmdb_closed)   /* mdb_txn_abort needs the env */
        :: else
        fi
    }
}
inline rput() {
    atomic {
        assert(!rfreed && rrefs > 0);
        rrefs--;
        if
        :: rrefs == 0 -> assert(rl == 0); rfreed = 1
        :: else
        fi
    }
}
/* edb__bk_put (backup.c:243-252): the last put frees bk, then drops its
 * registry reference */
inline bkput() {
    atomic {
        assert(!bkfreed && bkrefs > 0);
        bkrefs--;
        last = (bkrefs == 0);
        if
        :: last -> assert(bkl == 0); bkfreed = 1
        :: else
        fi
    };
    if
    :: last -> rput()
    :: else
    fi
}
/* edb__stream_put (stream.c:27-37): the last put destroys the ring, frees s,
 * then drops the stream's reference on its backup */
inline sput() {
    atomic {
        assert(!sfreed && srefs > 0);
        srefs--;
        last = (srefs == 0);
        if
        :: last -> assert(mu == 0); sfreed = 1
        :: else
        fi
    };
    if
    :: last -> bkput()
    :: else
    fi
}

/* edb__ring_cancel (ring.c:174-182): sticky flag under ring.mu, broadcast both */
inline ring_cancel() {
    CS {
#ifndef BUG_CANCEL_NO_MUTEX
        LOCK(mu, sfreed);
#endif
        assert(!sfreed);
        canceled = 1;
#ifndef BUG_SIGNAL_ONE
        w_nf = 0;                   /* broadcast not_full */
#endif
        w_ne = 0;                   /* broadcast not_empty */
        if                          /* edb__sys_wake_signal: the consumer's eventfd */
        :: wake_reg -> wakefd = 1
        :: else
        fi;
#ifndef BUG_CANCEL_NO_MUTEX
        UNLOCK(mu, sfreed)
#endif
    }
}

/* bk_cancel (backup.c:254-264); the caller holds reg->lock (stop, env close) */
inline bk_cancel() {
    LOCK(bkl, bkfreed);
    bk_canceled = 1;
    if
    :: linked -> ring_cancel()
    :: else
    fi;
    UNLOCK(bkl, bkfreed)
}

/* bk_end_work (backup.c:266-293): done once, by whoever unlinked bk */
inline bk_end_work() {
    CS {
        LOCK(bkl, bkfreed);
        bk_ended = 1;
        if
        :: linked ->
            linked = 0;
#ifndef BUG_END_NO_REF
            assert(!sfreed); srefs++;                   /* :277 keep it while we close it */
#endif
            took = 1
        :: else -> took = 0
        fi;
        hassnap = bk_hassnap;                           /* :282-283 take the snapshot */
        bk_hassnap = 0;
        UNLOCK(bkl, bkfreed)
    };
    if
    :: took ->
        /* edb__stream_close_unlinked (stream.c:39-45) */
        ring_cancel();
        atomic { rm = s_inh; s_inh = 0 };               /* edb__handle_remove */
        if
        :: rm -> sput()                                 /* the handle's reference */
        :: else
        fi;
#ifndef BUG_END_NO_REF
        sput()                                          /* :290 ours */
#else
        skip
#endif
    :: else
    fi;
    if
    :: hassnap -> snput()                               /* :292 may abort the read txn */
    :: else
    fi
}

/* edb__reg_leave (backup.c:189-196) */
inline reg_leave() {
    CS {
        LOCK(rl, rfreed);
        busy--;
        if
        :: busy == 0 -> w_idle = 0                      /* broadcast reg->idle */
        :: else
        fi;
        UNLOCK(rl, rfreed)
    }
}

/* edb_backup_end (backup.c:424-450) */
inline backup_end() {
    atomic { rm = bk_inh; bk_inh = 0 };                 /* :427 edb__handle_remove */
    if
    :: rm ->
        CS {
            LOCK(rl, rfreed);                           /* :432 */
            if
            :: bk_linked -> bk_linked = 0; busy++; mine = 1   /* :433-443 */
            :: else -> mine = 0
            fi;
            UNLOCK(rl, rfreed)
        };
        if
        :: mine ->
            bk_end_work();                              /* :446 */
            reg_leave()
        :: else
        fi;
        bkput()                                         /* :449 the handle's reference */
    :: else
    fi
}

/* edb_backup_close (stream.c:175-183) */
inline backup_close() {
    atomic { rm = s_inh; s_inh = 0 };                   /* :178 edb__handle_remove */
    if
    :: rm ->
        ring_cancel();                                  /* :180 */
        CS {                                            /* stream_unlink (stream.c:47-66) */
            LOCK(bkl, bkfreed);
            if
            :: linked -> linked = 0
            :: else
            fi;
            UNLOCK(bkl, bkfreed)
        };
#ifndef BUG_FREE_NO_REF
        sput()                                          /* :182 the handle's reference */
#else
        atomic { assert(!sfreed); sfreed = 1 }; bkput() /* free(s) right away */
#endif
    :: else
    fi
}

/* copier_main (copier.c:754-782).  run() is abstracted to NBATCH slots, each
 * edb__ring_reserve, read_pages (may fail at batch FAILAT), then publish:
 * rate_wait (may sleep) and edb__ring_commit. */
proctype copier()
{
    byte b = 0, rc = R_OK;
    bit last;
    do
    :: b == NBATCH -> break
    :: b < NBATCH ->
        CS {                                            /* edb__ring_reserve (ring.c:106-118) */
            LOCK(mu, sfreed);
            do
#ifndef BUG_WAIT_IGNORES_CANCEL
            :: !canceled && count == RING -> WAIT(mu, sfreed, w_nf)   /* :110-111 */
#else
            :: count == RING -> WAIT(mu, sfreed, w_nf)
#endif
            :: else -> break
            od;
            if
            :: canceled -> rc = R_CANCELED              /* :112 */
            :: else
            fi;
            UNLOCK(mu, sfreed)
        };
        if
        :: rc != R_OK -> break                          /* EDB_RET */
        :: else
        fi;
        /* read_pages into the reserved slot, no lock held (copier.c:330): the
         * slot is in the ring, the fd in the snapshot; a low-pin copier takes
         * a fresh read txn here (lowpin.c), so LMDB must still be open */
        assert(!sfreed && !snfreed && !lmdb_closed);
        if
        :: b == FAILAT -> rc = R_ERR; break             /* pread failed / file too short */
        :: skip
        fi;
        /* publish -> rate_wait (copier.c:148-175): sleeps when bytes are due later */
        if
        :: skip
        :: RATEAT == 255 || b == RATEAT ->
           CS {                                         /* edb__ring_sleep_until (ring.c:132-150) */
               LOCK(mu, sfreed);
               do
               :: canceled -> rc = R_CANCELED; break    /* :137-140 */
               :: else ->                               /* :142 pthread_cond_timedwait */
                   tmo = 1;
                   timedout = 0;
                   WAIT(mu, sfreed, w_nf);
                   tmo = 0;
                   if
                   :: timedout ->                       /* :143-144 ETIMEDOUT */
                       if
                       :: canceled -> rc = R_CANCELED
                       :: else
                       fi;
                       break
                   :: else                              /* woken early: loop */
                   fi
               od;
               UNLOCK(mu, sfreed)
           }
        fi;
        if
        :: rc != R_OK -> break
        :: else
        fi;
        CS {                                            /* edb__ring_commit (ring.c:120-130) */
            LOCK(mu, sfreed);
            count++;
            w_ne = 0;                                   /* broadcast not_empty */
            UNLOCK(mu, sfreed)
        };
        b++
    od;
    /* the one exit path */
    CS {                                                /* edb__ring_finish (ring.c:152-170) */
        LOCK(mu, sfreed);
        done = 1;
        err = rc;
        w_ne = 0;
        w_nf = 0;
        UNLOCK(mu, sfreed)
    };
    if                                                  /* a copying stream's copier drops */
    :: !zc -> snput()                                   /* the snapshot before the wait */
    :: else
    fi;
    /* copier_main (issue #11): every copier waits in edb__ring_drain until no
     * reader will touch a slot again (a reader was given the end or the
     * error, or canceled) and no reader is inside, then frees the slot
     * memory (edb__ring_release_mem) and the zero-copy map itself */
    CS {                                                /* edb__ring_drain */
        LOCK(mu, sfreed);
        do
#ifndef BUG_DRAIN_IGNORES_CANCEL
        :: (!canceled && !drained) || reading -> WAIT(mu, sfreed, w_nf)
#else
        :: !drained || reading -> WAIT(mu, sfreed, w_nf)
#endif
        :: else -> break
        od;
        UNLOCK(mu, sfreed)
    };
    CS {                                                /* edb__ring_release_mem */
        LOCK(mu, sfreed);
        assert(!reading);
        memfreed = 1;
        UNLOCK(mu, sfreed)
    };
    sput();                                             /* copier_release (copier.c:121-132) */
    if
    :: zc -> snput()                                    /* a zero-copy copier's, after the drain */
    :: else
    fi;
    CS {                                                /* copier.c:763-777 */
        LOCK(rl, rfreed);
        if
        :: !c_claimed -> c_registered = 0; c_detached = 1   /* unlink; pthread_detach */
        :: else
        fi;
        UNLOCK(rl, rfreed)
    };
    rput();                                             /* copier.c:780 */
    copier_gone = 1                                     /* the thread returns: a join returns */
}

#define PH_WAIT 0
#define PH_LOOP 1
#define PH_COPY 2
#define PH_END  3

/* The application's reading thread: edb_backup_read (stream.c:155-173) until
 * it returns no data; then it may close the stream itself. */
proctype reader(bit closes)
{
    byte rc, ph;
    bit got, ref, last, rm, entered;
    do
    :: atomic {                                         /* :164 edb__handle_ref under g_lock */
           if
           :: s_inh -> assert(!sfreed);
#ifndef BUG_READ_NO_REF
                       srefs++;
#endif
                       ref = 1
           :: else -> ref = 0
           fi
       };
       if
       :: !ref -> rc = R_CANCELED                       /* :165 */
       :: else ->
           /* edb__ring_read (ring.c:252-289, with reader_enter/stop/took 209-250;
              the :NNN marks below are lines of ring.c as of commit caaf293) */
           got = 0;
           entered = 0;
           rc = R_OK;
           CS {
               LOCK(mu, sfreed);
               if
               :: eof -> rc = R_EOF; ph = PH_END        /* :211-215 the end was delivered */
               :: else ->
                   assert(!reading);                    /* :216-220 one reader at a time */
                   reading = 1;
                   entered = 1;
                   do
                   :: !canceled && count == 0 && !done -> WAIT(mu, sfreed, w_ne)   /* :223-224 */
                   :: else -> break
                   od;
                   ph = PH_LOOP
               fi
           };
           do
           :: ph == PH_LOOP ->                          /* holds mu */
               CS {
                   if
                   :: canceled ->                       /* :227-232 */
                       if
                       :: !got -> rc = R_CANCELED
                       :: else
                       fi;
                       ph = PH_END
                   :: !canceled && count == 0 ->        /* :233-243 never wait once copied */
                       if
                       :: !got && done && err != R_OK -> drained = 1; rc = R_ERR
                       :: !got && done && err == R_OK -> drained = 1; eof = 1; rc = R_EOF
                       :: else
                       fi;
                       ph = PH_END
                   :: !canceled && count > 0 ->
                       UNLOCK(mu, sfreed);              /* :249 copy the slot without the mutex */
                       ph = PH_COPY
                   fi
               }
           :: ph == PH_COPY ->
               CS {
                   assert(!sfreed && !memfreed);        /* :250 memcpy from the slot */
                   /* a zero-copy slot's pages (save.c's sink writes them from
                    * the map) are the snapshot's while its read txn is held;
                    * after a cancel nothing written is kept */
                   assert(!zc || snrefs > 0 || canceled);
                   LOCK(mu, sfreed);                    /* :251 */
                   got = 1;
                   count--;                             /* :253-257 slot drained */
                   w_nf = 0;                            /* broadcast not_full */
                   if
                   :: ph = PH_LOOP                      /* room left in the buffer */
                   :: ph = PH_END                       /* the buffer is full */
                   fi
               }
           :: ph == PH_END ->
               CS {
                   if
                   :: entered -> reading = 0;           /* reader_leave */
#ifndef BUG_LEAVE_NO_WAKE
                       if
                       :: canceled || drained -> w_nf = 0   /* wake a copier in drain */
                       :: else
                       fi
#else
                       skip
#endif
                   :: else                              /* returned at :211-215 */
                   fi;
                   UNLOCK(mu, sfreed)
               };
               break
           od;
#ifndef BUG_READ_NO_REF
           sput()                                       /* :171 this call's reference */
#else
           skip
#endif
       fi;
       if
       :: rc == R_OK -> assert(got)
       :: else -> break
       fi
    od;
    reader_done = 1;
    if
    :: closes -> backup_close(); close_ret = 1
    :: else
    fi
}

#ifdef SC_WRITEFD
/* edb_backup_write_fd (backup/save.c: pump, sink_write, sink_wait): drains a
 * zero-copy stream with edb__stream_consume into a non-blocking descriptor
 * whose reader may stop reading at any moment (`stalled`, set by `wakeups`),
 * and then never reads again.  A write that would block waits in poll() on
 * the descriptor (POLLOUT: never, once stalled) and on the wake-up eventfd
 * that edb__ring_cancel makes readable.  The consume steps are those of
 * edb__ring_consume (reader_enter, reader_stop, reader_took) with one slot
 * per call. */
proctype writer()
{
    byte rc = R_OK;
    bit ref, last, rm, c, entered;
    atomic {                                            /* pump: edb__handle_ref, our own reference */
        if
        :: s_inh -> assert(!sfreed); srefs++; ref = 1
        :: else -> ref = 0
        fi
    };
    if
    :: !ref -> rc = R_CANCELED; goto closed
    :: else
    fi;
    CS {                                                /* edb__ring_set_wake(ring, wake) */
        LOCK(mu, sfreed);
        wake_reg = 1;
        if
        :: canceled -> wakefd = 1
        :: else
        fi;
        UNLOCK(mu, sfreed)
    };
    do
    :: rc != R_OK -> break
    :: rc == R_OK ->
        atomic {                                        /* edb__stream_consume: edb__handle_ref */
            if
            :: s_inh -> assert(!sfreed); srefs++; ref = 1
            :: else -> ref = 0
            fi
        };
        if
        :: !ref -> rc = R_CANCELED; break
        :: else
        fi;
        entered = 0;
        CS {                                            /* edb__ring_consume: reader_enter */
            LOCK(mu, sfreed);
            if
            :: eof -> rc = R_EOF
            :: else ->
                assert(!reading);
                reading = 1;
                entered = 1;
                do
                :: !canceled && count == 0 && !done -> WAIT(mu, sfreed, w_ne)
                :: else -> break
                od;
                if
                :: canceled -> rc = R_CANCELED          /* reader_stop */
                :: !canceled && count == 0 && err != R_OK -> drained = 1; rc = R_ERR
                :: !canceled && count == 0 && err == R_OK -> drained = 1; eof = 1; rc = R_EOF
                :: !canceled && count > 0 -> skip       /* a slot for the sink */
                fi;
                if
                :: rc != R_OK -> reading = 0;           /* reader_leave */
                    if
                    :: canceled || drained -> w_nf = 0
                    :: else
                    fi
                :: else
                fi
            fi;
            UNLOCK(mu, sfreed)
        };
        if
        :: entered && rc == R_OK ->
            /* sink_write, without the mutex: check canceled, then a
             * non-blocking writev; EAGAIN -> sink_wait's poll() */
            do
            :: CS { LOCK(mu, sfreed); c = canceled; UNLOCK(mu, sfreed) };
               if
               :: c -> rc = R_CANCELED; break           /* nothing written once canceled */
               :: else
               fi;
               if
               :: !stalled ->                           /* writev took the slot's bytes */
                   assert(!sfreed && !memfreed);
                   assert(!zc || snrefs > 0 || canceled);   /* pages of a held snapshot */
                   break
               :: else ->                               /* EAGAIN: poll(fd POLLOUT, wake POLLIN) */
#ifndef BUG_POLL_IGNORES_WAKE
                   wakefd || !stalled;
                   if
                   :: wakefd -> rc = R_CANCELED; break
                   :: else                              /* writable: write again */
                   fi
#else
                   !stalled                             /* polls the descriptor only */
#endif
               fi
            od;
            CS {                                        /* reader_took, reading = false */
                LOCK(mu, sfreed);
                if
                :: rc == R_OK -> count--; w_nf = 0
                :: else
                fi;
                reading = 0;                            /* reader_leave */
                if
                :: canceled || drained -> w_nf = 0
                :: else
                fi;
                UNLOCK(mu, sfreed)
            }
        :: else
        fi;
        sput()                                          /* edb__stream_consume's reference */
    od;
    CS {                                                /* edb__ring_set_wake(ring, -1); close(wake) */
        LOCK(mu, sfreed);
        wake_reg = 0;
        UNLOCK(mu, sfreed)
    };
    sput();                                             /* pump's own reference */
closed:
    reader_done = 1;
    backup_close();                                     /* pump: edb_backup_close */
    close_ret = 1
}
#endif

/* edb_backup_close from another application thread, at any moment */
proctype closer()
{
    bit rm, last;
    backup_close();
    close_ret = 1
}

/* edb_backup_stop (backup.c:452-470) */
proctype stopper()
{
    bit ref, last;
    atomic {                                            /* :458 edb__handle_ref(EDB__H_ENV) */
        if
        :: env_inh -> assert(!rfreed); rrefs++; ref = 1
        :: else -> ref = 0
        fi
    };
    if
    :: ref ->
        CS {
            LOCK(rl, rfreed);                           /* :463 */
            if
            :: bk_linked -> bk_cancel()                 /* :464-465 */
            :: else
            fi;
            UNLOCK(rl, rfreed)
        };
        rput()                                          /* :467 */
    :: else
    fi;
    stop_done = 1
}

#ifdef SC_BEGIN
/* edb_backup_open (stream.c:68-153) after a successful begin; sets opened */
inline backup_open() {
    opened = 0;
    atomic {                                            /* :77 edb__handle_ref(EDB__H_BACKUP) */
        if
        :: bk_inh -> assert(!bkfreed); bkrefs++; ok = 1
        :: else -> ok = 0                               /* EDB_CANCELED */
        fi
    };
    if
    :: ok ->
        CS {                                            /* :86 edb__reg_enter */
            LOCK(rl, rfreed);
            if
            :: closing -> ok = 0
            :: else -> busy++
            fi;
            UNLOCK(rl, rfreed)
        };
        if
        :: ok ->
            CS {                                        /* :88-94 a snapshot reference unless ended or stopped */
                LOCK(bkl, bkfreed);
                if
                :: !bk_ended && !bk_canceled -> assert(!snfreed && snrefs > 0); snrefs++; got = 1
                :: else -> got = 0
                fi;
                UNLOCK(bkl, bkfreed)
            };
            if
            :: got ->
                /* :98-112 the stream (the handle's reference, its reference on bk)
                 * and the copier (references on the stream, the snapshot and the
                 * registry) */
                atomic { srefs = 2; bkrefs++; assert(!snfreed); snrefs++; assert(!rfreed); rrefs++ };
                atomic { s_inh = 1 };                   /* :113 edb__handle_add */
                CS {                                    /* :116-123 link unless ended or stopped */
                    LOCK(bkl, bkfreed);
                    ok = !bk_ended && !bk_canceled;
                    if
                    :: ok -> linked = 1
                    :: else
                    fi;
                    UNLOCK(bkl, bkfreed)
                };
                if
                :: ok ->
#ifndef BUG_OPEN_START_LATE
                    /* :127 edb__copier_start (copier.c:818-835): register, then the thread */
                    CS { LOCK(rl, rfreed); c_registered = 1; UNLOCK(rl, rfreed) };
                    c_started = 1;
                    run copier();
                    snput();                            /* :133 */
                    reg_leave();                        /* :134 */
#else
                    snput();
                    reg_leave();
                    CS { LOCK(rl, rfreed); c_registered = 1; UNLOCK(rl, rfreed) };
                    c_started = 1;
                    run copier();
#endif
                    bkput();                            /* :135 this call's reference */
                    opened = 1
                :: else ->                              /* :124-125 EDB_CANCELED, err: (:140-151) */
                    sput(); snput(); rput();            /* edb__copier_free: the copier's references */
                    atomic { rm = s_inh; s_inh = 0 };   /* edb__handle_remove */
                    if
                    :: rm -> sput()
                    :: else
                    fi;
                    snput();                            /* this call's */
                    reg_leave();
                    bkput()
                fi
            :: else ->                                  /* :95-96 ended or stopped: EDB_CANCELED */
                reg_leave();
                bkput()
            fi
        :: else -> bkput()                              /* closing: EDB_CANCELED */
        fi
    :: else
    fi
}

/* edb_backup_begin (backup.c:313-427 at 3f40f84) racing
 * edb_env_close; on success the same thread calls edb_backup_end.  The
 * registry exists (an earlier backup made it): reg_get only takes a reference.
 * Option checks, the base archive, random_id and allocation failures are left
 * out (they return before reg_get or through the err: path, which releases the
 * snapshot before it leaves busy). */
proctype beginner()
{
    bit ok, closing_seen, rm, mine, took, hassnap, last, got, opened;
    CS {                                                /* :341 reg_get (backup.c:201-236 at 3cc9bc6) */
        LOCK(el, 0);                                    /* :205 edb__env_bk_lock (env.c:49-61) */
        if
        :: env_gone -> ok = 0                           /* EDB_CANCELED: env not in the open list */
        :: !env_gone && !hook ->                        /* :207-229 first use: create it, install the hook */
            assert(rrefs == 0 && !lmdb_closed);
            rrefs = 2;                                  /* the env's and ours */
            env_inh = 1;                                /* edb__handle_add(EDB__H_ENV) */
            hook = 1;
            ok = 1
        :: !env_gone && hook -> assert(!rfreed); rrefs++; ok = 1   /* edb__ref_get */
        fi;
        UNLOCK(el, 0)
    };
    if
    :: !ok -> goto out
    :: else
    fi;
    CS {                                                /* :344 edb__reg_enter (:177-188) */
        LOCK(rl, rfreed);
        if
        :: closing -> ok = 0                            /* EDB_CANCELED */
#ifndef BUG_BEGIN_NO_BUSY
        :: else -> busy++
#else
        :: else
#endif
        fi;
        UNLOCK(rl, rfreed)
    };
    if
    :: !ok -> rput(); goto out                          /* err: edb__reg_put */
    :: else
    fi;
    /* :348 edb__snap_take: a read txn on the env's LMDB, no lock held */
    atomic { assert(!lmdb_closed); snrefs = 1 };
    /* :367-385 bk: the handle's reference, our registry reference, the
     * snapshot; edb__handle_add */
    atomic { bkrefs = 1; bk_hassnap = 1; bk_inh = 1 };
    CS {                                                /* :387-395 link unless closing */
        LOCK(rl, rfreed);
        closing_seen = closing;
        if
        :: !closing -> bk_linked = 1
        :: else
        fi;
        UNLOCK(rl, rfreed)
    };
#if defined(BUG_BEGIN_LEAVE_EARLY) && !defined(BUG_BEGIN_NO_BUSY)
    reg_leave();                                        /* busy-- before the snapshot is released */
#endif
    if
    :: closing_seen ->                                  /* :397-407 */
        atomic { rm = bk_inh; bk_inh = 0 };             /* edb__handle_remove */
        if
        :: rm -> bk_end_work(); bkput()
        :: else
        fi;
#if !defined(BUG_BEGIN_LEAVE_EARLY) && !defined(BUG_BEGIN_NO_BUSY)
        reg_leave()                                     /* :406 */
#else
        skip
#endif
    :: else ->
#if !defined(BUG_BEGIN_LEAVE_EARLY) && !defined(BUG_BEGIN_NO_BUSY)
        reg_leave();                                    /* :409 */
#endif
        /* the application opens a stream (no reader: the copier fills the
         * ring and waits), closes it, and ends the backup */
        backup_open();
        if
        :: opened -> backup_close()
        :: else
        fi;
        backup_end()
    fi;
out:
    begin_done = 1
}
#endif

/* An application thread that owns the backup or the env.  how: 1
 * edb_backup_end, 2 edb_env_close, 3 edb_backup_end then edb_env_close.
 * (Scenario 4 runs owner(1) and owner(2) in two threads: env close may race
 * with everything, also with edb_backup_end.) */
proctype owner(byte how)
{
    bit rm, mine, took, hassnap, last, takebk, claim, hk;
    if
    :: how & 1 ->
        backup_end()
    :: else
    fi;
    if
    :: how & 2 ->
        /* edb_env_close (engine/env.c:181-206) -> reg_shutdown (backup.c:541-587) */
#ifdef SC_BEGIN
        /* env.c:222-232 (3cc9bc6): leave the list of open envs (a later
         * reg_get fails) and read the hook, under g_live_lock and bk_lock */
        CS {
            LOCK(el, 0);
#ifndef BUG_CLOSE_NO_MARK
            env_gone = 1;
#endif
            hk = hook;
            UNLOCK(el, 0)
        };
        if
        :: !hk -> goto lmdb                             /* env.c:233-234 no hook: no backup state */
        :: else
        fi;
#ifdef BUG_CLOSE_NO_MARK
        CS {                                            /* only reg_shutdown marked the env closed */
            LOCK(el, 0);
            env_gone = 1;
            UNLOCK(el, 0)
        };
#endif
#endif
        atomic { env_inh = 0 };                         /* :550 edb__handle_remove(EDB__H_ENV) */
        CS {
            LOCK(rl, rfreed);                           /* :552 */
            closing = 1;
            if
            :: bk_linked -> bk_cancel()                 /* :554-555 */
            :: else
            fi;
            do
            :: busy > 0 -> WAIT(rl, rfreed, w_idle)     /* :556-557 */
            :: else -> break
            od;
            takebk = bk_linked;                         /* :559-564 take every backup */
            if
            :: bk_linked -> bk_linked = 0; assert(!bkfreed); bkrefs++
            :: else
            fi;
            claim = c_registered;                       /* :565-570 claim every copier */
            if
            :: c_registered -> c_registered = 0; c_claimed = 1
            :: else
            fi;
#ifdef BUG_JOIN_LOCKED
            if
            :: claim -> copier_gone                     /* pthread_join under reg->lock */
            :: else
            fi;
#endif
            UNLOCK(rl, rfreed)                          /* :571 */
        };
        if
        :: takebk ->                                    /* :573-580 */
            bk_end_work();
            atomic { rm = bk_inh; bk_inh = 0 };
            if
            :: rm -> bkput()                            /* the handle's reference */
            :: else
            fi;
            bkput()
        :: else
        fi;
#ifndef BUG_JOIN_LOCKED
        if
        :: claim -> copier_gone                         /* :581-585 edb__copier_join */
        :: else
        fi;
#endif
        rput();                                         /* :586 the env's reference */
        /* env.c:191-200 then ends sessions and closes LMDB: every snapshot's read
         * txn must have been released by now (backup.c:14-17) */
#ifdef SC_BEGIN
lmdb:
#endif
        assert(snrefs == 0);
        lmdb_closed = 1;
        env_closed = 1
    :: else
    fi;
    owner_done++
}

/* The scenario.  By default every combination of: who closes the stream x
 * whether edb_backup_stop races x who ends: edb_backup_end (1), edb_env_close
 * (2), end then env close in one thread (3), end and env close in two threads
 * (4).  -DQUICK: three that make check runs (together they race every pair of
 * threads).  -DSC_CLOSE=1|2, -DSC_STOP=0|1, -DSC_OWNER=1|2|3|4 narrow the
 * default to one case. */
init {
    atomic {
#ifdef SC_BEGIN
        if
        :: skip                                         /* an earlier backup made the registry */
        :: hook = 0; rrefs = 0; env_inh = 0             /* no backup was ever made on the env */
        fi;
        if
        :: zc = 1                                       /* edb_backup_open through save / write_fd */
        :: skip
        fi;
        run beginner();
        want_env = 1; run owner(2);
        if
#if !defined(SC_STOP) || SC_STOP == 1
        :: run stopper()
#endif
#if !defined(SC_STOP) || SC_STOP == 0
        :: stop_done = 1
#endif
        fi
#else
#ifdef SC_WRITEFD
        /* edb_backup_write_fd in one thread (zero-copy); stop then end, end,
         * or env close from others, while the descriptor drains or stalls */
        zc = 1;
        run copier();
        run writer();
        if
        :: run stopper(); run owner(1)
        :: stop_done = 1; run owner(1)
        :: stop_done = 1; want_env = 1; run owner(2)
        fi
#elif defined(QUICK)
        /* zero-copy in the first two (the drain ends by draining, by end, by
         * env close, by a close from another thread; env close joins a copier
         * in it), copying in the third: the size of make check's run stays
         * that of one choice; every SC_ selection and ALL=1 check both */
        if
        :: zc = 1; run copier(); run reader(1); stop_done = 1;          /* read; end || env close */
           want_env = 1; owners = 2; run owner(1); run owner(2)
        :: zc = 1; run copier(); run reader(0); run closer(); stop_done = 1;
           want_env = 1; run owner(2)                                   /* close thread, env close */
        :: run copier(); run reader(1); run stopper(); run owner(1)     /* read, stop, end */
        fi
#else
        if
        :: zc = 1                                       /* edb_backup_save / write_fd (zero-copy) */
        :: skip
        fi;
        run copier();
        if
#if !defined(SC_CLOSE) || SC_CLOSE == 1
        :: run reader(1)                                /* the reading thread closes */
#endif
#if !defined(SC_CLOSE) || SC_CLOSE == 2
        :: run reader(0); run closer()                  /* another thread closes */
#endif
        fi;
        if
#if !defined(SC_STOP) || SC_STOP == 1
        :: run stopper()
#endif
#if !defined(SC_STOP) || SC_STOP == 0
        :: stop_done = 1
#endif
        fi;
        if
#if !defined(SC_OWNER) || SC_OWNER == 1
        :: run owner(1)
#endif
#if !defined(SC_OWNER) || SC_OWNER == 2
        :: want_env = 1; run owner(2)
#endif
#if !defined(SC_OWNER) || SC_OWNER == 3
        :: want_env = 1; run owner(3)
#endif
#if !defined(SC_OWNER) || SC_OWNER == 4
        :: want_env = 1; owners = 2; run owner(1); run owner(2)
#endif
        fi
#endif
#endif
    }
}

#ifdef LIVE
#ifdef SC_BEGIN
/* begin (and end) and env close return; the snapshot, a backup that was
 * made and the registry are freed */
ltl all_done { <> (begin_done && stop_done && owner_done == owners && env_closed && (rfreed || !hook) &&
                   bkrefs == 0 && snrefs == 0 && srefs == 0 && (!c_started || copier_gone)) }
#else
/* Everything returns and everything is freed.  The flags are sticky, so this
 * one claim is the conjunction of the ones below (check-model.sh runs it;
 * FULL=1 runs the others too). */
ltl all_done { <> (close_ret && reader_done && copier_gone && stop_done && owner_done == owners &&
                   sfreed && bkfreed && snfreed && (!want_env || (env_closed && rfreed))) }
/* edb_backup_close returns */
ltl close_returns { <> close_ret }
/* every edb_backup_read returns (with EDB_CANCELED once closed or stopped) */
ltl read_returns  { <> reader_done }
/* once canceled, the copier thread ends */
ltl copier_ends   { [] (canceled -> <> copier_gone) }
/* the stream, the backup and the snapshot are freed */
ltl freed_ends    { <> (sfreed && bkfreed && snfreed) }
/* edb_backup_end / edb_env_close return, and env close frees the registry */
ltl owner_returns { <> (owner_done == owners && (!want_env || (env_closed && rfreed))) }
#endif
#endif

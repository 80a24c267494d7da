/* Several sessions in several threads against an in-memory model (issue #10,
 * TESTING.md "Semantics"): random inserts, replaces, escrow updates, deletes,
 * seeks, moves and reads, in implicit transactions and in explicit ones with
 * nested levels, committed or rolled back.  After every commit (and every
 * outermost rollback) the database equals the model: every row and every
 * entry of the secondary index, no row missing (lost) and none extra
 * (phantom).
 *
 * What each call must return is computed from the model first:
 *  - a REPLACE fails with EDB_WRITE_CONFLICT exactly when the record is no
 *    longer what edb_update_prepare read (values, or gone): prepares happen
 *    both inside the thread's transaction and outside any (while the other
 *    threads commit), and each thread has two cursors on one session;
 *  - a cursor keeps its position (a key) across begin, commit and rollback:
 *    reads of a gone record are EDB_RECORD_DELETED, NEXT and PREV continue
 *    from the key.
 *
 * Threads.  Each thread owns one session.  Writers are serialized by LMDB;
 * the test adds one mutex, `wlock`, held by a thread from the start of its
 * write (an implicit write call, or an explicit transaction from begin to
 * its outermost end) until the model is updated and checked, so that the
 * committed state and the model change together.  Reads and prepares made
 * outside a transaction run without it, at any moment of the other threads'
 * transactions: that is where a prepared record goes stale.
 *
 * Scale: SM_OPS operations in all (10^5 on a normal build), times
 * EDB_TEST_SCALE percent (10 under sanitizers by default, 3 under
 * tests/valgrind.sh).  EDB_TEST_SEED changes the random streams. */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "helpers.h"

#define NTHREADS 4
#define NKEYS 32
#define NCUR 2
#define MAX_LEVELS 3
#define SM_OPS 100000

typedef struct mrow { bool present; int32_t a; int64_t e; } mrow;

static char *tmpdir;
static edb_env *env;

static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;
static mrow model[NKEYS];               /* the committed state; guarded by wlock */

static atomic_int failed;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[768];              /* the first failure; guarded by fail_lock */

enum { P_NONE, P_ON, P_BEFORE, P_AFTER };

typedef struct tcur {
    edb_cursor *c;
    int pos;                            /* P_*, and the key when P_ON */
    int32_t k;
    bool prep;                          /* a REPLACE is prepared ... */
    bool prep_free;                     /* ... outside any transaction, without wlock */
    int32_t pk;                         /* ... on this record */
    mrow snap;                          /* as prepare read it */
    int32_t new_a;                      /* what the update sets */
    bool set_e;
    int64_t new_e;
} tcur;

typedef struct worker {
    int id;
    unsigned seed;
    edb_session *s;
    tcur cur[NCUR];
    edb_session *vs;                    /* for the checks (its own session: ending its
                                           snapshot cancels nothing of the thread's) */
    edb_cursor *vc, *vi;                /* ... cursors on the primary and on by_a */
    mrow lv[MAX_LEVELS + 1][NKEYS];     /* lv[d]: the view inside explicit level d */
    int depth;
    long ops, target;
    long commits, conflicts, stale, deleted, moves;
} worker;

static unsigned
rnd(worker *w, unsigned n)
{
    w->seed = w->seed * 1103515245u + 12345u;
    return (w->seed >> 16) % n;
}

static unsigned
scaled(unsigned n)
{
    return test_scaled_min(n, 1);
}

/* Record the first failure (thread @w, source line @line) and make every
 * thread stop. */
static int
wfail(worker *w, int line, const char *fmt, ...)
{
    pthread_mutex_lock(&fail_lock);
    if (atomic_load(&failed) == 0) {
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(fail_msg, sizeof fail_msg, "thread %d, op %ld, line %d: %s (last error: %s)",
                 w->id, w->ops, line, what, edb_error_last());
        atomic_store(&failed, 1);
    }
    pthread_mutex_unlock(&fail_lock);
    return -1;
}

#define WANT(w, rc, want, what) do { int rc_ = (rc), want_ = (want);                          \
        if (rc_ != want_)                                                                 \
            return wfail(w, __LINE__, "%s: %s, want %s", what, edb_err_name(rc_),          \
                         edb_err_name(want_)); } while (0)
#define TRY(x) do { if ((x) < 0) return -1; } while (0)
#define CHECK(w, cond, ...) do { if (!(cond)) return wfail(w, __LINE__, __VA_ARGS__); } while (0)

/* The view the thread's next call works on: its innermost level, or the
 * committed state (implicit calls, made holding wlock). */
static mrow *
view(worker *w)
{
    return w->depth > 0 ? w->lv[w->depth] : model;
}

static bool
same(const mrow *x, const mrow *y)
{
    return x->present == y->present && (!x->present || (x->a == y->a && x->e == y->e));
}

static int
read_row(edb_cursor *c, int32_t *k, mrow *r)
{
    int rc = edb_column_get(c, 1, k, 4, NULL, 0);
    if (rc == 0)
        rc = edb_column_get(c, 2, &r->a, 4, NULL, 0);
    if (rc == 0)
        rc = edb_column_get(c, 3, &r->e, 8, NULL, 0);
    r->present = rc == 0;
    return rc;
}

/* After a commit: the database equals the model, read in one snapshot
 * through the primary index and through by_a. */
static int
check_db(worker *w)
{
    int n = 0, idx_n = 0;
    WANT(w, edb_txn_begin(w->vs, EDB_TXN_READONLY), 0, "check: begin");
    int rc = edb_cursor_move(w->vc, EDB_MOVE_FIRST);
    for (int32_t k = 0; k < NKEYS; k++) {
        if (!model[k].present)
            continue;
        n++;
        CHECK(w, rc == 0, "check: key %d is in the model, the walk ended (%s): lost",
              k, edb_err_name(rc));
        int32_t got;
        mrow r;
        WANT(w, read_row(w->vc, &got, &r), 0, "check: read");
        CHECK(w, got == k, "check: walk found key %d where the model's next is %d", got, k);
        CHECK(w, same(&r, &model[k]), "check: key %d is (a %d, e %lld), the model says (a %d, e %lld)",
              k, r.a, (long long)r.e, model[k].a, (long long)model[k].e);
        rc = edb_cursor_move(w->vc, EDB_MOVE_NEXT);
    }
    if (rc == 0) {
        int32_t got;
        mrow r;
        read_row(w->vc, &got, &r);
        return wfail(w, __LINE__, "check: key %d is not in the model: a phantom", got);
    }
    WANT(w, rc, EDB_NOTFOUND, "check: walk");
    int32_t last_a = INT32_MIN;
    for (rc = edb_cursor_move(w->vi, EDB_MOVE_FIRST); rc == 0; rc = edb_cursor_move(w->vi, EDB_MOVE_NEXT)) {
        int32_t k;
        mrow r;
        WANT(w, read_row(w->vi, &k, &r), 0, "check: index read");
        CHECK(w, k >= 0 && k < NKEYS && model[k].present && model[k].a == r.a,
              "check: index entry (a %d, key %d) not in the model", r.a, k);
        CHECK(w, r.a >= last_a, "check: index out of order");
        last_a = r.a;
        idx_n++;
    }
    WANT(w, rc, EDB_NOTFOUND, "check: index walk");
    CHECK(w, idx_n == n, "check: index has %d entries, the table %d rows", idx_n, n);
    WANT(w, edb_txn_commit(w->vs), 0, "check: end");
    return 0;
}

/* Where NEXT (dir > 0) or PREV from the cursor's position lands in @v:
 * the key, or -1 (past the end). */
static int32_t
expect_move(const tcur *t, const mrow *v, int dir)
{
    if (dir > 0) {
        if (t->pos == P_AFTER)
            return -1;
        int32_t from = t->pos == P_ON ? t->k + 1 : 0;
        for (int32_t k = from; k < NKEYS; k++)
            if (v[k].present)
                return k;
    } else {
        if (t->pos == P_BEFORE)
            return -1;
        int32_t from = t->pos == P_ON ? t->k - 1 : NKEYS - 1;
        for (int32_t k = from; k >= 0; k--)
            if (v[k].present)
                return k;
    }
    return -1;
}

/* An operation on the committed state is over (an implicit write that
 * succeeded): check it. */
static int
implicit_done(worker *w, bool wrote)
{
    if (w->depth == 0 && wrote) {
        w->commits++;
        return check_db(w);
    }
    return 0;
}

static int
op_insert(worker *w, tcur *t)
{
    mrow *v = view(w);
    int32_t k = (int32_t)rnd(w, NKEYS), a = (int32_t)rnd(w, 10);
    bool set_e = rnd(w, 3) == 0;
    int64_t e = set_e ? (int64_t)rnd(w, 100) : 0;
    WANT(w, edb_update_prepare(t->c, EDB_PREP_INSERT), 0, "insert: prepare");
    WANT(w, edb_column_set(t->c, 1, &k, 4, 0), 0, "insert: set k");
    WANT(w, edb_column_set(t->c, 2, &a, 4, 0), 0, "insert: set a");
    if (set_e)
        WANT(w, edb_column_set(t->c, 3, &e, 8, 0), 0, "insert: set e");
    int rc = edb_update(t->c);
    if (v[k].present) {
        WANT(w, rc, EDB_KEYDUP, "insert of a present key");
        edb_update_cancel(t->c);
        return 0;
    }
    WANT(w, rc, 0, "insert");
    v[k] = (mrow){ true, a, e };
    t->pos = P_ON;
    t->k = k;
    return implicit_done(w, true);
}

/* Prepare a REPLACE on the cursor's record; @locked: the view is exact. */
static int
op_prepare(worker *w, tcur *t, bool locked)
{
    int rc = edb_update_prepare(t->c, EDB_PREP_REPLACE);
    if (t->pos != P_ON) {
        WANT(w, rc, EDB_NOCURRENT, "prepare off a record");
        return 0;
    }
    if (locked && !view(w)[t->k].present) {
        WANT(w, rc, EDB_RECORD_DELETED, "prepare on a deleted record");
        w->deleted++;
        return 0;
    }
    if (!locked && rc == EDB_RECORD_DELETED)
        return 0;
    WANT(w, rc, 0, "prepare");
    /* the prepared record holds the values prepare read */
    int32_t k;
    WANT(w, read_row(t->c, &k, &t->snap), 0, "prepare: read the prepared record");
    CHECK(w, k == t->k, "prepare: the prepared record is key %d, the cursor is on %d", k, t->k);
    if (locked)
        CHECK(w, same(&t->snap, &view(w)[k]), "prepare: key %d: read (a %d, e %lld), model (a %d, e %lld)",
              k, t->snap.a, (long long)t->snap.e, view(w)[k].a, (long long)view(w)[k].e);
    t->prep = true;
    t->prep_free = !locked;
    t->pk = k;
    t->new_a = (int32_t)rnd(w, 10);
    WANT(w, edb_column_set(t->c, 2, &t->new_a, 4, 0), 0, "prepare: set a");
    t->set_e = rnd(w, 4) == 0;
    if (t->set_e) {
        t->new_e = (int64_t)rnd(w, 1000);
        WANT(w, edb_column_set(t->c, 3, &t->new_e, 8, 0), 0, "prepare: set e");
    }
    return 0;
}

static int
op_update(worker *w, tcur *t)
{
    mrow *v = view(w);
    int rc = edb_update(t->c);
    if (!same(&v[t->pk], &t->snap)) {
        WANT(w, rc, EDB_WRITE_CONFLICT, "update of a record changed since prepare");
        w->conflicts++;
        if (t->prep_free)
            w->stale++;             /* another thread's commit came between */
        if (rnd(w, 2) == 0) {
            edb_update_cancel(t->c);
            t->prep = false;
        }
        return 0;
    }
    WANT(w, rc, 0, "update");
    v[t->pk].a = t->new_a;
    if (t->set_e)
        v[t->pk].e = t->new_e;
    t->prep = false;
    t->pos = P_ON;
    t->k = t->pk;
    return implicit_done(w, true);
}

static int
op_escrow(worker *w, tcur *t)
{
    mrow *v = view(w);
    int64_t d = (int64_t)rnd(w, 21) - 10, old = -12345;
    int rc = edb_escrow_update(t->c, 3, d, &old);
    if (t->pos != P_ON) {
        WANT(w, rc, EDB_NOCURRENT, "escrow off a record");
        return 0;
    }
    if (!v[t->k].present) {
        WANT(w, rc, EDB_RECORD_DELETED, "escrow on a deleted record");
        w->deleted++;
        return 0;
    }
    WANT(w, rc, 0, "escrow");
    CHECK(w, old == v[t->k].e, "escrow: old value %lld, model %lld", (long long)old,
          (long long)v[t->k].e);
    v[t->k].e += d;
    return implicit_done(w, true);
}

static int
op_delete(worker *w, tcur *t)
{
    mrow *v = view(w);
    int rc = edb_record_delete(t->c);
    if (t->pos != P_ON) {
        WANT(w, rc, EDB_NOCURRENT, "delete off a record");
        return 0;
    }
    if (!v[t->k].present) {
        WANT(w, rc, EDB_RECORD_DELETED, "delete of a deleted record");
        w->deleted++;
        return 0;
    }
    WANT(w, rc, 0, "delete");
    v[t->k].present = false;      /* the cursor stays on the key */
    return implicit_done(w, true);
}

static int
op_seek(worker *w, tcur *t, bool locked)
{
    /* often onto the record of the session's other cursor: two cursors of
     * one session on one record is where one's update undid the other's */
    const tcur *o = &w->cur[t == &w->cur[0] ? 1 : 0];
    int32_t k = o->pos == P_ON && rnd(w, 2) == 0 ? o->k : (int32_t)rnd(w, NKEYS);
    WANT(w, edb_key_make(t->c, &k, 4, EDB_KEY_NEW), 0, "seek: key");
    int rc = edb_cursor_seek(t->c, EDB_SEEK_EQ);
    if (locked)
        WANT(w, rc, view(w)[k].present ? 0 : EDB_NOTFOUND, "seek");
    else
        CHECK(w, rc == 0 || rc == EDB_NOTFOUND, "seek: %s", edb_err_name(rc));
    t->pos = rc == 0 ? P_ON : P_NONE;
    t->k = k;
    return 0;
}

/* Read the cursor's record (not while an update is prepared: reads then
 * see the prepared record). */
static int
op_read(worker *w, tcur *t)
{
    int32_t k;
    mrow r;
    int rc = read_row(t->c, &k, &r);
    if (t->pos != P_ON) {
        WANT(w, rc, EDB_NOCURRENT, "read off a record");
        return 0;
    }
    const mrow *v = &view(w)[t->k];
    if (!v->present) {
        WANT(w, rc, EDB_RECORD_DELETED, "read of a deleted record");
        w->deleted++;
        return 0;
    }
    WANT(w, rc, 0, "read");
    CHECK(w, k == t->k && same(&r, v), "read: key %d (a %d, e %lld), model key %d (a %d, e %lld)",
          k, r.a, (long long)r.e, t->k, v->a, (long long)v->e);
    return 0;
}

static int
op_move(worker *w, tcur *t)
{
    int dir = rnd(w, 2) ? 1 : -1;
    int32_t want = expect_move(t, view(w), dir);
    int rc = edb_cursor_move(t->c, dir > 0 ? EDB_MOVE_NEXT : EDB_MOVE_PREV);
    w->moves++;
    if (want < 0) {
        WANT(w, rc, EDB_NOTFOUND, dir > 0 ? "NEXT past the last" : "PREV before the first");
        t->pos = dir > 0 ? P_AFTER : P_BEFORE;
        return 0;
    }
    WANT(w, rc, 0, dir > 0 ? "NEXT" : "PREV");
    t->pos = P_ON;
    t->k = want;
    return op_read(w, t);
}

/* Every end of a level cancels the session's prepared updates. */
static void
level_ended(worker *w)
{
    for (int i = 0; i < NCUR; i++)
        w->cur[i].prep = false;
}

static int
txn_begin(worker *w)
{
    WANT(w, edb_txn_begin(w->s, 0), 0, "begin");
    const mrow *from = w->depth > 0 ? w->lv[w->depth] : model;
    memcpy(w->lv[w->depth + 1], from, sizeof model);
    w->depth++;
    w->ops++;
    return 0;
}

static int
txn_end(worker *w, bool commit)
{
    WANT(w, commit ? edb_txn_commit(w->s) : edb_txn_rollback(w->s), 0, commit ? "commit" : "rollback");
    w->ops++;
    level_ended(w);
    w->depth--;
    if (commit) {
        mrow *to = w->depth > 0 ? w->lv[w->depth] : model;
        memcpy(to, w->lv[w->depth + 1], sizeof model);
        if (w->depth == 0)
            w->commits++;
    }
    /* after the outermost end, committed or rolled back, the database is
     * the model */
    return w->depth == 0 ? check_db(w) : 0;
}

/* One data operation on a random cursor, holding wlock. */
static int
data_op(worker *w)
{
    tcur *t = &w->cur[rnd(w, NCUR)];
    unsigned op = rnd(w, 100);
    w->ops++;
    if (t->prep) {
        /* finish or drop the prepared update, or read it */
        if (op < 70)
            return op_update(w, t);
        if (op < 85) {
            edb_update_cancel(t->c);
            t->prep = false;
            return 0;
        }
        int32_t k;
        mrow r;
        WANT(w, read_row(t->c, &k, &r), 0, "read the prepared record");
        CHECK(w, k == t->pk && r.a == t->new_a, "the prepared record changed");
        return 0;
    }
    if (op < 20)
        return op_insert(w, t);
    if (op < 35)
        return op_prepare(w, t, true);
    if (op < 50)
        return op_escrow(w, t);
    if (op < 58)
        return op_delete(w, t);
    if (op < 70)
        return op_seek(w, t, true);
    if (op < 85)
        return op_move(w, t);
    return op_read(w, t);
}

/* An explicit transaction of a few operations and nested levels, ended by
 * a commit or a rollback of every level. */
static int
explicit_txn(worker *w)
{
    TRY(txn_begin(w));
    unsigned n = 1 + rnd(w, 10);
    for (unsigned i = 0; i < n && !atomic_load(&failed); i++) {
        unsigned r = rnd(w, 100);
        if (r < 8 && w->depth < MAX_LEVELS)
            TRY(txn_begin(w));
        else if (r < 14 && w->depth > 1)
            TRY(txn_end(w, rnd(w, 2) == 0));
        else
            TRY(data_op(w));
    }
    bool commit = rnd(w, 4) != 0;
    while (w->depth > 0)
        TRY(txn_end(w, commit));
    return 0;
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    while (w->ops < w->target && !atomic_load(&failed)) {
        unsigned r = rnd(w, 100);
        int rc;
        if (r < 20) {
            /* outside any transaction and without wlock: the other threads
             * may be anywhere in theirs */
            w->ops++;
            tcur *t = &w->cur[rnd(w, NCUR)];
            rc = t->prep ? 0 : r < 12 ? op_prepare(w, t, false) : op_seek(w, t, false);
        } else {
            pthread_mutex_lock(&wlock);
            rc = r < 45 ? data_op(w) : explicit_txn(w);
            /* a failure may leave levels open: undo them before letting go */
            while (rc < 0 && edb_txn_depth(w->s) > 0)
                edb_txn_rollback(w->s);
            pthread_mutex_unlock(&wlock);
        }
        if (rc < 0)
            break;
    }
    return NULL;
}

static void
setup(void)
{
    tmpdir = make_tmpdir();
    env = open_env(tmpdir, EDB_ENV_NOSYNC);
    edb_session *s;
    OK(edb_session_begin(&s, env));
    int64_t zero = 0;
    edb_column_def cols[] = {
        { "k", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "a", EDB_COL_INT32, 0, 0, NULL, 0 },
        { "e", EDB_COL_INT64, EDB_COL_ESCROW, 0, &zero, 8 },
    };
    edb_index_def idx[] = { { "pk", "+k\0", EDB_IDX_PRIMARY }, { "by_a", "+a\0", 0 } };
    edb_table_def def = { "m", cols, 3, idx, 2 };
    OK(edb_table_create(s, &def));
    edb_session_end(s);
    memset(model, 0, sizeof model);
    atomic_store(&failed, 0);
    fail_msg[0] = '\0';
}

static void
teardown(void)
{
    edb_env_close(env);
    rm_tree(tmpdir);
    free(tmpdir);
    LEAK_CHECK();
}

/* 0.5 s on a normal build; EDB_TEST_SLOW stretches the limit under valgrind */
TestSuite(sessions_model, .init = setup, .fini = teardown, .timeout = 60);

Test(sessions_model, threads_commit_and_roll_back_against_the_model)
{
    static worker ws[NTHREADS];
    pthread_t th[NTHREADS];
    unsigned base = 20261207u;
    const char *e = getenv("EDB_TEST_SEED");
    if (e != NULL && *e)
        base = (unsigned)strtoul(e, NULL, 10);
    long target = (long)scaled(SM_OPS) / NTHREADS + 1;
    for (int i = 0; i < NTHREADS; i++) {
        worker *w = &ws[i];
        memset(w, 0, sizeof *w);
        w->id = i;
        w->seed = base * 7919u + (unsigned)i * 104729u;
        w->target = target;
        OK(edb_session_begin(&w->s, env));
        for (int j = 0; j < NCUR; j++)
            OK(edb_cursor_open(&w->cur[j].c, w->s, "m"));
        OK(edb_session_begin(&w->vs, env));
        OK(edb_cursor_open(&w->vc, w->vs, "m"));
        OK(edb_cursor_open(&w->vi, w->vs, "m"));
        OK(edb_cursor_set_index(w->vi, "by_a"));
    }
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_join(th[i], NULL), 0);
    long ops = 0, commits = 0, conflicts = 0, stale = 0, deleted = 0, moves = 0;
    for (int i = 0; i < NTHREADS; i++) {
        ops += ws[i].ops;
        commits += ws[i].commits;
        conflicts += ws[i].conflicts;
        stale += ws[i].stale;
        deleted += ws[i].deleted;
        moves += ws[i].moves;
        for (int j = 0; j < NCUR; j++)
            edb_cursor_close(ws[i].cur[j].c);
        edb_cursor_close(ws[i].vc);
        edb_cursor_close(ws[i].vi);
        edb_session_end(ws[i].vs);
        edb_session_end(ws[i].s);
    }
    cr_assert(!atomic_load(&failed), "seed %u: %s", base, fail_msg);
    cr_log_info("%ld operations, %ld commits checked, %ld write conflicts (%ld on a record prepared "
                "outside a transaction), %ld deleted records met, %ld moves", ops, commits,
                conflicts, stale, deleted, moves);
    cr_assert_geq(ops, (long)scaled(SM_OPS));
    /* the run met the cases it is there for (a full run meets each some
     * hundred times; a scaled-down one under valgrind may miss the rarest) */
    if (ops >= SM_OPS / 2) {
        cr_assert_gt(conflicts, 0);
        cr_assert_gt(stale, 0);
        cr_assert_gt(deleted, 0);
    }
}

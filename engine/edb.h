/**
 * @file edb.h
 * @brief edb: an embedded, transactional, ESE-style database engine on LMDB.
 *
 * This header is the manual.  Every function states the errors it returns, its
 * thread safety and how long memory it hands out lives.
 *
 * Conventions
 * - Functions return `int`: 0 (#EDB_OK) on success, a negative `EDB_*` error, or
 *   a positive `EDB_WRN_*` warning (the call did its work, read the warning).
 * - An out-parameter comes first and is named `out`.  It is set to NULL (or 0)
 *   on entry and assigned only on success.
 * - Every error also leaves a one-line detail for the calling thread in
 *   edb_error_last(), starting with the code's name, e.g.
 *   `EDB_NOTNULL: table 'orders': column 'qty' is NOT NULL`.
 * - Closers (`*_close`, `*_end`) return void, accept NULL and never block on
 *   anything that could be waiting for them.
 * - Closers work in any order (SQLite's sqlite3_close_v2): closing a parent
 *   (edb_env_close(), edb_session_end()) rolls back what it must and turns
 *   the handles opened from it into zombies instead of freeing them.  Every
 *   call on a zombie returns #EDB_CLOSED (edb_txn_depth(): 0); its own closer
 *   frees it.  So every handle is closed exactly once by its own closer,
 *   whatever the order: a session ended after its env closed, a cursor
 *   closed after its session ended.  A handle never closed is leaked.
 * - Handles carry identity, not names: a cursor stays on the table and the
 *   index it was opened on or switched to.  When that table or index is
 *   dropped, every call on the cursor returns #EDB_DROPPED, also after a new
 *   table or index of the same name was created (in any process); it never
 *   reads or writes the new one.  A drop that is rolled back leaves the
 *   cursor as it was.
 * - Handles are opaque.  Nothing in this header mentions LMDB.
 *
 * Threads
 * - #edb_env: thread-safe; share one per process and database.
 * - #edb_session and everything opened from it (cursors): one thread at a time.
 *   Different sessions may be used from different threads at once.
 * - Writers are serialized: LMDB admits one write transaction per database at a
 *   time, across all processes.  A second writer waits for the first to end.  A
 *   thread that already holds a write transaction (in any session of the same
 *   environment) and begins another one in a second session gets #EDB_BUSY
 *   instead of deadlocking on itself.
 * - A write transaction belongs to the thread that began it (LMDB's writer
 *   lock is that thread's): edb_txn_begin(), edb_txn_commit() and
 *   edb_txn_rollback() on its session from any other thread return
 *   #EDB_BUSY and leave it as it was, for its owner to end.  A read-only
 *   transaction may be ended by any thread.
 * - Read-only transactions never block and are never blocked.
 *
 * Value formats (edb_column_set / edb_column_get / edb_key_make)
 * | type            | native form                 | size          |
 * |-----------------|-----------------------------|---------------|
 * | EDB_COL_BOOL    | uint8_t, 0 or 1             | 1             |
 * | EDB_COL_INT8..64| int8_t .. int64_t, host order | 1, 2, 4, 8   |
 * | EDB_COL_UINT8..64| uint8_t .. uint64_t        | 1, 2, 4, 8    |
 * | EDB_COL_FLOAT   | float (IEEE 754 binary32)   | 4             |
 * | EDB_COL_DOUBLE  | double (IEEE 754 binary64)  | 8             |
 * | EDB_COL_DATETIME| int64_t microseconds since 1970-01-01T00:00:00Z | 8 |
 * | EDB_COL_GUID    | 16 bytes, RFC 4122 byte order | 16          |
 * | EDB_COL_TEXT    | UTF-8 bytes, no terminator  | 0..max_size   |
 * | EDB_COL_BINARY  | bytes                       | 0..max_size   |
 * A fixed-size value of the wrong size is #EDB_INVAL.  TEXT must be valid UTF-8
 * without NUL bytes (#EDB_INVAL otherwise).  NaN is refused in FLOAT and DOUBLE.
 */
#ifndef EDB_H
#define EDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EDB_BUILDING) && defined(__GNUC__)
#define EDB_EXTERN __attribute__((visibility("default")))
#else
#define EDB_EXTERN
#endif

/** Package version, e.g. "0.1.0". */
#define EDB_VERSION_STRING "0.1.0"
/** @return the library's version string (static storage). Thread safety: any thread. */
EDB_EXTERN const char *edb_version(void);

/* ------------------------------------------------------------------------ */
/** @name Errors
 * One table generates the enum, edb_strerror() and edb_err_name().
 * Columns: name, value, message.
 * @{ */
#define EDB_ERROR_MAP(X)                                                        \
    X(OK,            0,   "success")                                            \
    X(WRN_NULL,      1,   "the column is NULL")                                 \
    X(WRN_TRUNCATED, 2,   "the value was truncated to the buffer")              \
    X(NOTFOUND,      -1,  "not found")                                          \
    X(KEYDUP,        -2,  "duplicate key in a unique index")                    \
    X(EXISTS,        -3,  "already exists")                                     \
    X(INVAL,         -4,  "invalid argument")                                   \
    X(READONLY,      -5,  "write in a read-only transaction or environment")    \
    X(BUSY,          -6,  "busy: this thread already holds the write transaction") \
    X(TXNDEPTH,      -7,  "transactions nested too deeply")                     \
    X(TOOBIG,        -8,  "value or key too large")                             \
    X(FULL,          -9,  "the database map is full")                           \
    X(CORRUPT,       -10, "data is corrupt")                                    \
    X(CHECKSUM,      -11, "checksum mismatch")                                  \
    X(CANCELED,      -12, "the operation was canceled")                         \
    X(NOMEM,         -13, "out of memory")                                      \
    X(IO,            -14, "input/output error")                                 \
    X(NOTNULL,       -15, "a NOT NULL column has no value")                     \
    X(NOCURRENT,     -16, "the cursor is not on a record")                      \
    X(NOUPDATE,      -17, "no update is prepared on the cursor")                \
    X(TYPE,          -18, "the operation does not fit the column's type")       \
    X(VERSION,       -19, "unsupported format version")                         \
    X(NOTXN,         -20, "no transaction is active")                           \
    X(CHAIN,         -21, "the backup chain is broken")                         \
    X(LIMIT,         -22, "a configured limit was reached")                     \
    X(INTERNAL,      -23, "internal error")                                   \
    X(RECORD_DELETED, -24, "the cursor's record was deleted")                 \
    X(WRITE_CONFLICT, -25, "the record changed since the update was prepared") \
    X(DROPPED,       -26, "the table, index or column was dropped")            \
    X(CLOSED,        -27, "the handle's session or environment was closed")    \
    X(AUTH,          -28, "the archive's encryption key is missing or wrong")

typedef enum edb_error {
#define EDB__ERR_ENUM(name, value, msg) EDB_##name = value,
    EDB_ERROR_MAP(EDB__ERR_ENUM)
#undef EDB__ERR_ENUM
} edb_error;

/** @return the message of code @p rc ("unknown error" for others); static storage. Any thread. */
EDB_EXTERN const char *edb_strerror(int rc);
/** @return the name of code @p rc, e.g. "EDB_NOTFOUND" ("EDB_UNKNOWN" for others); static storage. */
EDB_EXTERN const char *edb_err_name(int rc);
/**
 * @return the calling thread's detail for its most recent error, never NULL
 * ("" before any error).  Valid until this thread's next edb call.
 */
EDB_EXTERN const char *edb_error_last(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Environment @{ */

/**
 * An open database directory (`data.mdb` + `lock.mdb`).
 * Thread safety: all functions taking an env may be called from any thread.
 */
typedef struct edb_env edb_env;

#define EDB_ENV_READONLY 0x1u  /**< open read-only; every write returns #EDB_READONLY */
#define EDB_ENV_NOSYNC   0x2u  /**< do not fsync on commit (fast, not durable across OS crashes) */

/** Options for edb_env_open(); zero fields take defaults. */
typedef struct edb_env_opts {
    uint64_t map_size;     /**< bytes of address space reserved; default 64 GiB (sparse, costs no disk) */
    unsigned max_tables;   /**< tables the environment can hold; default 128 */
    unsigned max_readers;  /**< concurrent read transactions across processes; default 126 */
    unsigned flags;        /**< EDB_ENV_READONLY | EDB_ENV_NOSYNC */
} edb_env_opts;

/**
 * Open (creating when absent, unless read-only) the database directory @p path.
 * Several processes may open one database at a time.  Stale reader slots left by
 * dead processes are cleared on open.
 * @param[out] out   the environment; release with edb_env_close()
 * @param[in]  path  directory; created (0700) when it does not exist
 * @param[in]  opts  NULL for defaults
 * @return 0; #EDB_INVAL (NULL args, bad options), #EDB_NOTFOUND (read-only and
 *         absent), #EDB_IO (with errno detail), #EDB_VERSION (not an edb database,
 *         a newer format, or a format-2 or older database with a descending index
 *         segment, whose keys put NULL first: the message says how to move its
 *         data), #EDB_CORRUPT (among others: a data.mdb shorter than the pages
 *         its meta page uses, refused before any of them is read; the message
 *         names the file, its size and the size the meta page claims), #EDB_NOMEM.
 */
EDB_EXTERN int edb_env_open(edb_env **out, const char *path, const edb_env_opts *opts);

/**
 * Close the environment.  Ends every backup still open on it (their handles are
 * gone afterwards), waits only for bounded work (each copier finishes within one
 * page batch), rolls back the transactions of sessions still open and turns
 * those sessions and their cursors into zombies (every call #EDB_CLOSED; free
 * each with edb_session_end() / edb_cursor_close(), in any order), closes the
 * database files and frees the rest; the env's own memory goes with the last
 * zombie session.  NULL-safe.  No other thread may use @p env or anything
 * opened from it once this is called, except edb_backup_* calls racing with it,
 * which return #EDB_CANCELED.  A write transaction open in a session of
 * another thread should be ended by that thread first (LMDB's writer lock
 * belongs to it).
 */
EDB_EXTERN void edb_env_close(edb_env *env);

/** Facts about an open environment (edb_env_info()). */
typedef struct edb_env_info {
    uint32_t page_size;     /**< bytes per page */
    uint64_t map_size;      /**< bytes of address space reserved */
    uint64_t last_page;     /**< highest page number in use (pages used = last_page + 1) */
    uint64_t txn_id;        /**< id of the last committed transaction */
    unsigned max_readers;   /**< reader slots */
    unsigned num_readers;   /**< reader slots in use (across processes) */
    unsigned flags;         /**< EDB_ENV_* the env was opened with */
} edb_env_info;

/**
 * Fill @p out with the environment's page size, map size, pages in use, last
 * transaction and readers.  @return 0, #EDB_INVAL.  Any thread.
 */
EDB_EXTERN int edb_env_info_get(edb_env_info *out, edb_env *env);

/**
 * Write a compacted copy of the database into the empty or absent directory
 * @p dir (offline-style copy: it holds a read snapshot while it runs and is not
 * cancellable).  @return 0, #EDB_INVAL, #EDB_EXISTS (dir holds a database), #EDB_IO.
 */
EDB_EXTERN int edb_env_compact(edb_env *env, const char *dir);

/** @return the directory @p env was opened on (lives as long as @p env), or NULL. */
EDB_EXTERN const char *edb_env_path(edb_env *env);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Sessions and transactions @{ */

/**
 * A session: a context for transactions and cursors.
 * Thread safety: one thread at a time (it may move between threads between calls,
 * but a write transaction must be committed or rolled back by the thread that began it).
 */
typedef struct edb_session edb_session;

/**
 * @param[out] out  the session; release with edb_session_end()
 * @return 0, #EDB_INVAL, #EDB_NOMEM, #EDB_CLOSED (@p env is closed but still
 *         kept by zombie sessions).  Any thread.
 */
EDB_EXTERN int edb_session_begin(edb_session **out, edb_env *env);
/** Roll back every open transaction level and free the session.  Cursors still
 *  open on it become zombies (every call #EDB_CLOSED) and keep its memory until
 *  the last of them is closed with edb_cursor_close().  Also frees a session
 *  whose env was closed.  Call it on the thread that began the session's write
 *  transaction, if one is open (LMDB's writer lock is that thread's).  NULL-safe. */
EDB_EXTERN void edb_session_end(edb_session *s);

#define EDB_TXN_READONLY 0x1u  /**< a read-only snapshot: never blocks, is never blocked; writes are #EDB_READONLY */
#define EDB_TXN_MAX_DEPTH 7    /**< levels of nesting */

/**
 * Begin a transaction, or a nested level inside the current one.  Isolation is
 * snapshot isolation.  A nested level's work is undone alone by rolling it back
 * and becomes part of its parent on commit.  A nested level inside a read-only
 * transaction is read-only too; #EDB_TXN_READONLY inside a write transaction is
 * #EDB_INVAL.  Without a transaction, each data call runs in one of its own.
 * The session's cursors keep their positions across begin, commit and
 * rollback (#edb_cursor, currency).
 *
 * A transaction fails as a whole when LMDB refuses to go on with it: a write
 * that failed after it began changing the database (see edb_update()), or a
 * read that met a damaged page (#EDB_CORRUPT).  Every later call on the
 * session returns that error, its detail naming the first cause, until the
 * failed level is rolled back: for a write transaction the innermost level
 * (the levels around it are intact), for a read-only transaction the
 * outermost (its levels share one snapshot).
 * @return 0; #EDB_TXNDEPTH (an 8th level); #EDB_BUSY (this thread already holds
 *         the write transaction through another session, or the session's
 *         write transaction belongs to another thread); #EDB_READONLY (write
 *         transaction on a read-only env); #EDB_INVAL; #EDB_NOMEM; #EDB_IO;
 *         #EDB_CLOSED (the session was ended or its env closed).
 */
EDB_EXTERN int edb_txn_begin(edb_session *s, unsigned flags);
/**
 * Commit the innermost level.  Committing the outermost level makes the work
 * durable (unless #EDB_ENV_NOSYNC) and visible to new transactions everywhere.
 * Any update prepared on a cursor of the session is cancelled first; the
 * cursors keep their positions (#edb_cursor, currency).
 * A level that has failed (see edb_update(): a write failed after it began
 * changing the database, e.g. #EDB_FULL) cannot be committed: commit rolls it
 * back and returns the original error, its detail naming the cause.
 * Only the thread that began a write transaction may commit it (#EDB_BUSY
 * from any other: nothing changes).
 * @return 0; #EDB_NOTXN; #EDB_FULL (nothing committed; the level was rolled back);
 *         #EDB_IO; the error that failed the level (it was rolled back);
 *         #EDB_BUSY (another thread's write transaction); #EDB_CLOSED.
 */
EDB_EXTERN int edb_txn_commit(edb_session *s);
/** Roll back the innermost level (also a failed one: the levels around it are
 *  intact and usable again).  Prepared updates are cancelled; the cursors keep
 *  their positions, on records found again by key (#edb_cursor, currency).
 *  Only the thread that began a write transaction may roll it back.
 *  @return 0, #EDB_NOTXN, #EDB_BUSY (another thread's write transaction:
 *  nothing changes), #EDB_CLOSED. */
EDB_EXTERN int edb_txn_rollback(edb_session *s);
/** @return the session's nesting depth (0 = no transaction). */
EDB_EXTERN int edb_txn_depth(edb_session *s);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Schema @{ */

typedef enum edb_coltype {
    EDB_COL_BOOL = 1,
    EDB_COL_INT8, EDB_COL_INT16, EDB_COL_INT32, EDB_COL_INT64,
    EDB_COL_UINT8, EDB_COL_UINT16, EDB_COL_UINT32, EDB_COL_UINT64,
    EDB_COL_FLOAT, EDB_COL_DOUBLE,
    EDB_COL_DATETIME, EDB_COL_GUID,
    EDB_COL_TEXT, EDB_COL_BINARY
} edb_coltype;

/** @return the lower-case name of a column type ("int64", "text", ...) or NULL. */
EDB_EXTERN const char *edb_coltype_name(edb_coltype type);
/** @return 0 and the type named @p name in @p out, or #EDB_INVAL. */
EDB_EXTERN int edb_coltype_parse(edb_coltype *out, const char *name);

#define EDB_COL_NOTNULL     0x1u  /**< an insert or replace that leaves it NULL is #EDB_NOTNULL */
/** INT32/INT64/UINT32/UINT64: assigned 1, 2, ... at insert (a loader may supply
 *  the value: #EDB_SET_AUTOINC_VALUE).  Never reused, as in ESE: a value handed
 *  out in a transaction that rolled back (also a nested level) is not handed out
 *  again by the same #edb_env.  The table's counter in the database is
 *  transactional; the env keeps in memory the highest value it handed out.  So
 *  across processes, or after the env is closed and opened again, a value that
 *  was never committed may come back; a committed value never does.  The same
 *  holds for the implicit key of a table without a primary index.  A table
 *  dropped and created again counts from 1. */
#define EDB_COL_AUTOINC     0x2u
#define EDB_COL_ESCROW      0x4u  /**< INT32/INT64 with a default: edb_escrow_update() adds atomically */
#define EDB_COL_MULTIVALUED 0x8u  /**< holds 0..n values; EDB_SET_APPEND adds one */

/**
 * Column identifier within a table.  Its low bits (#EDB_COLID_POSITION_MASK) are
 * the column's 1-based position in the table's columns, which never changes; a
 * plain position is a valid id.  edb_column_id() adds a tag of the column's
 * identity above them, so an id kept across a rolled-back edb_column_add() is
 * #EDB_DROPPED, never taken for a column added later at the same position (nor
 * for a column of a table of the same name created later).
 */
typedef uint32_t edb_colid;
/** The position bits of an #edb_colid. */
#define EDB_COLID_POSITION_MASK 0x7FFu

/** A column.  Strings and default bytes are copied by the call that takes them. */
typedef struct edb_column_def {
    const char *name;            /**< 1..64 bytes of [A-Za-z0-9_], not starting with a digit */
    edb_coltype type;
    unsigned flags;              /**< EDB_COL_NOTNULL | EDB_COL_AUTOINC | EDB_COL_ESCROW | EDB_COL_MULTIVALUED */
    uint32_t max_size;           /**< TEXT/BINARY: most bytes a value may have; 0 = no limit */
    const void *default_value;   /**< native form; NULL = no default */
    size_t default_size;
} edb_column_def;

#define EDB_IDX_PRIMARY     0x1u  /**< the table's clustered key: unique, records are stored in its order */
#define EDB_IDX_UNIQUE      0x2u  /**< a second record with an equal key is #EDB_KEYDUP */
#define EDB_IDX_IGNORE_NULL 0x4u  /**< records whose key columns are all NULL get no entry */
/** NULL sorts after every value in every segment (ESE's JET_bitIndexSortNullsHigh).  Without
 *  it NULL sorts before every value in an ascending ('+') segment and after every value in a
 *  descending ('-') one, as in ESE: a "-size" index lists the largest sizes first, then the
 *  records without a size. */
#define EDB_IDX_SORT_NULLS_HIGH 0x8u
/** Records with a NULL in any key column get no entry (ESE's JET_bitIndexIgnoreAnyNull).
 *  Not for a primary index. */
#define EDB_IDX_IGNORE_ANY_NULL 0x10u

/**
 * An index.  @p key lists segments as ESE does: each segment is '+' (ascending) or
 * '-' (descending) followed by a column name and a NUL, the list ends with an
 * empty string: "+last\0-age\0" (a C literal adds the final NUL).  At most 12
 * segments.  A multi-valued column may not be in a key.
 */
typedef struct edb_index_def {
    const char *name;
    const char *key;
    unsigned flags;              /**< EDB_IDX_PRIMARY | EDB_IDX_UNIQUE | EDB_IDX_IGNORE_NULL |
                                      EDB_IDX_SORT_NULLS_HIGH | EDB_IDX_IGNORE_ANY_NULL */
} edb_index_def;

/** A table: columns and indexes.  At most one index is primary; without one the
 *  table gets an implicit auto-increment key. */
typedef struct edb_table_def {
    const char *name;
    const edb_column_def *columns; size_t ncolumns;
    const edb_index_def *indexes;  size_t nindexes;
} edb_table_def;

#define EDB_MAX_COLUMNS 1024
#define EDB_MAX_INDEXES 16
#define EDB_MAX_KEY_SEGMENTS 12
/** Largest encoded key (LMDB's limit minus edb's own framing). */
#define EDB_MAX_KEY_SIZE 500

/**
 * Create a table with its columns and indexes, in the session's transaction (or
 * one of its own).  Visible to other processes once committed.
 * @return 0; #EDB_EXISTS (table name taken); #EDB_INVAL (bad names, duplicate
 *         columns, unknown key column, bad flags for the type, two primaries, a
 *         default of the wrong size); #EDB_LIMIT (max_tables, columns, indexes);
 *         #EDB_READONLY; #EDB_BUSY; #EDB_FULL.
 */
EDB_EXTERN int edb_table_create(edb_session *s, const edb_table_def *def);
/** Drop a table with its rows and indexes.  Cursors open on it return #EDB_DROPPED afterwards,
 *  also once a new table of the same name exists (see "Handles carry identity" above).
 *  @return 0, #EDB_NOTFOUND, #EDB_INVAL, #EDB_READONLY, #EDB_BUSY. */
EDB_EXTERN int edb_table_drop(edb_session *s, const char *table);
/**
 * Add a column.  Existing rows are not rewritten: they read the column as its
 * default, or NULL.  A NOT NULL column needs a default; AUTOINC cannot be added.
 * @return 0, #EDB_NOTFOUND (table), #EDB_EXISTS (column), #EDB_INVAL, #EDB_LIMIT, #EDB_READONLY.
 */
EDB_EXTERN int edb_column_add(edb_session *s, const char *table, const edb_column_def *col);
/**
 * Create a secondary index and fill it from the table's rows in the same transaction.
 * @return 0, #EDB_NOTFOUND, #EDB_EXISTS, #EDB_INVAL (including PRIMARY), #EDB_KEYDUP
 *         (UNIQUE and two rows share a key: nothing is created), #EDB_TOOBIG, #EDB_LIMIT.
 */
EDB_EXTERN int edb_index_create(edb_session *s, const char *table, const edb_index_def *idx);
/** Drop a secondary index.  Cursors on it return #EDB_DROPPED until
 *  edb_cursor_set_index() moves them to another index.
 *  @return 0, #EDB_NOTFOUND, #EDB_INVAL (the primary index). */
EDB_EXTERN int edb_index_drop(edb_session *s, const char *table, const char *index);

/**
 * List the tables.  @param[out] out a NULL-terminated array of names, sorted;
 * free with edb_free().  @param[out] count number of names (may be NULL).
 * @return 0, #EDB_INVAL, #EDB_NOMEM.
 */
EDB_EXTERN int edb_table_list(char ***out, size_t *count, edb_session *s);
/**
 * Describe a table as an edb_table_def: columns in colid order (colid = position + 1),
 * indexes in creation order, the implicit primary key not listed.  Everything is in
 * one allocation; free with edb_free().
 * @return 0, #EDB_NOTFOUND, #EDB_INVAL, #EDB_NOMEM.
 */
EDB_EXTERN int edb_table_describe(edb_table_def **out, edb_session *s, const char *table);
/** Free memory returned by edb_table_list() and edb_table_describe().  NULL-safe. */
EDB_EXTERN void edb_free(void *p);

/** Statistics of one B-tree (a table's records or one index). */
typedef struct edb_tree_stat {
    uint64_t entries, depth, branch_pages, leaf_pages, overflow_pages;
} edb_tree_stat;
/**
 * Statistics of a table's record tree (index NULL) or of one of its indexes.
 * `entries` of the record tree is the row count (O(1)).
 * @return 0, #EDB_NOTFOUND, #EDB_INVAL.
 */
EDB_EXTERN int edb_table_stat(edb_tree_stat *out, edb_session *s, const char *table, const char *index);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Cursors and records @{ */

/**
 * A cursor on one table, positioned on a record of its current index (the
 * primary at open).  It belongs to its session and stays usable across the
 * session's transactions.
 *
 * Currency (ESE's rule).  The cursor remembers its entry by key and keeps
 * it across edb_txn_begin(), edb_txn_commit() and edb_txn_rollback() of its
 * session, across calls made outside a transaction (each in an implicit one
 * of its own) and across other sessions' commits: it is on the same record,
 * found again by its key.  If that record is gone (deleted through this or
 * another cursor or session, or inserted in a level that was rolled back),
 * the cursor stays at its place: edb_column_get(), edb_column_count(),
 * edb_update_prepare(#EDB_PREP_REPLACE), edb_record_delete(),
 * edb_escrow_update() and edb_cursor_set_range() return #EDB_RECORD_DELETED,
 * and #EDB_MOVE_NEXT / #EDB_MOVE_PREV move to the entries after / before its
 * key.  A rolled-back delete puts the record back under the cursor.  A
 * rollback does not move a cursor back to where it was when the level
 * began.
 *
 * Every cursor call returns #EDB_DROPPED once the cursor's table or index
 * was dropped (see "Handles carry identity" above; edb_key_make(), which
 * reads no data, may still build a key on the schema the cursor last saw:
 * the seek that uses it is #EDB_DROPPED) and #EDB_CLOSED once its session
 * ended or its env closed (the cursor is then a zombie: close it).
 * Thread safety: as its session.
 */
typedef struct edb_cursor edb_cursor;

/**
 * @param[out] out the cursor, unpositioned, on the primary index
 * @return 0, #EDB_NOTFOUND (no such table: "table 't' does not exist"),
 *         #EDB_INVAL, #EDB_NOMEM, #EDB_CLOSED.
 */
EDB_EXTERN int edb_cursor_open(edb_cursor **out, edb_session *s, const char *table);
/** Cancel a prepared update and free the cursor, also a zombie (its session
 *  ended or env closed; the last zombie of an ended session frees the session
 *  too).  NULL-safe. */
EDB_EXTERN void edb_cursor_close(edb_cursor *c);
/** @return 0 and the id of @p column in the cursor's table as the session's
 *  transaction sees it, #EDB_NOTFOUND, #EDB_INVAL, #EDB_DROPPED, #EDB_CLOSED. */
EDB_EXTERN int edb_column_id(edb_colid *out, edb_cursor *c, const char *column);

#define EDB_PREP_INSERT  1  /**< a new record: columns start NULL or at their defaults */
#define EDB_PREP_REPLACE 2  /**< change the current record: columns start at its values */

/**
 * Start building a record.  #EDB_PREP_REPLACE also remembers the record as it
 * is stored now: edb_update() writes only over that version (see there).
 * @return 0, #EDB_NOCURRENT (REPLACE with no current record),
 * #EDB_RECORD_DELETED (REPLACE: the cursor's record is gone), #EDB_INVAL
 * (mode, or an update already prepared), #EDB_READONLY.
 */
EDB_EXTERN int edb_update_prepare(edb_cursor *c, unsigned mode);

#define EDB_SET_APPEND 0x1u  /**< multi-valued: add this value after the others */
/**
 * Supply the value of an AUTOINC column of a new record instead of letting
 * the table assign it: for loaders that restore exported rows with their ids.
 * Only with #EDB_PREP_INSERT and only on an AUTOINC column.  The value is
 * 1 or more (the values the table assigns).  @p data NULL drops a value set
 * before: the table assigns one again.  edb_update() checks the record as
 * usual, so a value taken in the primary index or in a UNIQUE index is
 * #EDB_KEYDUP; an AUTOINC column in no unique index is not checked (a
 * supplied value may equal another row's).  When the insert succeeds, the
 * table's counter moves up to the value if it was below, so values the
 * table assigns later are larger than every value supplied (see
 * #EDB_COL_AUTOINC for rollbacks).
 */
#define EDB_SET_AUTOINC_VALUE 0x2u

/**
 * Set a column of the prepared record.  @p data NULL sets NULL (for a
 * multi-valued column: removes every value; with #EDB_SET_APPEND it adds
 * nothing and changes nothing, as ESE ignores it).  Without #EDB_SET_APPEND a
 * multi-valued column is left with this one value.  An AUTOINC column can
 * only be set with #EDB_SET_AUTOINC_VALUE (see there).
 * @param[in] data  the value in native form (header table); copied
 * @param[in] flags 0, #EDB_SET_APPEND or #EDB_SET_AUTOINC_VALUE
 * @return 0, #EDB_NOUPDATE, #EDB_NOTFOUND (colid), #EDB_INVAL (size or
 *         encoding wrong, unknown flags, APPEND on a single-valued column, an
 *         AUTOINC column without #EDB_SET_AUTOINC_VALUE, that flag on another
 *         column or in a replace, an AUTOINC value below 1),
 *         #EDB_TOOBIG (over max_size), #EDB_NOMEM.
 * Thread safety: as the cursor's session.
 */
EDB_EXTERN int edb_column_set(edb_cursor *c, edb_colid col, const void *data, size_t size, unsigned flags);

/**
 * Write the prepared record and keep every index exact.  After an insert the
 * cursor is on the new record (read its AUTOINC value with edb_column_get()).
 * An insert assigns each AUTOINC column the table's counter plus one, unless
 * the value was supplied (#EDB_SET_AUTOINC_VALUE); either way the counter
 * ends at least at the record's value.  A value handed out is never handed
 * out again by this env, even when its transaction rolls back (see
 * #EDB_COL_AUTOINC).
 *
 * Everything the caller can cause (#EDB_NOTNULL, #EDB_TOOBIG, #EDB_KEYDUP,
 * #EDB_LIMIT) is checked before the first write: such an error writes nothing,
 * every index is as before, the transaction goes on, and the update stays
 * prepared (fix it and retry, or cancel).  A failure while writing (#EDB_FULL:
 * the map is full; #EDB_IO) breaks the transaction it happens in (LMDB
 * requires its abort): inside an explicit transaction the innermost level is
 * then failed: every later call on the session returns that error, its detail
 * naming the cause, until the level is rolled back (edb_txn_rollback(), or
 * edb_txn_commit(), which rolls it back and returns the error).  Without an
 * explicit transaction the call's own transaction is rolled back: the
 * database is as before.  The same holds for edb_record_delete() and
 * edb_escrow_update().
 *
 * No lost update (ESE's JET_errWriteConflict).  A REPLACE is written only
 * over the record edb_update_prepare() read: if the stored record has
 * changed since (another session's commit, another cursor of this session,
 * an escrow update) or was deleted, edb_update() returns
 * #EDB_WRITE_CONFLICT and changes nothing; the update stays prepared.
 * Cancel it and prepare again on the current record.  This holds whether
 * the update was prepared inside the transaction or before it began.
 * @return 0, #EDB_NOUPDATE, #EDB_WRITE_CONFLICT, #EDB_NOTNULL, #EDB_KEYDUP (naming the index),
 *         #EDB_TOOBIG (key or record too large), #EDB_LIMIT (AUTOINC exhausted),
 *         #EDB_READONLY, #EDB_BUSY, #EDB_FULL, #EDB_IO, or the error of an
 *         earlier failure of the transaction.
 */
EDB_EXTERN int edb_update(edb_cursor *c);
/** Drop the prepared record, if any.  NULL-safe. */
EDB_EXTERN void edb_update_cancel(edb_cursor *c);

/**
 * Read a column of the current record (of the prepared record while an update is
 * prepared).  @p itag 0 or 1: the first value; n: the n-th value of a
 * multi-valued column.
 * @param[out] buf    receives up to @p size bytes (may be NULL when size is 0)
 * @param[out] actual full size of the value (may be NULL)
 * @return 0; #EDB_WRN_NULL (NULL, or no n-th value: *actual = 0);
 *         #EDB_WRN_TRUNCATED (@p size too small: @p size bytes copied, *actual = full size);
 *         #EDB_NOCURRENT, #EDB_RECORD_DELETED (see #edb_cursor, currency),
 *         #EDB_NOTFOUND (colid), #EDB_INVAL, #EDB_CORRUPT.
 */
EDB_EXTERN int edb_column_get(edb_cursor *c, edb_colid col, void *buf, size_t size, size_t *actual, unsigned itag);
/** @return 0 and the number of values of a column of the current record (0 for NULL),
 *  #EDB_NOCURRENT, #EDB_RECORD_DELETED, #EDB_NOTFOUND. */
EDB_EXTERN int edb_column_count(unsigned *out, edb_cursor *c, edb_colid col);

/** Delete the current record and its index entries.  The cursor stays at the
 *  record's place (#edb_cursor, currency): reads return #EDB_RECORD_DELETED,
 *  NEXT and PREV reach its neighbours, a rollback brings the record back.
 *  @return 0, #EDB_NOCURRENT, #EDB_RECORD_DELETED (already gone), #EDB_READONLY, #EDB_BUSY. */
EDB_EXTERN int edb_record_delete(edb_cursor *c);

/**
 * Add @p delta to an ESCROW column of the current record, atomically within the
 * transaction, and return the value before.  Overflow is #EDB_INVAL.
 * @return 0, #EDB_NOCURRENT, #EDB_RECORD_DELETED, #EDB_TYPE (not an escrow column),
 *         #EDB_INVAL (an update is prepared on @p c), #EDB_READONLY, #EDB_BUSY.
 */
EDB_EXTERN int edb_escrow_update(edb_cursor *c, edb_colid col, int64_t delta, int64_t *old);

/** Switch to index @p index (NULL or the primary's name: primary).  Unpositions the cursor, removes a range.
 *  Also the way off an index that was dropped (the cursor's table must still exist).
 *  @return 0, #EDB_NOTFOUND, #EDB_INVAL, #EDB_DROPPED (the table), #EDB_CLOSED. */
EDB_EXTERN int edb_cursor_set_index(edb_cursor *c, const char *index);
/** @return the current index's name (NULL for the implicit primary key); lives until the next set_index. */
EDB_EXTERN const char *edb_cursor_index(edb_cursor *c);

#define EDB_KEY_NEW        0x1u  /**< start a new key with this segment */
/** The key sorts after every entry that starts with it and before every other greater entry
 *  (ESE's JET_bitFullColumnEndLimit); no segment may follow.  It lies between entries, never
 *  on one: #EDB_SEEK_LE finds what #EDB_SEEK_LT finds, #EDB_SEEK_GT what #EDB_SEEK_GE finds,
 *  #EDB_SEEK_EQ is #EDB_INVAL, an upper range limit excludes the entries after the prefix even
 *  with #EDB_RANGE_INCLUSIVE and a lower one includes them. */
#define EDB_KEY_PREFIX_END 0x2u

/**
 * Add the next key segment (in the column's native form; @p data NULL = NULL) to
 * the cursor's search key.  The first call of a key passes #EDB_KEY_NEW.  A key
 * of the first k columns of the index is a prefix.  A NULL segment sorts where the
 * index keeps NULLs: before the values in an ascending segment, after them in a
 * descending one or with #EDB_IDX_SORT_NULLS_HIGH.
 * @return 0, #EDB_INVAL (no EDB_KEY_NEW first, more segments than the index has,
 *         wrong size), #EDB_TOOBIG.
 */
EDB_EXTERN int edb_key_make(edb_cursor *c, const void *data, size_t size, unsigned flags);

#define EDB_SEEK_EQ 1  /**< first entry equal to the key (or starting with a prefix key) */
#define EDB_SEEK_LT 2  /**< last entry less than the key */
#define EDB_SEEK_LE 3  /**< last entry less than or equal to the key */
#define EDB_SEEK_GE 4  /**< first entry greater than or equal to the key */
#define EDB_SEEK_GT 5  /**< first entry greater than the key */

/**
 * Position on an entry of the current index relative to the key made with
 * edb_key_make() (consumed by the seek).  Removes an index range.
 * @return 0, #EDB_NOTFOUND (no such entry; the cursor is unpositioned), #EDB_INVAL (no key;
 *         or #EDB_SEEK_EQ with a key made with #EDB_KEY_PREFIX_END, which sorts after every
 *         entry that starts with it and so equals none: the cursor and the key are left
 *         as they were).
 */
EDB_EXTERN int edb_cursor_seek(edb_cursor *c, unsigned how);

#define EDB_RANGE_UPPER     0x1u  /**< the key is an upper limit (else a lower limit, for moving back) */
#define EDB_RANGE_INCLUSIVE 0x2u  /**< an entry equal to the limit is inside */
#define EDB_RANGE_REMOVE    0x4u  /**< remove the range */

/**
 * Limit moves from the current entry to the key made with edb_key_make(): moving
 * past it returns #EDB_NOTFOUND.  Removed by a seek, a FIRST/LAST move, set_index.
 * @return 0; #EDB_NOTFOUND (the current entry is already outside: no range is set);
 *         #EDB_NOCURRENT; #EDB_RECORD_DELETED (the current entry is gone); #EDB_INVAL (no key).
 */
EDB_EXTERN int edb_cursor_set_range(edb_cursor *c, unsigned flags);

#define EDB_MOVE_FIRST INT32_MIN
#define EDB_MOVE_PREV  (-1)
#define EDB_MOVE_NEXT  1
#define EDB_MOVE_LAST  INT32_MAX

/**
 * Move to the first or last entry of the index, or n entries forward (n > 0) or
 * back (n < 0).  @return 0, #EDB_NOTFOUND (past either end or the range limit;
 * the cursor stays before the first or after the last entry, so moving back works),
 * #EDB_INVAL (0).
 */
EDB_EXTERN int edb_cursor_move(edb_cursor *c, int how);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Checking @{ */

/** Called by edb_env_check() for each problem found; @p what names the table, index, page. */
typedef void (*edb_check_fn)(void *ctx, int code, const char *what);
/**
 * Walk the whole database in one read snapshot (never blocks writers): LMDB trees
 * well formed, every page reachable once or free, catalog consistent, every
 * record decodable, every index entry matched by its record and every record by
 * its entries, keys in order.
 * @param[out] out number of problems found (0 = clean)
 * @param fn   called for each problem (may be NULL)
 * @param progress called now and then with rows checked so far (may be NULL)
 * @return 0 when the walk finished (look at *out), or an error that stopped it.
 */
EDB_EXTERN int edb_env_check(uint64_t *out, edb_env *env, edb_check_fn fn, void *ctx,
                             void (*progress)(void *ctx, uint64_t rows));
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* EDB_H */

/*
 * dbtool.h: what the subcommand files of dbtool share: the command table
 * entry, error and usage reporting, opening a database, reading a table's
 * schema, rows in and out (JSON lines, CSV, aligned tables) and progress.
 *
 * Conventions: a command returns its exit status (0 success, 1 failure with
 * one `dbtool: <what failed>: <EDB_NAME>: <message>` line on stderr, 2 usage
 * error).  Nothing here keeps global state except the command name used in
 * messages.  dbtool is single-threaded apart from compact's progress thread.
 */
#ifndef DBTOOL_H
#define DBTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "edb.h"
#include "jsonval.h"

#define DBT_OK 0
#define DBT_FAIL 1
#define DBT_USAGE 2

typedef struct dbt_cmd {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the command name */
    const char *synopsis;                /* "create DB" */
    const char *help;                    /* description paragraphs, as in the man page */
} dbt_cmd;

/* Commands, one file per family. */
int dbt_cmd_create(int argc, char **argv);
int dbt_cmd_create_table(int argc, char **argv);
int dbt_cmd_tables(int argc, char **argv);
int dbt_cmd_schema(int argc, char **argv);
int dbt_cmd_reindex(int argc, char **argv);   /* cmd_schema.c */
int dbt_cmd_import(int argc, char **argv);
int dbt_cmd_export(int argc, char **argv);
int dbt_cmd_get(int argc, char **argv);
int dbt_cmd_scan(int argc, char **argv);
int dbt_cmd_count(int argc, char **argv);
int dbt_cmd_delete(int argc, char **argv);
int dbt_cmd_stat(int argc, char **argv);
int dbt_cmd_check(int argc, char **argv);
int dbt_cmd_compact(int argc, char **argv);
int dbt_cmd_upgrade(int argc, char **argv);    /* cmd_upgrade.c */
int dbt_cmd_pack(int argc, char **argv);       /* cmd_upgrade.c: compact DB */
int dbt_cmd_drop_table(int argc, char **argv); /* cmd_alter.c */
int dbt_cmd_alter(int argc, char **argv);      /* cmd_alter.c */
int dbt_cmd_update(int argc, char **argv);     /* cmd_update.c */
/* cmd_schema.c: one column or index definition as create-table reads it
 * (JSON text), for alter; *col / *idx live until dbt_def_free().  Prints the
 * failure. */
typedef struct dbt_def dbt_def;
int dbt_def_column(dbt_def **out, const edb_column_def **col, const char *table, const char *json,
                   const char *what);
int dbt_def_index(dbt_def **out, const edb_index_def **idx, const char *table, const char *json,
                  const char *what);
void dbt_def_free(dbt_def *d);
int dbt_cmd_backup(int argc, char **argv);     /* cmd_backup.c */
/* cmd_keygen.c: dbtool keygen, and the key of --encrypt-key FILE (NULL when
 * not given), loaded by main() before the command runs. */
int dbt_cmd_keygen(int argc, char **argv);
int dbt_key_load(const char *path);
void dbt_key_id_hex(char out[33], const uint8_t key[32]);
extern const uint8_t *dbt_key;
struct edb_backup_opts;
bool dbt_parse_compress(struct edb_backup_opts *o, const char *s);   /* cmd_backup.c: --compress zstd[:L] */
int dbt_cmd_restore(int argc, char **argv);
int dbt_cmd_verify(int argc, char **argv);

/* The command table lookup (dbtool.c), for usage messages. */
const dbt_cmd *dbt_find_cmd(const char *name);

/* ---- errors ------------------------------------------------------------- */

/* Print "dbtool: <what>: <EDB_NAME>: <edb_error_last() detail>" and return 1. */
int dbt_fail(const char *what, int rc);
/* Print "dbtool: <what>: <EDB_NAME>: <formatted message>" and return 1. */
int dbt_failf(const char *what, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print "dbtool: <cmd>: <message>" and the command's synopsis; return 2. */
int dbt_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- opening ------------------------------------------------------------ */

#define DBT_OPEN_READ  0   /* read-only: never blocks or is blocked by writers */
#define DBT_OPEN_WRITE 1

/* Open an existing database (never creates one): EDB_NOTFOUND when DB holds
 * no data.mdb.  Prints the failure; returns 0 or 1. */
int dbt_open(edb_env **out, edb_session **sess, const char *path, int mode);

/* A table's schema, with each primary-key segment resolved. */
typedef struct dbt_table {
    edb_table_def *def;        /* from edb_table_describe(); edb_free() */
    const edb_index_def *primary;   /* NULL: implicit key */
    edb_colid *colids;         /* colid of def->columns[i] (edb_column_id) */
} dbt_table;

int dbt_table_load(dbt_table *out, edb_session *s, const char *table);   /* prints failure */
void dbt_table_free(dbt_table *t);
/* Column position (0-based) of a column name, -1 when absent. */
int dbt_column_index(const dbt_table *t, const char *name);
/* Index by name (NULL: primary); NULL when absent. */
const edb_index_def *dbt_index_find(const dbt_table *t, const char *name);

/* One key segment: column position and direction. */
typedef struct dbt_seg { int col; bool desc; } dbt_seg;
/* Parse an index key string ("+a\0-b\0") into at most EDB_MAX_KEY_SEGMENTS segments. */
int dbt_key_segments(dbt_seg *out, size_t *n, const dbt_table *t, const char *key);

/* ---- rows out ----------------------------------------------------------- */

/* Rows an aligned table buffers to size its columns. */
#define DBT_TABLE_BATCH 1000

typedef enum dbt_format { DBT_FMT_JSON, DBT_FMT_CSV, DBT_FMT_TABLE } dbt_format;

/* JSON when asked or when stdout is not a terminal; else an aligned table. */
dbt_format dbt_output_format(bool json);

/* Read one column of the cursor's current record as JSON (or text) into out.
 * NULL: JSON null / empty text.  Multi-valued: an array.  Returns 0 or an EDB code. */
int dbt_column_json(jv_buf *out, edb_cursor *c, const dbt_table *t, int col, jv_buf *scratch);
int dbt_column_text(jv_buf *out, edb_cursor *c, const dbt_table *t, int col, jv_buf *scratch);

/* A row writer: JSON lines, CSV (header first) or an aligned table (buffered,
 * printed by dbt_rows_end()). */
typedef struct dbt_rows {
    dbt_format fmt;
    const dbt_table *t;
    FILE *f;
    jv_buf line, scratch;
    char **cells;              /* table: rows * ncols strings not yet printed */
    size_t nrows, caprows;
    size_t *w;                 /* table: column widths, fixed once the header is out */
    bool header_done;
} dbt_rows;

void dbt_rows_begin(dbt_rows *r, dbt_format fmt, const dbt_table *t, FILE *f);
int dbt_rows_add(dbt_rows *r, edb_cursor *c);       /* the cursor's current record */
int dbt_rows_end(dbt_rows *r);                      /* flush; returns 0 or EDB_IO */
/* One CSV cell: quoted when needed (or always), quotes doubled. */
int dbt_csv_cell(jv_buf *line, const char *s, size_t n, bool quote_always);

/* ---- keys from the command line ----------------------------------------- */

/* Make a key on the cursor's current index from text values (one per leading
 * key column).  flags_last is added to the last segment (EDB_KEY_PREFIX_END). */
int dbt_key_from_args(edb_cursor *c, const dbt_table *t, const edb_index_def *idx,
                      char **vals, size_t nvals, unsigned flags_last, const char *what);

/* ---- progress ----------------------------------------------------------- */

/* Progress on stderr when it is a terminal and the work has run for a second. */
typedef struct dbt_progress {
    const char *what;
    bool tty, shown;
    double start, last;
} dbt_progress;

void dbt_progress_begin(dbt_progress *p, const char *what);
void dbt_progress_rows(dbt_progress *p, uint64_t rows);   /* cheap: call per row */
void dbt_progress_end(dbt_progress *p);
double dbt_now(void);

/* ---- files and interruption (safe.c) ------------------------------------ */

/* Open an input that must be a regular file without blocking (O_NONBLOCK, then
 * fstat; blocking mode restored after): a FIFO, directory, device or socket is
 * refused with a message saying what it is (suggesting - when stdin_ok).  "-"
 * is standard input, returned unchecked.  Returns the descriptor, or -1 after
 * printing the failure. */
int dbt_open_regular(const char *path, const char *what, bool stdin_ok);
/* The same as a stdio stream; stdin for "-"; NULL after printing. */
FILE *dbt_fopen_regular(const char *path, const char *what);

/* Make <parent>/<prefix>XXXXXX (0700) holding flock(LOCK_EX) on it through
 * *lockfd while it lives; the path goes to out.  0, or -1 with errno. */
int dbt_tmpdir_make(char *out, size_t cap, int *lockfd, const char *parent, const char *prefix);
/* Remove such a directory and what it holds (no link followed); closes lockfd. */
void dbt_tmpdir_remove(const char *path, int lockfd);
/* Remove the <prefix>XXXXXX directories in parent that killed runs left: real
 * directories of this user whose lock can be taken (a held lock is retried for
 * up to wait_ms, for processes being killed).  Returns how many. */
int dbt_tmpdir_sweep(const char *parent, const char *prefix, unsigned wait_ms);

/* Run fn(arg) in a child process; this process waits and takes SIGINT,
 * SIGTERM and SIGHUP: on one, the child is killed (SIGKILL), cleanup(carg)
 * runs once it is dead, "dbtool: <what>: EDB_CANCELED: interrupted ..." is
 * printed and 1 returned.  A child that died of a signal is cleaned up the
 * same way.  Otherwise returns the child's exit status.  The child has those
 * signals blocked and dies with this process (PR_SET_PDEATHSIG).  They stay
 * blocked here after the return: call it last, then exit with its result. */
int dbt_supervise(const char *what, int (*fn)(void *), void *arg, void (*cleanup)(void *), void *carg);

/* Parse a non-negative decimal count; false when malformed. */
bool dbt_parse_count(uint64_t *out, const char *s);

#endif

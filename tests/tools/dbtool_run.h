/* Spawning the built dbtool from tests: run it with given stdin, capture
 * stdout, stderr and the exit status (tests/tools/test_dbtool*.c). */
#ifndef DBTOOL_RUN_H
#define DBTOOL_RUN_H

#include <stdarg.h>
#include <stddef.h>

typedef struct run_result {
    int status;        /* exit status, or 128 + signal */
    char *out, *err;   /* NUL-terminated, malloc'd */
    size_t out_len;
} run_result;

/* Run dbtool with argv (NULL-terminated, without "dbtool"), stdin from `in`
 * (NULL: empty).  Aborts the test on spawn failure. */
run_result dbt_run(const char *in, const char *const *argv);
/* Variadic convenience: dbt_runv(in, "scan", db, "t", NULL). */
run_result dbt_runv(const char *in, ...);
void run_free(run_result *r);
/* Assert that the run exited 0; the message names @what, the status, stderr and stdout. */
void dbt_expect_ok(const run_result *r, const char *what);
/* The same with stdout on a pseudo-terminal (carriage returns removed). */
run_result dbt_run_tty(const char *const *argv);

/* A fresh temporary directory under /tmp; rm -rf with rm_tree(). */
char *tmpdir_new(void);
void rm_tree(const char *path);
/* Write a whole file. */
void write_file(const char *path, const char *text);
/* A database at <new temporary dir>/db (written to path[cap]) made by dbtool:
 * create, create-table from the JSON schema, import of the JSON-lines rows
 * into its table.  Returns the directory (rm_tree, free). */
char *dbt_make_db(char *path, size_t cap, const char *schema, const char *table, const char *rows);
/* Count lines of s. */
size_t count_lines(const char *s);
/* The table of the backup and repository tests: t (id int64 autoinc primary
 * key, v text). */
#define DBT_SCHEMA_ID_TEXT \
    "{\"name\": \"t\", \"columns\": [{\"name\": \"id\", \"type\": \"int64\", \"flags\": [\"autoinc\"]}," \
    "{\"name\": \"v\", \"type\": \"text\"}]," \
    "\"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]}]}"
/* @rows JSON lines {"v": "row N DIGITS"} for N from @first, DIGITS a number
 * padded to @width digits (malloc'd; free()). */
char *dbt_rows_json(unsigned first, unsigned rows, unsigned width);

#endif

/*
 * cmd_alter.c: dbtool drop-table and alter: schema changes of a loaded table.
 *
 *   alter DB TABLE add-column JSON | drop-column C | rename-column C NEW |
 *                  add-index JSON | drop-index I | rename NEW
 *
 * Each command is one write transaction: it commits whole or changes
 * nothing (the engine's schema calls roll back with it).  JSON is one column
 * or index object as create-table reads it (cmd_schema.c parses both).
 * add-column on a table with rows: existing rows read the new column as its
 * default or NULL, and a NOT NULL column without a default is refused by the
 * engine (EDB_INVAL) before anything is written.
 */
#include "config.h"

#include <string.h>

#include "dbtool.h"

int
dbt_cmd_drop_table(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0')
            return dbt_usage(argv[0], "unknown option '%s'", argv[i]);
    if (argc != 3)
        return dbt_usage(argv[0], "expected DB and TABLE");
    char what[300];
    snprintf(what, sizeof what, "drop-table '%s'", argv[2]);
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, argv[1], DBT_OPEN_WRITE) != DBT_OK)
        return DBT_FAIL;
    int rc = edb_table_drop(s, argv[2]), ret = DBT_OK;
    if (rc < 0)
        ret = dbt_fail(what, rc);
    edb_session_end(s);
    edb_env_close(env);
    return ret;
}

/* The operations: name, number of arguments after it. */
static const struct { const char *name; int nargs; } ops[] = {
    { "add-column", 1 }, { "drop-column", 1 }, { "rename-column", 2 },
    { "add-index", 1 }, { "drop-index", 1 }, { "rename", 1 },
};

int
dbt_cmd_alter(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0')
            return dbt_usage(argv[0], "unknown option '%s'", argv[i]);
    if (argc < 4)
        return dbt_usage(argv[0], "expected DB, TABLE and an operation (add-column, drop-column, "
                         "rename-column, add-index, drop-index, rename)");
    const char *table = argv[2], *op = argv[3];
    size_t k = 0;
    while (k < sizeof ops / sizeof ops[0] && strcmp(ops[k].name, op) != 0)
        k++;
    if (k == sizeof ops / sizeof ops[0])
        return dbt_usage(argv[0], "unknown operation '%s' (add-column, drop-column, rename-column, "
                         "add-index, drop-index, rename)", op);
    if (argc - 4 != ops[k].nargs)
        return dbt_usage(argv[0], "%s takes %s", op,
                         ops[k].nargs == 2 ? "two arguments (COLUMN NEW_NAME)"
                         : strcmp(op, "add-column") == 0 ? "one argument (a column as JSON)"
                         : strcmp(op, "add-index") == 0 ? "one argument (an index as JSON)"
                         : strcmp(op, "rename") == 0 ? "one argument (NEW_NAME)" : "one argument (a name)");
    const char *a = argv[4], *b = argc > 5 ? argv[5] : NULL;
    char what[400];
    snprintf(what, sizeof what, "alter '%s' %s", table, op);
    /* the definition first: a malformed one never opens the database */
    dbt_def *def = NULL;
    const edb_column_def *col = NULL;
    const edb_index_def *idx = NULL;
    if (strcmp(op, "add-column") == 0 && dbt_def_column(&def, &col, table, a, what) != DBT_OK)
        return DBT_FAIL;
    if (strcmp(op, "add-index") == 0 && dbt_def_index(&def, &idx, table, a, what) != DBT_OK)
        return DBT_FAIL;
    edb_env *env;
    edb_session *s;
    if (dbt_open(&env, &s, argv[1], DBT_OPEN_WRITE) != DBT_OK) {
        dbt_def_free(def);
        return DBT_FAIL;
    }
    int rc = edb_txn_begin(s, 0);
    if (rc == 0) {
        if (col != NULL)
            rc = edb_column_add(s, table, col);
        else if (idx != NULL)
            rc = edb_index_create(s, table, idx);   /* refuses a primary index (EDB_INVAL) */
        else if (strcmp(op, "drop-column") == 0)
            rc = edb_column_drop(s, table, a);
        else if (strcmp(op, "rename-column") == 0)
            rc = edb_column_rename(s, table, a, b);
        else if (strcmp(op, "drop-index") == 0)
            rc = edb_index_drop(s, table, a);
        else
            rc = edb_table_rename(s, table, a);
    }
    int ret = DBT_OK;
    if (rc < 0)
        ret = dbt_fail(what, rc);
    else if ((rc = edb_txn_commit(s)) < 0)
        ret = dbt_fail(what, rc);
    /* on failure edb_session_end() rolls the transaction back */
    edb_session_end(s);
    edb_env_close(env);
    dbt_def_free(def);
    return ret;
}

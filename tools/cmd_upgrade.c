/*
 * cmd_upgrade.c: dbtool upgrade DB — convert a database of an older format
 * (1 to 4) to the library's format 5 (edb_env_upgrade, engine/upgrade.c).
 * dbtool compact DB — rewrite it with full pages (edb_env_pack).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dbtool.h"

int
dbt_cmd_upgrade(int argc, char **argv)
{
    if (argc != 2 || strncmp(argv[1], "--", 2) == 0)
        return dbt_usage(argv[0], "expected DB");
    char what[600];
    snprintf(what, sizeof what, "upgrade '%s'", argv[1]);
    unsigned from = 0;
    int rc = edb_env_upgrade(&from, argv[1]);
    if (rc < 0)
        return dbt_fail(what, rc);
    if (from == 5)
        printf("'%s' is format 5 already: nothing to do\n", argv[1]);
    else
        printf("upgraded '%s' from format %u to format 5\n", argv[1], from);
    return 0;
}

/* dbtool compact DB (no OUT_DIR: cmd_admin.c hands it here) — rewrite DB
 * in place with full pages (edb_env_pack, engine/compact.c). */
int
dbt_cmd_pack(int argc, char **argv)
{
    if (argc != 2 || strncmp(argv[1], "--", 2) == 0)
        return dbt_usage(argv[0], "expected DB");
    char what[600];
    snprintf(what, sizeof what, "compact '%s'", argv[1]);
    edb_pack_stat st;
    int rc = edb_env_pack(&st, argv[1]);
    if (rc < 0)
        return dbt_fail(what, rc);
    printf("compacted '%s': %llu pages, %llu bytes -> %llu pages, %llu bytes\n", argv[1],
           (unsigned long long)st.pages_before, (unsigned long long)st.bytes_before,
           (unsigned long long)st.pages_after, (unsigned long long)st.bytes_after);
    return 0;
}

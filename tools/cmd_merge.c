/*
 * cmd_merge.c: dbtool merge OUT FULL INCR...: a chain into one synthetic
 * full archive (edb_backup_merge()), like PostgreSQL's pg_combinebackup.
 * The chain is checked as restore checks it; OUT appears only when complete.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"

int
dbt_cmd_merge(int argc, char **argv)
{
    const char *cmd = "merge";
    bool json = false, overwrite = false, quiet = false;
    const char *out = NULL;
    edb_backup_source *src = calloc((size_t)argc, sizeof *src);
    if (src == NULL)
        return dbt_failf(cmd, EDB_NOMEM, "out of memory");
    size_t n = 0;
    int ret;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--overwrite") == 0) {
            overwrite = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (a[0] == '-') {
            ret = strcmp(a, "-") == 0
                ? dbt_usage(cmd, "merge reads archives by offset: '-' (standard input) cannot be used")
                : dbt_usage(cmd, "unknown option '%s'", a);
            goto out;
        } else if (out == NULL) {
            out = a;
        } else {
            src[n].path = a;
            src[n].fd = -1;
            src[n].key = dbt_key;
            n++;
        }
    }
    if (out == NULL || n == 0) {
        ret = dbt_usage(cmd, "expected OUT, then the full archive and its incrementals in order");
        goto out;
    }
    char what[4200];
    snprintf(what, sizeof what, "merge into '%s'", out);
    double t0 = dbt_now();
    edb_backup_info info;
    int rc = edb_backup_merge(&info, out, src, n, overwrite ? EDB_SAVE_OVERWRITE : 0);
    if (rc < 0) {
        if (rc == EDB_EXISTS && !overwrite)
            ret = dbt_failf(what, rc, "'%s' exists; --overwrite replaces it", out);
        else
            ret = dbt_fail(what, rc);
        goto out;
    }
    double secs = dbt_now() - t0;
    if (json) {
        edb_backup_summary s;
        edb_backup_source o = { .path = out, .fd = -1, .name = NULL, .key = dbt_key };
        if ((rc = edb_backup_describe(&s, &o)) < 0) {
            ret = dbt_fail(what, rc);
            goto out;
        }
        jv_buf b = { 0 };
        char tmp[96];
        int e = jv_buf_adds(&b, "{\"file\":");
        e = e ? e : jv_write_json_string(&b, out, strlen(out));
        e = e ? e : jv_buf_adds(&b, ",");
        e = e ? e : dbt_summary_members(&b, &s);
        snprintf(tmp, sizeof tmp, ",\"archives\":%zu,\"seconds\":%.3f}\n", n, secs);
        e = e ? e : jv_buf_adds(&b, tmp);
        if (e == 0)
            fwrite(b.p, 1, b.len, stdout);
        jv_buf_free(&b);
        if (e != 0) {
            ret = dbt_failf(what, EDB_NOMEM, "out of memory");
            goto out;
        }
    } else if (!quiet) {
        char id[33];
        dbt_hex16(id, info.backup_id);
        printf("merged %zu archive%s into '%s': full archive %s, transaction %llu, %llu pages "
               "carried of %llu, %llu bytes, %.3f s\n", n, n == 1 ? "" : "s", out, id,
               (unsigned long long)info.txnid, (unsigned long long)info.pages,
               (unsigned long long)info.npages, (unsigned long long)info.bytes, secs);
    }
    ret = fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
out:
    free(src);
    return ret;
}

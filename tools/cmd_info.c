/*
 * cmd_info.c: dbtool info: what each archive or manifest says about itself
 * (edb_backup_describe(): its blocks, not its pages), and the JSON members
 * every lifecycle command uses for one archive.
 *
 * An interrupted or damaged archive is described with complete: false and
 * the problem, not refused: info is what an operator runs to find out which
 * file is which.  Only a file that is neither an archive nor a manifest (or
 * cannot be read) fails, and the others are still described.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle.h"

void
dbt_hex16(char out[33], const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static bool
zero16(const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        if (id[i] != 0)
            return false;
    return true;
}

void
dbt_kind(char *out, size_t cap, unsigned flags)
{
    snprintf(out, cap, "%s%s%s", (flags & EDB_BACKUP_INCREMENTAL) ? "incremental" : "full",
             (flags & EDB_BACKUP_LOW_PIN) ? ",low-pin" : "",
             (flags & EDB_BACKUP_KEEP_FREE) ? ",keep-free" : "");
}

int
dbt_summary_members(jv_buf *out, const edb_backup_summary *s)
{
    char id[33], base[40], kind[64], when[48], tmp[512];
    dbt_hex16(id, s->backup_id);
    if (zero16(s->base_id)) {
        snprintf(base, sizeof base, "null");
    } else {
        base[0] = '"';
        dbt_hex16(base + 1, s->base_id);
        snprintf(base + 33, sizeof base - 33, "\"");
    }
    dbt_kind(kind, sizeof kind, s->flags);
    char comp[32] = "null";
    if (s->compress == EDB_BACKUP_COMPRESS_ZSTD) {
        snprintf(kind + strlen(kind), sizeof kind - strlen(kind), ",compressed");
        snprintf(comp, sizeof comp, "\"zstd:%d\"", s->compress_level);
    }
    char enc[80] = "null";
    if (s->encrypted) {
        char kid[33];
        snprintf(kind + strlen(kind), sizeof kind - strlen(kind), ",encrypted");
        dbt_hex16(kid, s->key_id);
        snprintf(enc, sizeof enc, "{\"key_id\":\"%s\"}", kid);
    }
    if (jv_datetime_format(when, sizeof when, (int64_t)s->created_us) != 0)
        snprintf(when, sizeof when, "?");
    snprintf(tmp, sizeof tmp,
             "\"id\":\"%s\",\"base_id\":%s,\"kind\":\"%s\",\"txn\":%" PRIu64 ",\"created\":\"%s\","
             "\"page_size\":%u,\"npages\":%" PRIu64 ",\"pages\":%" PRIu64 ",\"bytes\":%" PRIu64 ","
             "\"complete\":%s,\"compression\":%s,\"encryption\":%s",
             id, base, kind, s->txnid, when, s->page_size, s->npages, s->pages, s->bytes,
             s->complete ? "true" : "false", comp, enc);
    if (jv_buf_adds(out, tmp) != 0)
        return EDB_NOMEM;
    if (s->manifest && jv_buf_adds(out, ",\"manifest\":true") != 0)
        return EDB_NOMEM;
    if (!s->complete && (jv_buf_adds(out, ",\"problem\":") != 0 ||
                         jv_write_json_string(out, s->problem, strlen(s->problem)) != 0))
        return EDB_NOMEM;
    return 0;
}

static void
human(char *out, size_t n, double bytes)
{
    const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (bytes >= 1024 && i < 4) {
        bytes /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
}

static void
print_text(const char *name, const edb_backup_summary *s)
{
    char id[33], base[33], kind[64], when[48], h[32];
    dbt_hex16(id, s->backup_id);
    dbt_hex16(base, s->base_id);
    dbt_kind(kind, sizeof kind, s->flags);
    if (jv_datetime_format(when, sizeof when, (int64_t)s->created_us) != 0)
        snprintf(when, sizeof when, "?");
    human(h, sizeof h, (double)s->bytes);
    printf("%s: %s %s%s\n", name, kind, s->manifest ? "manifest" : "archive",
           s->manifest ? "" : s->complete ? ", complete" : ", NOT complete");
    printf("  id:        %s\n", id);
    printf("  base:      %s\n", zero16(s->base_id) ? "- (a full archive)" : base);
    printf("  snapshot:  transaction %" PRIu64 ", %" PRIu64 " pages of %u bytes, taken %s\n",
           s->txnid, s->npages, s->page_size, when);
    printf("  carried:   %" PRIu64 " pages in %" PRIu64 " frames, %s%s\n", s->pages, s->frames, h,
           s->manifest ? " (the archive's length)" : "");
    if (s->compress == EDB_BACKUP_COMPRESS_ZSTD)
        printf("  compressed: zstd level %d (format version 3)\n", s->compress_level);
    if (s->encrypted) {
        char kid[33];
        dbt_hex16(kid, s->key_id);
        printf("  encrypted: key id %s (verify and restore need --encrypt-key)\n", kid);
    }
    if (!s->complete)
        printf("  problem:   %s\n", s->problem);
}

int
dbt_cmd_info(int argc, char **argv)
{
    const char *cmd = "info";
    bool json = false;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return dbt_usage(cmd, "unknown option '%s'", argv[i]);
        else
            n++;
    }
    if (n == 0)
        return dbt_usage(cmd, "expected at least one ARCHIVE or MANIFEST (or - for standard input)");
    bool as_json = dbt_output_format(json) == DBT_FMT_JSON;
    int ret = DBT_OK;
    bool stdin_used = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] != '\0')
            continue;
        edb_backup_source src = { .path = a, .fd = -1, .name = NULL };
        if (strcmp(a, "-") == 0) {
            if (stdin_used)
                return dbt_usage(cmd, "'-' (standard input) may be given once");
            stdin_used = true;
            src.path = NULL;
            src.fd = STDIN_FILENO;
            src.name = "standard input";
        }
        edb_backup_summary s;
        char what[4200];
        snprintf(what, sizeof what, "info '%s'", a);
        int rc = edb_backup_describe(&s, &src);
        if (rc < 0) {
            fflush(stdout);
            dbt_fail(what, rc);
            ret = DBT_FAIL;
            continue;
        }
        if (as_json) {
            jv_buf b = { 0 };
            if (jv_buf_adds(&b, "{") != 0 || dbt_summary_members(&b, &s) != 0 ||
                jv_buf_adds(&b, "}\n") != 0) {
                jv_buf_free(&b);
                return dbt_failf(what, EDB_NOMEM, "out of memory");
            }
            fwrite(b.p, 1, b.len, stdout);
            jv_buf_free(&b);
        } else {
            print_text(a, &s);
        }
    }
    if (fflush(stdout) != 0)
        ret = DBT_FAIL;
    return ret;
}

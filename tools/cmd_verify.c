/*
 * cmd_verify.c: dbtool verify over any number of chains.
 *
 * The arguments are grouped into chains by their ids (edb_backup_describe():
 * an incremental's base_id names the archive it builds on), in any order:
 * each archive that no other argument builds on ends a chain, which runs back
 * through its bases to a full archive or to an incremental whose base is not
 * among the arguments.  Each chain is then checked completely by
 * edb_backup_verify() (through cmd_backup.c's single-chain verify for text
 * output, so --deep and the messages are the same), and each archive is
 * reported.  With standard input among the arguments nothing can be read
 * twice, so the arguments are one chain in the order given, as before.
 *
 * Two arguments with the same id are refused (EDB_CHAIN), as a chain that
 * repeats a link always was.  Two incrementals on the same base make two
 * chains that share their start, which is then checked in each.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle.h"

typedef struct varch {
    const char *file;
    edb_backup_summary s;
    bool described;
    int parent;           /* index of the argument it builds on, -1: none */
    int children;
    bool verified;        /* its chain was checked and it passed */
    char error[600];      /* why not, "" when verified */
} varch;

/* ---- JSON per archive ---- */

static int
print_json(const varch *a, int chain)
{
    jv_buf b = { 0 };
    char tmp[64];
    int rc = jv_buf_adds(&b, "{\"file\":");
    rc = rc ? rc : jv_write_json_string(&b, a->file, strlen(a->file));
    if (a->described) {
        rc = rc ? rc : jv_buf_adds(&b, ",");
        rc = rc ? rc : dbt_summary_members(&b, &a->s);
    }
    snprintf(tmp, sizeof tmp, ",\"chain\":%d,\"verified\":%s", chain, a->verified ? "true" : "false");
    rc = rc ? rc : jv_buf_adds(&b, tmp);
    if (!a->verified) {
        rc = rc ? rc : jv_buf_adds(&b, ",\"error\":");
        rc = rc ? rc : jv_write_json_string(&b, a->error, strlen(a->error));
    }
    rc = rc ? rc : jv_buf_adds(&b, "}\n");
    if (rc == 0)
        fwrite(b.p, 1, b.len, stdout);
    jv_buf_free(&b);
    return rc;
}

/* ---- one chain, JSON: edb_backup_verify() with the problems collected ---- */

typedef struct collect {
    varch *a;
    const int *idx;       /* chain position -> argument index */
    size_t n;
    size_t first_bad;     /* chain position of the first problem, n: none */
} collect;

static void
on_problem(void *ctx, const edb_backup_problem *p)
{
    collect *c = ctx;
    if (p->archive >= c->n)
        return;
    varch *a = &c->a[c->idx[p->archive]];
    if (a->error[0] == '\0')
        snprintf(a->error, sizeof a->error, "%s", p->message);
    if (p->archive < c->first_bad)
        c->first_bad = p->archive;
}

static int
verify_chain_json(varch *a, const int *idx, size_t n)
{
    edb_backup_source *src = calloc(n, sizeof *src);
    if (src == NULL)
        return EDB_NOMEM;
    for (size_t i = 0; i < n; i++) {
        src[i].path = a[idx[i]].file;
        src[i].fd = -1;
        src[i].key = dbt_key;
        a[idx[i]].error[0] = '\0';
    }
    collect c = { a, idx, n, n };
    edb_backup_info info;
    int rc = edb_backup_verify(&info, src, n, on_problem, &c);
    free(src);
    if (rc < 0 && c.first_bad == n) {
        /* A failure without a problem report (memory, arguments): the whole chain. */
        c.first_bad = 0;
        snprintf(a[idx[0]].error, sizeof a[idx[0]].error, "%s", edb_error_last());
    }
    for (size_t i = 0; i < n; i++) {
        varch *x = &a[idx[i]];
        x->verified = rc == 0;
        if (rc < 0 && x->error[0] == '\0')
            snprintf(x->error, sizeof x->error, i < c.first_bad
                     ? "the archive read correctly, but its chain failed at archive '%s'"
                     : "not checked: archive '%s' of its chain failed", a[idx[c.first_bad]].file);
    }
    return rc;
}

/* ---- grouping ---- */

/* Fill a[i].parent and children; refuse repeated ids.  Returns the number of
 * usable archives (the others carry an error). */
static void
link_args(varch *a, int n)
{
    for (int i = 0; i < n; i++) {
        a[i].parent = -1;
        if (!a[i].described)
            continue;
        for (int k = 0; k < i; k++)
            if (a[k].described && memcmp(a[k].s.backup_id, a[i].s.backup_id, 16) == 0) {
                char id[33];
                dbt_hex16(id, a[i].s.backup_id);
                snprintf(a[i].error, sizeof a[i].error, "EDB_CHAIN: archive '%s' repeats archive '%s' "
                         "(backup %s)", a[i].file, a[k].file, id);
                a[i].described = false;
                break;
            }
    }
    for (int i = 0; i < n; i++) {
        if (!a[i].described || !(a[i].s.flags & EDB_BACKUP_INCREMENTAL))
            continue;
        for (int k = 0; k < n; k++)
            if (k != i && a[k].described && memcmp(a[k].s.backup_id, a[i].s.base_id, 16) == 0) {
                a[i].parent = k;
                a[k].children++;
                break;
            }
    }
}

/* The chain ending at @leaf, in chain order, into idx; its length, or 0 on a
 * cycle (only forged ids can make one). */
static size_t
chain_of(const varch *a, int n, int leaf, int *idx)
{
    size_t len = 0;
    for (int i = leaf; i >= 0; i = a[i].parent) {
        if (len == (size_t)n)
            return 0;
        idx[len++] = i;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int t = idx[i];
        idx[i] = idx[len - 1 - i];
        idx[len - 1 - i] = t;
    }
    return len;
}

int
dbt_cmd_verify_chains(int argc, char **argv)
{
    const char *cmd = "verify";
    bool json = false, deep = false, has_stdin = false;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--deep") == 0)
            deep = true;
        else if (strcmp(argv[i], "-") == 0)
            has_stdin = true, n++;
        else if (argv[i][0] != '-')
            n++;
    }
    if (json && deep)
        return dbt_usage(cmd, "--json and --deep cannot be combined (--deep prints 'dbtool check' "
                         "output)");
    if (json && has_stdin)
        return dbt_usage(cmd, "--json needs archive files (standard input cannot be described "
                         "and then verified)");
    /* One chain as given: standard input, or the old single-chain checks. */
    if (!json && (n <= 1 || has_stdin))
        return dbt_cmd_verify(argc, argv);
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0' && strcmp(argv[i], "--json") != 0 &&
            strcmp(argv[i], "--deep") != 0)
            return dbt_usage(cmd, "unknown option '%s'", argv[i]);
    if (n == 0)
        return dbt_usage(cmd, "expected at least one ARCHIVE (or - for standard input)");

    varch *a = calloc((size_t)n, sizeof *a);
    int *idx = calloc((size_t)n, sizeof *idx);
    char **av = calloc((size_t)n + 3, sizeof *av);
    if (a == NULL || idx == NULL || av == NULL) {
        free(a), free(idx), free(av);
        return dbt_failf(cmd, EDB_NOMEM, "out of memory");
    }
    int ret = DBT_OK, k = 0;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-')
            a[k++].file = argv[i];
    for (int i = 0; i < n; i++) {
        edb_backup_source src = { .path = a[i].file, .fd = -1, .name = NULL, .key = dbt_key };
        if (edb_backup_describe(&a[i].s, &src) != 0)
            snprintf(a[i].error, sizeof a[i].error, "%s", edb_error_last());
        else if (a[i].s.manifest)
            snprintf(a[i].error, sizeof a[i].error, "EDB_INVAL: '%s' is a manifest, not an archive "
                     "('dbtool info' describes it; verify checks the archive it names)", a[i].file);
        else
            a[i].described = true;
    }
    link_args(a, n);

    /* Arguments that cannot be part of a chain. */
    for (int i = 0; i < n; i++) {
        if (a[i].described)
            continue;
        if (json) {
            print_json(&a[i], 0);
        } else {
            printf("problem: archive '%s': %s\n", a[i].file, a[i].error);
            fflush(stdout);
            fprintf(stderr, "dbtool: verify: %s\n", a[i].error);
        }
        ret = DBT_FAIL;
    }
    int chains = 0;
    for (int i = 0; i < n; i++)
        chains += a[i].described && a[i].children == 0;
    int c = 0;
    for (int leaf = 0; leaf < n; leaf++) {
        if (!a[leaf].described || a[leaf].children != 0)
            continue;
        size_t len = chain_of(a, n, leaf, idx);
        if (len == 0) {
            fprintf(stderr, "dbtool: verify: EDB_CHAIN: the ids of '%s' and its bases form a cycle\n",
                    a[leaf].file);
            ret = DBT_FAIL;
            continue;
        }
        c++;
        if (json) {
            if (verify_chain_json(a, idx, len) != 0)
                ret = DBT_FAIL;
            for (size_t j = 0; j < len; j++)
                print_json(&a[idx[j]], c);
            continue;
        }
        if (chains > 1) {
            printf("chain %d of %d:", c, chains);
            for (size_t j = 0; j < len; j++)
                printf(" %s", a[idx[j]].file);
            printf("\n");
        }
        fflush(stdout);
        size_t m = 0;
        av[m++] = (char *)"verify";
        for (size_t j = 0; j < len; j++)
            av[m++] = (char *)a[idx[j]].file;
        if (deep)
            av[m++] = (char *)"--deep";
        av[m] = NULL;
        int r = dbt_cmd_verify((int)m, av);
        if (r != DBT_OK) {
            ret = DBT_FAIL;
            continue;
        }
        for (size_t j = 0; j < len; j++) {
            char id[33], kind[64];
            dbt_hex16(id, a[idx[j]].s.backup_id);
            dbt_kind(kind, sizeof kind, a[idx[j]].s.flags);
            printf("ok: '%s': %s archive %s, transaction %llu\n", a[idx[j]].file, kind, id,
                   (unsigned long long)a[idx[j]].s.txnid);
        }
    }
    if (fflush(stdout) != 0)
        ret = DBT_FAIL;
    free(a);
    free(idx);
    free(av);
    return ret;
}

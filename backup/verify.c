/*
 * verify.c: edb_backup_verify() and the chain checks it shares with restore.c.
 *
 * A chain is checked one archive at a time, each read once by reader.c.  Between
 * archives only the previous archive's identity (id, archive hash, npages) and
 * its page hash table are kept, so memory is 16 bytes per page of the largest
 * snapshot plus what reader.c holds for the archive being read.
 *
 * Invariant: every failure leaves a detail naming the archive (its position in
 * the list and its name) and, where it applies, the frame, page and offset.
 *
 * Thread safety: reentrant; no shared state.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "reader.h"
#include "sys.h"

int
edb__source_open(const edb_backup_source *src, int *fd, bool *owned, char *name, size_t namesz)
{
    *fd = -1;
    *owned = false;
    if (src->path != NULL) {
        snprintf(name, namesz, "%s", src->name ? src->name : src->path);
        int f = edb__sys_open(src->path, O_RDONLY | O_CLOEXEC, 0);
        if (f < 0) {
            int e = errno;
            if (e == ENOENT)
                return edb__err(EDB_NOTFOUND, "archive '%s': no such file", name);
            return edb__sys_err(e, "opening the archive");
        }
        *fd = f;
        *owned = true;
        return 0;
    }
    if (src->fd < 0)
        return edb__err(EDB_INVAL, "archive source: neither a path nor a file descriptor");
    if (src->name != NULL)
        snprintf(name, namesz, "%s", src->name);
    else
        snprintf(name, namesz, "fd %d", src->fd);
    *fd = src->fd;
    return 0;
}

static const char *
hex16(char buf[33], const uint8_t id[16])
{
    edb__arch_hex(buf, id, 16);
    return buf;
}

int
edb__chain_check(const edb__link *prev, size_t idx, const edb__arch_header *h, const char *name,
                 bool need_full)
{
    char a[33], b[33];
    bool incr = (h->flags & EDB__ARCH_F_INCREMENTAL) != 0;
    if (idx == 0) {
        if (need_full && incr)
            return edb__err(EDB_CHAIN, "archive 1 '%s' is incremental (it builds on backup %s); "
                            "a restore starts with the full archive", name, hex16(a, h->base_id));
        return 0;
    }
    for (size_t k = 0; k < idx; k++)
        if (memcmp(prev[k].backup_id, h->backup_id, 16) == 0)
            return edb__err(EDB_CHAIN, "archive %zu '%s' repeats archive %zu '%s' (backup %s)",
                            idx + 1, name, k + 1, prev[k].name, hex16(a, h->backup_id));
    const edb__link *p = &prev[idx - 1];
    if (!incr)
        return edb__err(EDB_CHAIN, "archive %zu '%s' is a full backup; only the first archive of "
                        "a chain may be full (it does not build on archive %zu '%s')", idx + 1,
                        name, idx, p->name);
    if (memcmp(h->base_id, p->backup_id, 16) != 0) {
        for (size_t k = 0; k + 1 < idx; k++)
            if (memcmp(prev[k].backup_id, h->base_id, 16) == 0)
                return edb__err(EDB_CHAIN, "archive %zu '%s' builds on archive %zu '%s', not on "
                                "archive %zu '%s' just before it (out of order?)", idx + 1, name,
                                k + 1, prev[k].name, idx, p->name);
        return edb__err(EDB_CHAIN, "archive %zu '%s' builds on backup %s, but archive %zu '%s' is "
                        "backup %s (a missing link, or an archive of another chain)", idx + 1,
                        name, hex16(a, h->base_id), idx, p->name, hex16(b, p->backup_id));
    }
    if (!edb__arch_hash_eq(&h->base_hash, &p->archive_hash))
        return edb__err(EDB_CHAIN, "archive %zu '%s' names archive %zu '%s' as its base, but the "
                        "base's archive hash differs (a different archive with the same id)",
                        idx + 1, name, idx, p->name);
    if (h->base_npages != p->npages)
        return edb__err(EDB_CHAIN, "archive %zu '%s': base has %llu pages, archive %zu '%s' has "
                        "%llu", idx + 1, name, (unsigned long long)h->base_npages, idx, p->name,
                        (unsigned long long)p->npages);
    if (h->page_size != p->page_size)
        return edb__err(EDB_CHAIN, "archive %zu '%s': page size %u, its base '%s' has %u",
                        idx + 1, name, h->page_size, p->name, p->page_size);
    return 0;
}

/* Bound the file by the archives' real content (issue #11): a page no archive
 * of the chain carried is restored as zeros, and in a real database it is a
 * free page, listed in the free list, whose pages the chain carries; each
 * carried page can list at most page_size / 8 of them.  A trailer that claims
 * more pages than that (a 4 MiB archive claiming a 16 GiB database) is
 * refused before data.mdb is given that size; verify applies the same rule to
 * a chain that starts with a full archive, so the two agree. */
int
edb__chain_room(edb__room *r, const edb__archive *a, size_t idx, const char *name)
{
    uint64_t npages = a->trailer.npages;
    uint32_t ps = a->header.page_size;
    if (npages > r->ever_n) {
        size_t words = (size_t)((npages + 63) / 64), old = (size_t)((r->ever_n + 63) / 64);
        uint64_t *e = edb__sys_realloc(r->ever, words * sizeof *e);
        if (e == NULL)
            return edb__err(EDB_NOMEM, "page set of %llu pages", (unsigned long long)npages);
        memset(e + old, 0, (words - old) * sizeof *e);
        r->ever = e;
        r->ever_n = (uint64_t)words * 64;
    }
    for (size_t k = 0; k < a->ncarried; k++) {
        uint64_t p = a->carried[k].pgno;
        if (p < npages)
            r->ever[p >> 6] |= (uint64_t)1 << (p & 63);
    }
    uint64_t carried = 0;
    for (uint64_t p = 2; p < npages; p++)
        carried += (r->ever[p >> 6] >> (p & 63)) & 1;
    uint64_t zero = npages - 2 - carried;
    uint64_t room = carried * (ps / 8) + EDB__ARCH_FREE_SLACK;
    if (!edb__arch_size_justified(npages, carried, ps))
        return edb__err(EDB_CORRUPT, "archive %zu '%s': its snapshot has %llu pages, but the chain "
                        "carries only %llu of them: the %llu others would be free pages, more than "
                        "a free list in those pages can list (%llu); a forged or damaged trailer "
                        "(a data.mdb of %llu bytes was not created)", idx + 1, name,
                        (unsigned long long)npages, (unsigned long long)carried,
                        (unsigned long long)zero, (unsigned long long)room,
                        (unsigned long long)(npages * ps));
    return 0;
}

/* ---- verify ---- */

struct vctx {
    edb_backup_problem_fn fn;
    void *ctx;
    size_t idx;
    const char *name;
    const edb__link *links;
    size_t nbad;
    char first[512];       /* the first damaged page's detail, archive named */
    size_t first_msg;      /* where its message starts (after the code's name) */
};

/* Re-set the thread's detail as "<NAME>: archive N 'name': <old detail>". */
static int
name_archive(int rc, size_t idx, const char *name)
{
    char old[512];
    snprintf(old, sizeof old, "%s", edb_error_last_message());
    if (strncmp(old, "archive ", 8) == 0)
        return edb__err(rc, "%s", old);
    return edb__err(rc, "archive %zu '%s': %s", idx + 1, name, old);
}

static void
report(struct vctx *v, int code, const edb__where *w)
{
    if (v->fn == NULL)
        return;
    edb_backup_problem p;
    p.code = code;
    p.archive = v->idx;
    p.name = v->name;
    p.frame = w ? w->frame : -1;
    p.pgno = w ? w->pgno : -1;
    p.offset = w ? w->offset : -1;
    p.message = edb_error_last();
    v->fn(v->ctx, &p);
}

static void
on_bad_page(void *ctx, const edb__where *w)
{
    struct vctx *v = ctx;
    name_archive(EDB_CHECKSUM, v->idx, v->name);
    if (v->nbad++ == 0) {
        snprintf(v->first, sizeof v->first, "%s", edb_error_last());
        v->first_msg = (size_t)(edb_error_last_message() - edb_error_last());   /* same storage */
    }
    report(v, EDB_CHECKSUM, w);
}

static int
on_header(void *ctx, const edb__arch_header *h)
{
    struct vctx *v = ctx;
    return edb__chain_check(v->links, v->idx, h, v->name, false);
}

int
edb__chain_table_check(const edb__archive *a, const edb__arch_hash *prev, edb__where *w)
{
    uint64_t n = a->header.base_npages < a->trailer.npages ? a->header.base_npages
                                                            : a->trailer.npages;
    for (uint64_t p = 2; p < n; p++) {
        if (edb__archive_carried(a, p) != NULL)
            continue;
        if (!edb__arch_hash_eq(&a->table[p], &prev[p])) {
            *w = (edb__where){ -1, (int64_t)p, -1 };
            return edb__err(EDB_CHECKSUM, "page hash table entry %llu differs from its base's, "
                            "but the archive does not carry page %llu", (unsigned long long)p,
                            (unsigned long long)p);
        }
    }
    return 0;
}

int
edb_backup_verify(edb_backup_info *out, const edb_backup_source *src, size_t n,
                  edb_backup_problem_fn fn, void *ctx)
{
    int ret = 0;
    edb__link *links = NULL;
    edb__arch_hash *prev_table = NULL;
    edb__archive a;
    memset(&a, 0, sizeof a);
    edb__room room = { NULL, 0 };
    bool from_full = false;
    edb_backup_info info;
    memset(&info, 0, sizeof info);
    edb__err_clear();
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (src == NULL || n == 0)
        return edb__err(EDB_INVAL, "verify: no archive given");
    links = edb__sys_calloc(n, sizeof *links);
    if (links == NULL)
        return edb__err(EDB_NOMEM, "verify: %zu archives", n);

    struct vctx v = { fn, ctx, 0, NULL, links, 0, "", 0 };
    edb__reader_cbs cbs = { on_header, NULL, on_bad_page, &v, NULL, NULL, false };
    for (size_t i = 0; i < n; i++) {
        int fd;
        bool owned;
        v.idx = i;
        v.name = links[i].name;
        v.nbad = 0;
        v.first[0] = '\0';
        ret = edb__source_open(&src[i], &fd, &owned, links[i].name, sizeof links[i].name);
        if (ret < 0) {
            name_archive(ret, i, links[i].name);
            report(&v, ret, NULL);
            goto err;
        }
        cbs.key = src[i].key;
        /* The table serves the chain checks only: the next archive's, and
         * this one's against its base (edb__chain_table_check). */
        cbs.drop_table = n == 1;
        ret = edb__reader_read(&a, fd, &cbs);
        if (owned)
            edb__sys_close(fd);
        if (ret == 0 && i > 0 && prev_table != NULL)
            ret = edb__chain_table_check(&a, prev_table, &a.where);
        if (ret == 0 && i == 0)
            from_full = !(a.header.flags & EDB__ARCH_F_INCREMENTAL);
        if (ret == 0 && from_full) {
            ret = edb__chain_room(&room, &a, i, links[i].name);   /* as restore does */
            if (ret < 0)
                a.where = (edb__where){ -1, -1, -1 };
        }
        if (ret < 0) {
            name_archive(ret, i, links[i].name);
            /* A problem after damaged pages is reported too, but the result
             * is the first problem in archive order, as restore's is (it
             * stops at the first damaged page): same code, same detail. */
            if (v.nbad == 0 || strcmp(edb_error_last(), v.first) != 0)
                report(&v, ret, &a.where);
            if (v.nbad > 0) {
                const char *d = v.first + v.first_msg;
                ret = edb__err(EDB_CHECKSUM, "%s", d);
            }
            goto err;
        }
        memcpy(links[i].backup_id, a.header.backup_id, 16);
        links[i].archive_hash = a.end.archive_hash;
        links[i].npages = a.trailer.npages;
        links[i].page_size = a.header.page_size;
        if (i == 0)
            info.unchecked = a.unchecked;
        info.archives = i + 1;
        info.page_size = a.header.page_size;
        info.npages = a.trailer.npages;
        info.txnid = a.trailer.txnid;
        info.frames += a.trailer.frames;
        info.pages += a.trailer.pages;
        info.bytes += a.length;
        info.created_us = a.header.created_us;
        info.flags = a.header.flags;
        memcpy(info.backup_id, a.header.backup_id, 16);
        free(prev_table);
        prev_table = a.table;
        a.table = NULL;
        edb__archive_free(&a);
    }
    if (out != NULL)
        *out = info;
err:
    edb__archive_free(&a);
    free(prev_table);
    free(links);
    free(room.ever);
    return ret;
}

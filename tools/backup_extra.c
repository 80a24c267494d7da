/*
 * backup_extra.c: what dbtool backup does besides writing the archive:
 * --overwrite's refusal message, --manifest (also for an archive written to
 * standard output: the bytes are teed to the manifest writer), and --json.
 *
 * The tee (archive to standard output with --manifest): the library writes
 * the archive into a pipe from one thread (edb_backup_write_fd), a second
 * thread builds the manifest from another pipe (edb_backup_manifest_write on
 * a descriptor), and the calling thread copies every byte to standard output
 * first and to the manifest pipe second.  The manifest writer renames its
 * file into place only after it has read a complete, valid archive, which
 * reached standard output before it reached the manifest pipe; any failure or
 * stop closes the pipes early, so the manifest writer sees a cut archive and
 * leaves no manifest.  SIGPIPE is blocked by the caller (cmd_backup.c) in
 * every thread, so a closed pipe is an EPIPE error, never a signal.
 *
 * Thread safety: the three threads share only the pipes and their own result
 * fields, read after pthread_join.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifecycle.h"

int
dbt_backup_precheck(const char *what, const char *archive, const char *manifest, bool overwrite)
{
    struct stat st;
    if (archive != NULL && strcmp(archive, "-") != 0 && lstat(archive, &st) == 0 && !overwrite)
        return dbt_failf(what, EDB_EXISTS, "'%s' exists; --overwrite replaces it (the old archive "
                         "stays until the new one is complete)", archive);
    if (manifest != NULL && lstat(manifest, &st) == 0 && !overwrite)
        return dbt_failf(what, EDB_EXISTS, "manifest '%s' exists; --overwrite replaces it", manifest);
    if (manifest != NULL && archive != NULL && strcmp(archive, manifest) == 0)
        return dbt_failf(what, EDB_INVAL, "the manifest and the archive are the same file '%s'",
                         archive);
    return DBT_OK;
}

/* ---- the tee ---- */

typedef struct tee_writer {
    edb_backup *bk;
    int fd;
    edb_backup_progress_fn progress;
    void *ctx;
    int rc;
    char err[600];
} tee_writer;

static void *
writer_main(void *arg)
{
    tee_writer *w = arg;
    w->rc = edb_backup_write_fd(w->bk, w->fd, w->progress, w->ctx);
    if (w->rc < 0)
        snprintf(w->err, sizeof w->err, "%s", edb_error_last());
    close(w->fd);          /* the end of the archive for the copy loop */
    return NULL;
}

typedef struct tee_manifest {
    int fd;
    const char *path;
    unsigned flags;
    int rc;
    char err[600];
} tee_manifest;

static void *
manifest_main(void *arg)
{
    tee_manifest *m = arg;
    edb_backup_source src = { .path = NULL, .fd = m->fd, .name = "the archive on standard output" };
    m->rc = edb_backup_manifest_write(&src, m->path, m->flags);
    if (m->rc < 0)
        snprintf(m->err, sizeof m->err, "%s", edb_error_last());
    close(m->fd);          /* a writer still copying gets EPIPE, not a hang */
    return NULL;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int
dbt_backup_tee(edb_backup *bk, int out_fd, const char *manifest, bool overwrite,
               edb_backup_progress_fn progress, void *ctx, char *err, size_t errcap)
{
    int p1[2], p2[2];
    if (pipe2(p1, O_CLOEXEC) != 0)
        return snprintf(err, errcap, "EDB_IO: pipe: %s", strerror(errno)), EDB_IO;
    if (pipe2(p2, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "EDB_IO: pipe: %s", strerror(errno));
        close(p1[0]), close(p1[1]);
        return EDB_IO;
    }
    tee_writer w = { .bk = bk, .fd = p1[1], .progress = progress, .ctx = ctx };
    tee_manifest m = { .fd = p2[0], .path = manifest, .flags = overwrite ? EDB_SAVE_OVERWRITE : 0 };
    pthread_t tw, tm;
    if (pthread_create(&tw, NULL, writer_main, &w) != 0) {
        snprintf(err, errcap, "EDB_IO: starting the archive writer thread");
        close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
        return EDB_IO;
    }
    bool have_tm = pthread_create(&tm, NULL, manifest_main, &m) == 0;
    if (!have_tm)
        close(p2[0]);
    char *buf = malloc(1 << 20);
    int out_errno = 0;
    bool to_manifest = have_tm;
    for (;;) {
        if (buf == NULL) {
            out_errno = ENOMEM;
            break;
        }
        ssize_t n = read(p1[0], buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (write_all(out_fd, buf, (size_t)n) != 0) {
            out_errno = errno ? errno : EIO;
            break;
        }
        if (to_manifest && write_all(p2[1], buf, (size_t)n) != 0)
            to_manifest = false;   /* the manifest writer gave up; it reports why */
    }
    free(buf);
    close(p1[0]);        /* a writer still writing gets EPIPE and stops */
    close(p2[1]);        /* the manifest writer sees the end (cut short after a failure) */
    pthread_join(tw, NULL);
    if (have_tm)
        pthread_join(tm, NULL);
    if (w.rc < 0) {
        snprintf(err, errcap, "%s", w.err);
        return w.rc;
    }
    if (out_errno != 0) {
        snprintf(err, errcap, "EDB_IO: writing standard output: %s", strerror(out_errno));
        return EDB_IO;
    }
    if (!have_tm) {
        snprintf(err, errcap, "EDB_IO: starting the manifest thread");
        return EDB_IO;
    }
    if (m.rc < 0) {
        snprintf(err, errcap, "%s", m.err);
        return m.rc;
    }
    return 0;
}

/* ---- after a backup to a file ---- */

int
dbt_backup_report(const char *what, const char *db, const char *archive, const char *manifest,
                  bool overwrite, bool json, double pin_s)
{
    bool to_stdout = strcmp(archive, "-") == 0;
    if (manifest != NULL && !to_stdout) {
        edb_backup_source src = { .path = archive, .fd = -1, .name = NULL };
        int rc = edb_backup_manifest_write(&src, manifest, overwrite ? EDB_SAVE_OVERWRITE : 0);
        if (rc < 0)
            return dbt_fail(what, rc);
    }
    if (!json)
        return DBT_OK;
    edb_backup_summary s;
    edb_backup_source src = { .path = archive, .fd = -1, .name = NULL };
    int rc = edb_backup_describe(&s, &src);
    if (rc < 0)
        return dbt_fail(what, rc);
    jv_buf b = { 0 };
    char tmp[64];
    int e = jv_buf_adds(&b, "{\"database\":");
    e = e ? e : jv_write_json_string(&b, db, strlen(db));
    e = e ? e : jv_buf_adds(&b, ",\"file\":");
    e = e ? e : jv_write_json_string(&b, archive, strlen(archive));
    e = e ? e : jv_buf_adds(&b, ",");
    e = e ? e : dbt_summary_members(&b, &s);
    e = e ? e : jv_buf_adds(&b, ",\"manifest_file\":");
    e = e ? e : manifest ? jv_write_json_string(&b, manifest, strlen(manifest)) : jv_buf_adds(&b, "null");
    snprintf(tmp, sizeof tmp, ",\"pin_s\":%.6f}\n", pin_s);
    e = e ? e : jv_buf_adds(&b, tmp);
    if (e == 0)
        fwrite(b.p, 1, b.len, stdout);
    jv_buf_free(&b);
    if (e != 0)
        return dbt_failf(what, EDB_NOMEM, "out of memory");
    return fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

/* ---- restore --json ---- */

int
dbt_restore_json(const char *target, const edb_backup_info *info)
{
    jv_buf b = { 0 };
    char tmp[512], id[33];
    dbt_hex16(id, info->backup_id);
    int e = jv_buf_adds(&b, "{\"database\":");
    e = e ? e : jv_write_json_string(&b, target, strlen(target));
    snprintf(tmp, sizeof tmp, ",\"id\":\"%s\",\"txn\":%llu,\"page_size\":%u,\"npages\":%llu,"
             "\"bytes\":%llu,\"archives\":%zu,\"archive_bytes\":%llu}\n", id,
             (unsigned long long)info->txnid, info->page_size, (unsigned long long)info->npages,
             (unsigned long long)info->npages * info->page_size, info->archives,
             (unsigned long long)info->bytes);
    e = e ? e : jv_buf_adds(&b, tmp);
    if (e == 0)
        fwrite(b.p, 1, b.len, stdout);
    jv_buf_free(&b);
    if (e != 0)
        return dbt_failf("restore", EDB_NOMEM, "out of memory");
    return fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

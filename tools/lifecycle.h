/*
 * lifecycle.h: what dbtool's archive lifecycle commands share (cmd_info.c:
 * info, and the JSON and text descriptions of an archive used by backup,
 * verify and restore).
 *
 * Thread safety: none needed (dbtool's commands run on its main thread).
 */
#ifndef DBTOOL_LIFECYCLE_H
#define DBTOOL_LIFECYCLE_H

#include <stdbool.h>

#include "dbtool.h"
#include "edb_backup.h"

int dbt_cmd_info(int argc, char **argv);      /* cmd_info.c */
/* verify over chains grouped by ids; one chain goes to dbt_cmd_verify(). */
int dbt_cmd_verify_chains(int argc, char **argv);   /* cmd_verify.c */
int dbt_cmd_merge(int argc, char **argv);     /* cmd_merge.c */
/* cmd_repo.c: backup and restore with --repo go there, the rest to cmd_backup.c. */
int dbt_cmd_backup_any(int argc, char **argv);
int dbt_cmd_restore_any(int argc, char **argv);
int dbt_cmd_repo(int argc, char **argv);
/* info and verify that also take s3://BUCKET/PREFIX/NAME objects (downloaded first). */
int dbt_cmd_info_any(int argc, char **argv);
int dbt_cmd_verify_any(int argc, char **argv);

/* "full", "incremental", then ",low-pin" and ",keep-free" as they apply. */
void dbt_kind(char *out, size_t cap, unsigned flags);
/* Append the members of an archive's summary (no braces): "id", "base_id",
 * "kind", "txn", "created", "page_size", "npages", "pages", "bytes",
 * "complete", "compression", and "manifest" / "problem" when they apply.
 * Returns 0 or EDB_NOMEM. */
int dbt_summary_members(jv_buf *out, const edb_backup_summary *s);
/* backup_extra.c: dbtool backup's --overwrite, --manifest and --json. */
/* Refuse an existing ARCHIVE or MANIFEST without --overwrite (the message
 * names the option).  Prints the failure; DBT_OK or DBT_FAIL. */
int dbt_backup_precheck(const char *what, const char *archive, const char *manifest, bool overwrite);
/* Write the archive of @bk to @out_fd and its manifest to @manifest at once
 * (see backup_extra.c).  Returns 0 or an EDB code with the message in @err. */
int dbt_backup_tee(edb_backup *bk, int out_fd, const char *manifest, bool overwrite,
                   edb_backup_progress_fn progress, void *ctx, char *err, size_t errcap);
/* After a backup to a file: write its manifest, print the --json object. */
int dbt_backup_report(const char *what, const char *db, const char *archive, const char *manifest,
                      bool overwrite, bool json, double pin_s);
/* restore --json: one object for the restored database. */
int dbt_restore_json(const char *target, const edb_backup_info *info);

/* Lower-case hex of a 16-byte id into out[33]. */
void dbt_hex16(char out[33], const uint8_t id[16]);

#endif

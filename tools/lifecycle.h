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

/* "full", "incremental", then ",low-pin" and ",keep-free" as they apply. */
void dbt_kind(char *out, size_t cap, unsigned flags);
/* Append the members of an archive's summary (no braces): "id", "base_id",
 * "kind", "txn", "created", "page_size", "npages", "pages", "bytes",
 * "complete", "compression", and "manifest" / "problem" when they apply.
 * Returns 0 or EDB_NOMEM. */
int dbt_summary_members(jv_buf *out, const edb_backup_summary *s);
/* Lower-case hex of a 16-byte id into out[33]. */
void dbt_hex16(char out[33], const uint8_t id[16]);

#endif

/*
 * repo.h: the backup repository of dbtool (repo.c: catalog, lock, chains;
 * cmd_repo.c: backup --repo, repo list/prune/merge, restore --repo).  The
 * layout and the crash-safety argument are at the top of repo.c.
 *
 * Thread safety: none needed (dbtool's main thread only).
 */
#ifndef DBTOOL_REPO_H
#define DBTOOL_REPO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lifecycle.h"
#include "store.h"

typedef struct repo_entry {
    char file[256];              /* name inside the repository directory */
    edb_backup_summary s;        /* as 'dbtool info' describes it */
    uint64_t unchanged_until_us; /* a later backup found no page changed until then; 0: none */
} repo_entry;

typedef struct repo {
    char dir[4096];              /* as given: a directory or s3://BUCKET/PREFIX */
    store *st;                   /* where the objects are (store.h) */
    int lock_fd;                 /* -1: not locked */
    uint64_t next;               /* number of the next archive file */
    repo_entry *a;               /* in the order taken (merged chains at their last place) */
    size_t n, cap;
    char key_id[33];             /* created with --encrypt-key: its key id (hex); "" when not */
} repo;

/* Open DIR or s3://BUCKET/PREFIX (a directory is created when @create),
 * take the lock when @lock (a directory only: EDB_BUSY when another dbtool
 * holds it; a bucket has no lock, one writer at a time is the operator's
 * promise), load the catalog and, when @lock, remove what an interrupted run
 * left.  @so: the --s3-* options (NULL: defaults).  Prints failures; DBT_OK
 * or DBT_FAIL. */
int repo_open(repo *r, const char *dir, bool create, bool lock, const store_opts *so);
void repo_close(repo *r);
int repo_load(repo *r);
/* Write the catalog atomically (temporary file, fsync, rename, directory fsync). */
int repo_save(repo *r);
int repo_append(repo *r, const repo_entry *e);
void repo_clean(repo *r);
/* Index of the entry entry @i builds on: -1 for a full archive, -2 when its
 * base is not listed. */
int repo_base_of(const repo *r, size_t i);
size_t repo_chain_root(const repo *r, size_t i);
/* The chain from its full archive to entry @i, into @idx (r->n entries);
 * returns its length. */
size_t repo_chain_to(const repo *r, size_t i, size_t *idx);
/* The path of an entry's file (directory repositories only). */
void repo_path(const repo *r, const repo_entry *e, char *out, size_t cap);
/* The name of the manifest object written beside archive @file in a bucket. */
void repo_manifest_name(char *out, size_t cap, const char *file);
/* Remove an entry's objects (archive, and manifest in a bucket); prints nothing. */
void repo_remove_files(repo *r, const char *file);
/* file + the 'dbtool info' members (what repo list --json prints). */
json_t *repo_entry_json(const repo_entry *e);

#endif

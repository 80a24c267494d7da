/*
 * collate.h: collated TEXT index keys (collate.c): ICU collators named by a
 * BCP 47 locale string, cached per env, and the key segment they make.
 */
#ifndef EDB_COLLATE_H
#define EDB_COLLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edb.h"

struct edb_env;

/* Longest collation string a column may carry (bytes, without the NUL). */
#define EDB__COLL_MAX 64

/* One cached collator; opaque outside collate.c. */
typedef struct edb__coll edb__coll;
/* The per-env cache (edb__catalog's coll field). */
typedef struct edb__collcache edb__collcache;

/* Is @name a collation string that means plain byte order (NULL, "" or
 * "binary")? */
bool edb__coll_is_binary(const char *name);

/* Check collation string @name for column @col of table @table: NULL,
 * "binary", or a BCP 47 locale tag ICU parses whole and has a collator for
 * ("en-u-ks-level2", "und-u-ks-level1").  EDB_INVAL with a message naming
 * the table, the column and what was wrong. */
int edb__coll_check(const char *name, const char *table, const char *col);

/* Why ICU could not be loaded ("ICU could not be loaded: " and dlerror()'s
 * text, which names the library), or NULL when it is loaded.
 * Loads it if no collation was used yet (collate.c loads it once, on first
 * use).  For the messages of a column whose collator is missing. */
const char *edb__coll_unavailable(void);

int edb__collcache_new(edb__collcache **out);
void edb__collcache_free(edb__collcache *cc);

/* The env's collator for @name (opened at the first use, kept until the env
 * closes).  EDB_INVAL when ICU cannot open it, EDB_NOMEM. */
int edb__coll_get(const edb__coll **out, struct edb_env *env, const char *name);

/* The collator's version (ucol_getVersion), 4 bytes. */
void edb__coll_version(const edb__coll *c, uint8_t out[4]);
/* The version ICU gives collation string @name now (check.c, dbtool):
 * 0 or EDB_INVAL. */
int edb__coll_version_of(struct edb_env *env, const char *name, uint8_t out[4]);

/* Append the key segment of TEXT value @data (UTF-8, @size bytes; NULL =
 * NULL) under collator @c (NULL: plain byte order, then it is
 * edb__key_append of @type) to buf[0..*len), capacity @cap, in segment mode
 * @mode (key.h).  A collated segment is the ICU sort key (which holds no
 * 0x00 byte) encoded as a BINARY payload, so it keeps every property of
 * doc/key-encoding.md.  EDB_TOOBIG when it does not fit (never truncated),
 * EDB_INVAL for text that is not UTF-8. */
int edb__key_append_coll(uint8_t *buf, size_t cap, size_t *len, edb_coltype type,
                         const edb__coll *c, const void *data, size_t size, unsigned mode);

#endif

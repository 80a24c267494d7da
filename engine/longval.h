/*
 * longval.h: long values stored in chunks (longval.c documents the bytes).
 *
 * A single-valued TEXT or BINARY value over EDB__LV_INLINE_MAX bytes is not
 * kept in its record: the record holds a 20-byte reference (record.c,
 * version 2) and the bytes live in chunks of EDB__LV_CHUNK bytes under a
 * key range of edb.records that no table uses (prefix 0).  A read maps only
 * the chunks it needs; an update rewrites only the chunks it changed.
 *
 * Thread safety: as the cursor's session (the chunk read counter is atomic).
 */
#ifndef EDB_LONGVAL_H
#define EDB_LONGVAL_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "record.h"

/* Bytes per chunk: with LMDB's 16-byte page header, 8 pages of 4 KiB. */
#define EDB__LV_CHUNK 32752u
/* Longest value kept inline in its record; longer ones go to chunks. */
#define EDB__LV_INLINE_MAX EDB__LV_CHUNK
/* The catalog counter (kid, colid) that hands out a table's long-value ids
 * (colid (edb_colid)-1 is taken by the counters' table identity mark). */
#define EDB__LV_COUNTER ((edb_colid)0xFFFFFFFEu)

/* The reference a record holds (20 bytes, little-endian):
 * | offset | size | meaning |
 * | 0 | 8 | id: the table's long-value id (its counter, never reused) |
 * | 8 | 8 | size of the value in bytes |
 * | 16 | 4 | generation: changes with every update of the value, so that
 *             edb_update's no-lost-update compare sees an in-place change |
 */
typedef struct edb__lvref { uint64_t id, size; uint32_t gen; } edb__lvref;
void edb__lvref_get(edb__lvref *out, const uint8_t *p);

/* Chunk reads since the process started (tests: a read of 4 KiB from the
 * middle of a 64 MB value reads one or two chunks). */
extern _Atomic uint64_t edb__lv_chunk_reads;
/* Chunk puts since the process started (an update rewrites only the chunks
 * it touched). */
extern _Atomic uint64_t edb__lv_chunk_writes;

/* The pending changes of one column in a prepared update (longval.c). */
typedef struct edb__lvw edb__lvw;
/* Forget every pending change of the cursor's prepared update. */
void edb__lvw_free_all(edb__lvw **list);
/* Forget the pending changes of column @col (a whole value replaces them). */
void edb__lvw_drop(edb__lvw **list, edb_colid col);
/* Does @col have pending changes?  *size: the value's size then. */
bool edb__lvw_size(edb__lvw *list, edb_colid col, uint64_t *size);

/* Set column @col of the prepared record to a whole value of @size bytes
 * (over EDB__LV_INLINE_MAX): kept as chunk copies until edb_update. */
int edb__lv_set(edb_cursor *c, edb_colid col, const void *data, size_t size);

/* edb_update, plan phase: turn the pending changes into the prepared
 * record's columns (inline bytes, or a reference with its id).  Reads only;
 * may be repeated after a failed update. */
int edb__lv_plan(edb_cursor *c, MDB_txn *txn, edb__rec *rec);
/* edb_update, apply phase, after the record was written: the changed
 * chunks, and the chunks of every reference of @old (NULL for an insert)
 * that @rec no longer holds. */
int edb__lv_apply(edb_cursor *c, MDB_txn *txn, const edb__rec *old, const edb__rec *rec);
/* Delete the chunks of every reference in @old (a record being deleted). */
int edb__lv_free_record(MDB_txn *txn, const edb__table *t, const edb__rec *old);
/* A dropped column's long value (edb_column_drop is lazy: the record keeps
 * the reference, which edb__rec_decode no longer shows) is freed with the
 * record's next write.  edb__lv_dropped, before the write, appends the
 * references the dropped columns of stored record @raw hold to @out (each
 * EDB__LVREF_SIZE bytes; nothing, and no allocation, for a table without a
 * dropped TEXT or BINARY column); edb__lv_free_dropped, after it, deletes
 * their chunks, but not those of a reference the new record @rec (NULL: the
 * record was deleted) still holds (an update prepared before the drop). */
int edb__lv_dropped(edb__buf *out, const edb__table *t, const void *raw, size_t len);
int edb__lv_free_dropped(MDB_txn *txn, const edb__table *t, const edb__buf *refs,
                         const edb__rec *rec);
/* Delete every chunk of table @t (a drop). */
int edb__lv_drop_table(MDB_txn *txn, const edb__table *t);

/* Read bytes [offset, offset + size) of column @col's value, whose view is
 * @v (a reference, or pending changes of the prepared update), into @buf;
 * *total = the whole value's size.  @txn: the entered transaction, or NULL
 * (one is entered for the read). */
int edb__lv_read(edb_cursor *c, MDB_txn *txn, edb_colid col, const edb__colview *v,
                 uint64_t offset, void *buf, size_t size, uint64_t *total);

/* Every chunk of the database against every reference (dbtool check):
 * @fn is called per problem (orphan chunk, missing or wrong-size chunk);
 * *refs and *chunks count what was seen. */
typedef void (*edb__lv_problem_fn)(void *ctx, const char *msg);
int edb__lv_check(edb_session *s, edb__lv_problem_fn fn, void *ctx, uint64_t *refs, uint64_t *chunks);
/* The number of chunks stored under table @kid (0: every table). */
int edb__lv_count(uint64_t *out, edb_session *s, uint32_t kid);

#endif

/*
 * collate.c: collated TEXT index keys, from ICU (libicu; no Unicode table of
 * edb's own).
 *
 * A TEXT column may name a collation: NULL or "binary" is plain UTF-8 byte
 * order (key.c); any other string is a BCP 47 locale tag with ICU's
 * collation keywords, "en-u-ks-level2" (case-insensitive),
 * "und-u-ks-level1" (also accent-insensitive), "de-u-co-phonebk", ...  The
 * tag is turned into an ICU locale id (uloc_forLanguageTag, which must
 * consume the whole tag) and opened with ucol_open, which applies the -u-
 * keywords (strength, case level, numeric ordering...).  A tag ICU does not
 * parse whole, a keyword value ICU refuses, or a language for which ICU has
 * no collation data (it would silently fall back to the root order) is
 * EDB_INVAL at create time (edb__coll_check).
 *
 * An index segment on such a column holds the ICU sort key of the value
 * (ucol_getSortKey) instead of its bytes: memcmp order of sort keys is the
 * collation's order and equal sort keys mean equal under the collation, so
 * a UNIQUE index refuses "B" beside "b" under level 2, and a seek key made
 * by edb_key_make goes through the same function.  The stored value is not
 * changed.  A sort key holds no 0x00 byte except its terminator, which is
 * dropped; the rest is written as a BINARY payload (escape-free, so the
 * terminator 0x00 0x00 keeps the prefix and self-delimiting properties of
 * doc/key-encoding.md, and a descending segment inverts it as any other).
 * Sort keys are longer than the text (about 2-3 bytes a character at level
 * 3): a key that does not fit is EDB_TOOBIG, never truncated.
 *
 * Sort keys change when ICU's collation data change: the index records the
 * version of each collator it was built with (catalog.c), check reports a
 * mismatch and `dbtool reindex` rebuilds the index.
 *
 * ICU is not linked: libicuuc and libicui18n are loaded with dlopen the first
 * time a collation is used (checked at create time, opened for a table that
 * has a collated column, or a key made under one), once per process
 * (pthread_once), and kept until the process ends.  A program, or a database,
 * that never names a collation never maps ICU.  The sonames are those of the
 * ICU whose headers edb was built with ("libicuuc.so." U_ICU_VERSION_SHORT),
 * and the entry points are looked up by ICU's renamed names (the headers make
 * ucol_open "ucol_open_72"), so a different ICU is never called through
 * these declarations.  When ICU cannot be loaded every collated operation is
 * EDB_INVAL with a message naming the library and dlerror()'s text; plain
 * (binary) keys are unaffected.
 *
 * Thread safety: the cache (one per env) is guarded by its mutex `lock`, a
 * leaf lock; an entry, once made, lives until the env closes, so pointers to
 * it stay valid without the lock.  ICU does not promise that one UCollator
 * can serve several threads at once, so each entry has its own mutex `use`
 * (also a leaf lock, never held with `lock`) around every call that takes the
 * collator: calls on one collation are serialized, calls on different
 * collations and plain keys run in parallel.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucol.h>
#include <unicode/uloc.h>
#include <unicode/ustring.h>

#include "catalog.h"
#include "collate.h"
#include "error.h"
#include "key.h"

/* ---- ICU, loaded on first use ---- */

/* Every ICU function collate.c calls, with the library that exports it.  The
 * header macros rename each (ucol_open is ucol_open_72), so a member of the
 * table below has the renamed name too, its type is the declaration's own
 * (__typeof__: nothing to keep in step by hand) and STR() gives the renamed
 * symbol for dlsym. */
#define ICU_FUNCS(X) \
    X(I18N, ucol_open) \
    X(I18N, ucol_close) \
    X(I18N, ucol_getLocaleByType) \
    X(I18N, ucol_getVersion) \
    X(I18N, ucol_getSortKey) \
    X(UC, uloc_forLanguageTag) \
    X(UC, uloc_getLanguage) \
    X(UC, u_errorName) \
    X(UC, u_strFromUTF8)

#define STR_(x) #x
#define STR(x) STR_(x)
#define ICU_UC_SONAME "libicuuc.so." U_ICU_VERSION_SHORT
#define ICU_I18N_SONAME "libicui18n.so." U_ICU_VERSION_SHORT

/* Written once by icu_load (under icu_once), read-only after: every reader
 * calls icu_need() first, whose pthread_once orders the writes before it. */
static struct {
#define ICU_FIELD(lib, fn) __typeof__(fn) *fn;
    ICU_FUNCS(ICU_FIELD)
#undef ICU_FIELD
} icu;
static pthread_once_t icu_once = PTHREAD_ONCE_INIT;
static bool icu_loaded;
static char icu_error[512];     /* "ICU could not be loaded: <dlerror>", when !icu_loaded */

static void
icu_load(void)
{
    void *lib[2] = { NULL, NULL };
    const char *soname[2] = { ICU_UC_SONAME, ICU_I18N_SONAME };
    enum { UC, I18N };
    for (int i = 0; i < 2; i++)
        if ((lib[i] = dlopen(soname[i], RTLD_NOW | RTLD_LOCAL)) == NULL) {
            const char *e = dlerror();
            snprintf(icu_error, sizeof icu_error, "ICU could not be loaded: %s", e ? e : soname[i]);
            goto fail;
        }
    void *p;
#define ICU_SYM(l, fn) \
    if ((p = dlsym(lib[l], STR(fn))) == NULL) { \
        const char *e = dlerror(); \
        snprintf(icu_error, sizeof icu_error, "ICU could not be loaded: %s has no %s: %s", \
                 soname[l], STR(fn), e ? e : "?"); \
        goto fail; \
    } \
    icu.fn = (__typeof__(icu.fn))p;
    ICU_FUNCS(ICU_SYM)
#undef ICU_SYM
    icu_loaded = true;
    return;
fail:
    memset(&icu, 0, sizeof icu);
    for (int i = 0; i < 2; i++)
        if (lib[i] != NULL)
            dlclose(lib[i]);
}

/* Load ICU if this is the first use; 0, or EDB_INVAL saying it could not be. */
static int
icu_need(void)
{
    pthread_once(&icu_once, icu_load);
    if (icu_loaded)
        return 0;
    return edb__err(EDB_INVAL, "collations need ICU (" ICU_I18N_SONAME ", " ICU_UC_SONAME "): %s",
                    icu_error);
}

const char *
edb__coll_unavailable(void)
{
    pthread_once(&icu_once, icu_load);
    return icu_loaded ? NULL : icu_error;
}

/* ---- the collators ---- */

struct edb__coll {
    char name[EDB__COLL_MAX + 1];
    UCollator *ucol;
    pthread_mutex_t use;            /* serializes calls on ucol */
    uint8_t version[4];             /* ucol_getVersion, fixed once opened */
    struct edb__coll *next;
};

struct edb__collcache {
    pthread_mutex_t lock;           /* guards head */
    struct edb__coll *head;
};

bool
edb__coll_is_binary(const char *name)
{
    return name == NULL || name[0] == '\0' || strcmp(name, "binary") == 0;
}

/* Open collation @name with ICU.  Returns 0 and the collator, or EDB_INVAL
 * with a message that says what ICU refused. */
static int
open_ucol(UCollator **out, const char *name)
{
    *out = NULL;
    size_t n = strlen(name);
    if (n > EDB__COLL_MAX)
        return edb__err(EDB_INVAL, "collation '%.*s...' is over %d bytes", 32, name, EDB__COLL_MAX);
    EDB_RET(icu_need());
    char loc[ULOC_FULLNAME_CAPACITY + 64];
    int32_t parsed = 0;
    UErrorCode st = U_ZERO_ERROR;
    int32_t ln = icu.uloc_forLanguageTag(name, loc, (int32_t)sizeof loc, &parsed, &st);
    if (U_FAILURE(st) || ln <= 0 || ln >= (int32_t)sizeof loc || (size_t)parsed != n)
        return edb__err(EDB_INVAL, "collation '%s' is not a BCP 47 locale tag (such as "
                        "\"en-u-ks-level2\"); ICU stopped at byte %d%s%s", name, (int)parsed,
                        U_FAILURE(st) ? ": " : "", U_FAILURE(st) ? icu.u_errorName(st) : "");
    char lang[ULOC_LANG_CAPACITY];
    st = U_ZERO_ERROR;
    icu.uloc_getLanguage(loc, lang, (int32_t)sizeof lang, &st);
    bool root = U_FAILURE(st) || lang[0] == '\0' || strcmp(lang, "und") == 0 || strcmp(lang, "root") == 0;
    st = U_ZERO_ERROR;
    UCollator *u = icu.ucol_open(loc, &st);
    if (U_FAILURE(st) || u == NULL) {
        if (u != NULL)
            icu.ucol_close(u);
        return edb__err(EDB_INVAL, "collation '%s' (ICU locale '%s'): ICU refuses it: %s", name, loc,
                        icu.u_errorName(st));
    }
    /* ICU falls back to the root order for a language it has no data for;
     * its valid locale then is the root (languages whose order is the root's,
     * such as "en", keep their own name there) */
    UErrorCode vs = U_ZERO_ERROR;
    const char *valid = icu.ucol_getLocaleByType(u, ULOC_VALID_LOCALE, &vs);
    bool fell_back = U_SUCCESS(vs) && valid != NULL &&
                     (valid[0] == '\0' || strcmp(valid, "root") == 0);
    if (fell_back && !root) {
        icu.ucol_close(u);
        return edb__err(EDB_INVAL, "collation '%s': ICU has no collation for language '%s' (use "
                        "\"und\" for the root order)", name, lang);
    }
    *out = u;
    return 0;
}

int
edb__coll_check(const char *name, const char *table, const char *col)
{
    if (edb__coll_is_binary(name))
        return 0;
    UCollator *u;
    int rc = open_ucol(&u, name);
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", edb_error_last_message());
        return edb__err(EDB_INVAL, "table '%s': column '%s': %s", table, col, msg);
    }
    icu.ucol_close(u);
    return 0;
}

int
edb__collcache_new(edb__collcache **out)
{
    *out = NULL;
    edb__collcache *cc = calloc(1, sizeof *cc);
    if (cc == NULL)
        return edb__err(EDB_NOMEM, "collation cache");
    pthread_mutex_init(&cc->lock, NULL);
    *out = cc;
    return 0;
}

void
edb__collcache_free(edb__collcache *cc)
{
    if (cc == NULL)
        return;
    if (cc->head != NULL)
        pthread_once(&icu_once, icu_load);  /* loaded: orders icu's writes */
    for (edb__coll *c = cc->head, *next; c != NULL; c = next) {
        next = c->next;
        icu.ucol_close(c->ucol);
        pthread_mutex_destroy(&c->use);
        free(c);
    }
    pthread_mutex_destroy(&cc->lock);
    free(cc);
}

int
edb__coll_get(const edb__coll **out, edb_env *env, const char *name)
{
    *out = NULL;
    edb__collcache *cc = edb__cat(env)->coll;
    pthread_mutex_lock(&cc->lock);
    for (edb__coll *c = cc->head; c != NULL; c = c->next)
        if (strcmp(c->name, name) == 0) {
            pthread_mutex_unlock(&cc->lock);
            *out = c;
            return 0;
        }
    pthread_mutex_unlock(&cc->lock);
    /* open outside the lock (ICU loads data); a racing opener of the same
     * name is resolved below, the loser's collator closed */
    UCollator *u;
    EDB_RET(open_ucol(&u, name));
    edb__coll *c = calloc(1, sizeof *c);
    if (c == NULL) {
        icu.ucol_close(u);
        return edb__err(EDB_NOMEM, "collation '%s'", name);
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    c->ucol = u;
    pthread_mutex_init(&c->use, NULL);
    UVersionInfo v;
    icu.ucol_getVersion(u, v);
    memcpy(c->version, v, 4);
    pthread_mutex_lock(&cc->lock);
    for (edb__coll *o = cc->head; o != NULL; o = o->next)
        if (strcmp(o->name, name) == 0) {
            pthread_mutex_unlock(&cc->lock);
            icu.ucol_close(c->ucol);
            pthread_mutex_destroy(&c->use);
            free(c);
            *out = o;
            return 0;
        }
    c->next = cc->head;
    cc->head = c;
    pthread_mutex_unlock(&cc->lock);
    *out = c;
    return 0;
}

void
edb__coll_version(const edb__coll *c, uint8_t out[4])
{
    memcpy(out, c->version, 4);
}

int
edb__coll_version_of(edb_env *env, const char *name, uint8_t out[4])
{
    const edb__coll *c;
    EDB_RET(edb__coll_get(&c, env, name));
    edb__coll_version(c, out);
    return 0;
}

int
edb__key_append_coll(uint8_t *buf, size_t cap, size_t *len, edb_coltype type,
                     const edb__coll *c, const void *data, size_t size, unsigned mode)
{
    if (c == NULL || data == NULL || type != EDB_COL_TEXT)
        return edb__key_append(buf, cap, len, type, data, size, mode);
    EDB_RET(icu_need());            /* loaded, since c exists: orders icu's writes */
    /* validate as key.c does (strict UTF-8, no NUL) */
    size_t bad = edb__key_utf8_bad(data, size);
    if (bad != size)
        return edb__err(EDB_INVAL, "key segment: text is not valid UTF-8 without NUL "
                        "(byte 0x%02x at offset %zu)", ((const uint8_t *)data)[bad], bad);
    int rc;
    if (size > INT32_MAX / 2)
        return edb__err(EDB_TOOBIG, "key segment: collated text of %zu bytes", size);
    UChar stack[256], *u16 = stack;
    int32_t ucap = (int32_t)(sizeof stack / sizeof stack[0]), ulen = 0;
    if (size > (size_t)ucap) {
        ucap = (int32_t)size;       /* UTF-16 never has more units than UTF-8 has bytes */
        if ((u16 = malloc((size_t)ucap * sizeof *u16)) == NULL)
            return edb__err(EDB_NOMEM, "collated key");
    }
    UErrorCode st = U_ZERO_ERROR;
    icu.u_strFromUTF8(u16, ucap, &ulen, data, (int32_t)size, &st);
    if (U_FAILURE(st)) {
        if (u16 != stack)
            free(u16);
        return edb__err(EDB_INVAL, "key segment: text is not UTF-8 (%s)", icu.u_errorName(st));
    }
    /* the sort key must fit in what is left, less the prefix byte and the
     * 2-byte terminator; ICU writes its own 0x00 terminator after it */
    uint8_t sk[EDB_MAX_KEY_SIZE + 8];
    edb__coll *m = (edb__coll *)c;
    pthread_mutex_lock(&m->use);
    int32_t n = icu.ucol_getSortKey(m->ucol, u16, ulen, sk, (int32_t)sizeof sk);
    pthread_mutex_unlock(&m->use);
    if (u16 != stack)
        free(u16);
    if (n <= 0)
        return edb__err(EDB_INVAL, "key segment: ICU made no sort key");
    if ((size_t)n > sizeof sk)
        return edb__err(EDB_TOOBIG, "key segment: the sort key of %zu bytes of text under "
                        "collation '%s' is %d bytes, over the key limit", size, c->name, (int)n);
    size_t sklen = (size_t)n - 1;   /* without ICU's terminator */
    size_t before = *len;
    rc = edb__key_append(buf, cap, len, EDB_COL_BINARY, sk, sklen, mode);
    if (rc == EDB_TOOBIG)
        return edb__err(EDB_TOOBIG, "key segment: the sort key of %zu bytes of text under "
                        "collation '%s' is %zu bytes, %zu left in the key", size, c->name, sklen,
                        cap - before);
    return rc;
}

/* test_nocurl.c: dbtool's S3 store on a machine without libcurl.  libcurl is
 * loaded with dlopen when an s3:// repository is first opened
 * (tools/store_s3.c); when it cannot be loaded, opening the repository is
 * EDB_INVAL with a message that names the library and the loader's reason,
 * and directory repositories keep working.  This binary links the store's
 * code itself and defines dlopen, which takes the place of libc's for it
 * (as test_lazyicu.c does for ICU): no preload library, so the test also
 * runs in the sanitizer builds. */
#include "config.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool_run.h"
#include "edb.h"
#include "dbtool.h"
#include "store.h"

/* tools/util.c's usage messages look commands up in dbtool.c's table, which
 * this binary does not link (it has no main of dbtool's): no command here. */
const dbt_cmd *
dbt_find_cmd(const char *name)
{
    (void)name;
    return NULL;
}

/* dlopen of libcurl goes to a path that does not exist, so that dlerror()
 * has the loader's own message, as on a system without the library. */
static unsigned curl_refused;

void *
dlopen(const char *file, int mode)
{
    void *(*next)(const char *, int);
    *(void **)&next = dlsym(RTLD_NEXT, "dlopen");
    if (file != NULL && strncmp(file, "libcurl", 7) == 0) {
        char gone[300];
        snprintf(gone, sizeof gone, "/nonexistent-edb-test/%s", file);
        curl_refused++;
        return next(gone, mode);
    }
    return next(file, mode);
}

Test(nocurl, s3_repository_names_the_missing_library, .timeout = 60)
{
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    store_opts o = { .endpoint = "http://127.0.0.1:9", .region = "us-east-1", .path_style = true };
    char err[600] = "";
    store *s = NULL;
    int rc = store_open(&s, "s3://bkt/prefix", &o, true, err, sizeof err);
    cr_assert_eq(rc, EDB_INVAL, "store_open: %d (%s)", rc, err);
    cr_assert_eq(curl_refused, 1u, "libcurl was not asked for (%u dlopen calls)", curl_refused);
    cr_assert(strstr(err, "S3 repositories need libcurl: ") != NULL, "%s", err);
    cr_assert(strstr(err, "libcurl.so.4") != NULL, "the message does not name the library: %s", err);
    cr_assert(strstr(err, "wJalrX") == NULL && strstr(err, "AKIDEXAMPLE") == NULL, "%s", err);
    store_close(s);
    /* Asked again: the same answer, without a second attempt to load it. */
    s = NULL;
    err[0] = '\0';
    rc = store_open(&s, "s3://bkt/other", &o, true, err, sizeof err);
    cr_assert_eq(rc, EDB_INVAL, "%s", err);
    cr_assert(strstr(err, "libcurl.so.4") != NULL, "%s", err);
    cr_assert_eq(curl_refused, 1u);
    store_close(s);

    /* A directory repository does not need libcurl. */
    char *dir = tmpdir_new();
    char repo[400];
    snprintf(repo, sizeof repo, "%s/repo", dir);
    s = NULL;
    rc = store_open(&s, repo, &o, true, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(store_put(s, "x.json", "{}", 2, err, sizeof err), 0, "%s", err);
    char *got = NULL;
    size_t len = 0;
    cr_assert_eq(store_get_mem(s, "x.json", &got, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 2u);
    cr_assert_eq(memcmp(got, "{}", 2), 0);
    free(got);
    store_close(s);
    rm_tree(dir);
    free(dir);
}

/* tshim.c: the registry and runner behind tshim.h (see there for why and what).
 *
 * main() forks one process per selected test, arms alarm() with the test's
 * timeout (its own, else its suite's, times EDB_TEST_SLOW), runs the suite's
 * and the test's init, the body, then the fini functions, and reads the exit
 * status: 0 passed, 77 skipped, anything else (or a signal) failed.
 * A failed assertion on the test's thread longjmps back here so the fini
 * functions still run (they remove the test's directory); on another thread it
 * exits at once.  Theories call the body once per combination of data points
 * with libffi; a failed cr_assume skips the combination.
 *
 * Thread safety: the registry is filled by constructors before main; the
 * failure path may be entered from any thread of a test process.
 */
#include "config.h"

#include <ffi.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tshim.h"

#define SKIP_STATUS 77

static struct tshim_test *head, **tail = &head;
static struct tshim_suite *suites;

/* the running test (child process only) */
static pthread_t test_thread;
static jmp_buf test_jmp;
static bool in_body;
/* the running theory's combination, for the failure message and cr_assume */
static struct tshim_datapoints *th_dps;
static size_t th_n, *th_idx;
static jmp_buf th_jmp;
static bool in_theory;

void
tshim_register(struct tshim_test *t)
{
    *tail = t;
    tail = &t->next;
}

void
tshim_register_suite(struct tshim_suite *s)
{
    s->next = suites;
    suites = s;
}

static const struct tshim_params *
suite_params(const char *name)
{
    for (struct tshim_suite *s = suites; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0)
            return &s->p;
    return NULL;
}

static bool
on_test_thread(void)
{
    return in_body && pthread_equal(pthread_self(), test_thread);
}

static void
print_value(const struct tshim_datapoints *d, size_t i)
{
    const char *p = (const char *)d->arr + i * d->size;
    if (strchr(d->type, '*') != NULL) {
        void *v;
        memcpy(&v, p, sizeof v);
        if (strstr(d->type, "char") != NULL && v != NULL)
            fprintf(stderr, "\"%s\"", (const char *)v);
        else
            fprintf(stderr, "%p", v);
    } else if (strcmp(d->type, "double") == 0) {
        double v;
        memcpy(&v, p, sizeof v);
        fprintf(stderr, "%a (%g)", v, v);
    } else if (strcmp(d->type, "float") == 0) {
        float v;
        memcpy(&v, p, sizeof v);
        fprintf(stderr, "%a (%g)", (double)v, (double)v);
    } else {
        fprintf(stderr, "0x");
        for (size_t k = d->size; k-- > 0;)      /* little-endian: print most significant first */
            fprintf(stderr, "%02x", (unsigned char)p[k]);
    }
}

void
tshim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "[----] %s:%d: Assertion failed: %s\n", file, line, expr);
    if (fmt[0] != '\0') {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "[----]   ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    if (in_theory) {
        fprintf(stderr, "[----]   Theory failed with parameters: (");
        for (size_t i = 0; i < th_n; i++) {
            fprintf(stderr, "%s%s ", i ? ", " : "", th_dps[i].type);
            print_value(&th_dps[i], th_idx[i]);
        }
        fprintf(stderr, ")\n");
    }
    fflush(stderr);
    if (on_test_thread())
        longjmp(test_jmp, 1);
    exit(1);                     /* exit, not _exit: let TSan and valgrind finalize and report */
}

void
tshim_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[SKIP] ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    if (on_test_thread())
        longjmp(test_jmp, 2);
    exit(SKIP_STATUS);
}

void
tshim_theory_abort(void)
{
    if (!in_theory || !pthread_equal(pthread_self(), test_thread)) {
        fprintf(stderr, "[----] cr_assume outside a theory's own thread\n");
        exit(1);
    }
    longjmp(th_jmp, 1);
}

/* The libffi type of a data point, from its type as written (like Criterion). */
static ffi_type *
ffi_of(const struct tshim_datapoints *d)
{
    const char *t = d->type;
    if (strchr(t, '*') != NULL)
        return &ffi_type_pointer;
    if (strcmp(t, "double") == 0)
        return &ffi_type_double;
    if (strcmp(t, "float") == 0)
        return &ffi_type_float;
    if (strcmp(t, "long double") == 0)
        return &ffi_type_longdouble;
    if (strstr(t, "struct") != NULL || strstr(t, "union") != NULL)
        return NULL;
    bool is_unsigned = t[0] == 'u' || strstr(t, "unsigned") != NULL || strcmp(t, "size_t") == 0 ||
                       strcmp(t, "bool") == 0 || strcmp(t, "_Bool") == 0;
    switch (d->size) {
    case 1: return is_unsigned ? &ffi_type_uint8 : &ffi_type_sint8;
    case 2: return is_unsigned ? &ffi_type_uint16 : &ffi_type_sint16;
    case 4: return is_unsigned ? &ffi_type_uint32 : &ffi_type_sint32;
    case 8: return is_unsigned ? &ffi_type_uint64 : &ffi_type_sint64;
    default: return NULL;
    }
}

void
tshim_theory_main(struct tshim_datapoints *dps, size_t n, void (*fn)(void))
{
    ffi_type **types = calloc(n ? n : 1, sizeof *types);
    void **args = calloc(n ? n : 1, sizeof *args);
    size_t *idx = calloc(n ? n : 1, sizeof *idx);
    if (types == NULL || args == NULL || idx == NULL)
        tshim_fail(__FILE__, __LINE__, "calloc", "theory: out of memory");
    for (size_t i = 0; i < n; i++) {
        types[i] = ffi_of(&dps[i]);
        if (types[i] == NULL)
            tshim_fail(__FILE__, __LINE__, "ffi_of", "theory: data point type '%s' not supported",
                       dps[i].type);
        if (dps[i].len == 0)
            tshim_fail(__FILE__, __LINE__, "len", "theory: no data points for parameter %zu", i);
    }
    ffi_cif cif;
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)n, &ffi_type_void, types) != FFI_OK)
        tshim_fail(__FILE__, __LINE__, "ffi_prep_cif", "theory: cannot describe the call");
    th_dps = dps;
    th_n = n;
    th_idx = idx;
    volatile unsigned long runs = 0, assumed_away = 0;
    for (;;) {
        for (size_t i = 0; i < n; i++)
            args[i] = (char *)dps[i].arr + idx[i] * dps[i].size;
        in_theory = true;
        if (setjmp(th_jmp) == 0) {
            ffi_call(&cif, FFI_FN(fn), NULL, args);
            runs++;
        } else {
            assumed_away++;
        }
        in_theory = false;
        /* next combination, the last parameter fastest */
        size_t i = n;
        while (i > 0 && ++idx[i - 1] == dps[i - 1].len)
            idx[--i] = 0;
        if (i == 0)
            break;
    }
    if (runs == 0)
        tshim_fail(__FILE__, __LINE__, "runs > 0", "theory: every combination was assumed away "
                   "(%lu)", assumed_away);
    free(types);
    free(args);
    free(idx);
}

#if defined(__SANITIZE_THREAD__)
static void *
nothing(void *arg)
{
    return arg;
}
#endif

static int
run_child(const struct tshim_test *t, const struct tshim_params *sp, unsigned timeout)
{
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer starts a background thread of its own at the first
     * pthread_create of a process (a forked child included), and it stays.
     * Start it now, so the tests that count their process's threads
     * (/proc/self/task) before and after a backup see only their own. */
    pthread_t th;
    if (pthread_create(&th, NULL, nothing, NULL) == 0)
        pthread_join(th, NULL);
#endif
    if (timeout > 0)
        alarm(timeout);
    test_thread = pthread_self();
    volatile int status = 0;
    int j = setjmp(test_jmp);
    if (j == 0) {
        in_body = true;
        if (sp != NULL && sp->init != NULL)
            sp->init();
        if (t->p.init != NULL)
            t->p.init();
        t->fn();
    } else {
        status = j == 2 ? SKIP_STATUS : 1;
    }
    in_body = false;
    /* fini after a failed assertion too (like Criterion); an assertion
     * failing in a fini now exits at once */
    if (t->p.fini != NULL)
        t->p.fini();
    if (sp != NULL && sp->fini != NULL)
        sp->fini();
    return status;
}

int
main(int argc, char **argv)
{
    unsigned tested = 0, passed = 0, failed = 0, crashed = 0, skipped = 0;
    /* EDB_TEST_SLOW multiplies every .timeout (valgrind runs 20-100x slower). */
    const char *slow = getenv("EDB_TEST_SLOW");
    unsigned factor = slow != NULL && atoi(slow) > 0 ? (unsigned)atoi(slow) : 1;
    for (struct tshim_test *t = head; t != NULL; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (argc > 1 && strstr(full, argv[1]) == NULL)
            continue;
        const struct tshim_params *sp = suite_params(t->suite);
        int timeout = t->p.timeout > 0 ? t->p.timeout : sp != NULL ? sp->timeout : 0;
        tested++;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            exit(run_child(t, sp, timeout > 0 ? (unsigned)timeout * factor : 0));
        int st;
        while (waitpid(pid, &st, 0) < 0) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            passed++;
            fprintf(stderr, "[PASS] %s\n", full);
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_STATUS) {
            skipped++;
            fprintf(stderr, "[SKIP] %s\n", full);
        } else if (WIFSIGNALED(st)) {
            crashed++;
            failed++;
            fprintf(stderr, "[FAIL] %s: %s\n", full,
                    WTERMSIG(st) == SIGALRM ? "Timed out" : strsignal(WTERMSIG(st)));
        } else {
            failed++;
            fprintf(stderr, "[FAIL] %s: exit status %d%s\n", full, WEXITSTATUS(st),
                    WEXITSTATUS(st) == 66 ? " (ThreadSanitizer report)" : "");
        }
    }
    fprintf(stderr, "[====] Synthesis: Tested: %u | Skipped: %u | Passing: %u | Failing: %u | "
            "Crashing: %u \n", tested, skipped, passed, failed, crashed);
    if (tested == 0) {
        fprintf(stderr, "[====] no test selected\n");
        return 1;
    }
    return failed ? 1 : 0;
}

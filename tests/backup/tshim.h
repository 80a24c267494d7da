/* tshim.h: a minimal stand-in for the part of Criterion the backup suites use,
 * for the ThreadSanitizer build only.
 *
 * Why: Criterion cannot start under ThreadSanitizer (its inheritable arena
 * needs address space that TSan reserves; Criterion issue #274: "Could not
 * initialize inheritable arena").  The suites are written against Criterion;
 * with EDB_TEST_SHIM defined they include this header instead and get the same
 * Test(suite, name, .timeout = N) and cr_assert* macros, run by a small
 * runner: each test in its own forked process (like Criterion), killed by
 * alarm() after its timeout, one at a time.  A test fails on a failed
 * assertion (exit 1), a signal, a timeout, or a ThreadSanitizer report (TSan
 * makes the process exit with 66).
 *
 * Usage: ./tests/bin/NAME [substring]   (runs the tests whose "suite/name" contains it)
 * EDB_TEST_SLOW=N multiplies every timeout by N.
 */
#ifndef EDB_TSHIM_H
#define EDB_TSHIM_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct tshim_params {
    int timeout;                 /* seconds; 0: none */
    const char *description;
    void (*init)(void);          /* run before the test, in its process */
    void (*fini)(void);          /* run after it passed */
};

struct tshim_test {
    const char *suite, *name;
    void (*fn)(void);
    struct tshim_params p;
    struct tshim_test *next;
};

static struct tshim_test *tshim_head, **tshim_tail = &tshim_head;

static inline void
tshim_register(struct tshim_test *t)
{
    *tshim_tail = t;
    tshim_tail = &t->next;
}

#define Test(suite, name, ...)                                                       \
    static void suite##_##name##_fn(void);                                            \
    static struct tshim_test suite##_##name##_t = { #suite, #name, suite##_##name##_fn, \
                                                    { __VA_ARGS__ }, NULL };           \
    __attribute__((constructor)) static void suite##_##name##_reg(void)               \
    {                                                                                  \
        tshim_register(&suite##_##name##_t);                                           \
    }                                                                                  \
    static void suite##_##name##_fn(void)

/* No format attribute: an assertion without a message passes "" (zero-length format). */
__attribute__((noreturn)) static void
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
    fflush(stderr);
    exit(1);                     /* exit, not _exit: let TSan finalize and report */
}

#define tshim_check(cond, expr, ...) \
    do { if (!(cond)) tshim_fail(__FILE__, __LINE__, expr, "" __VA_ARGS__); } while (0)
#define cr_assert(c, ...) tshim_check((c), #c, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) tshim_check((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) tshim_check((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) tshim_check((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) tshim_check((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) tshim_check((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) tshim_check((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) tshim_check((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) tshim_check((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) tshim_check(strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) tshim_check(strcmp((a), (b)) != 0, #a " neq " #b, __VA_ARGS__)
#define cr_assert_not(c, ...) tshim_check(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) tshim_check(0, "cr_assert_fail", __VA_ARGS__)
#define cr_log_info(...) do { fprintf(stderr, "[LOG ] " __VA_ARGS__); fprintf(stderr, "\n"); } while (0)
#define cr_log_warn(...) do { fprintf(stderr, "[WARN] " __VA_ARGS__); fprintf(stderr, "\n"); } while (0)
#define cr_log_error(...) do { fprintf(stderr, "[ERR ] " __VA_ARGS__); fprintf(stderr, "\n"); } while (0)

int
main(int argc, char **argv)
{
    unsigned tested = 0, passed = 0, failed = 0, crashed = 0;
    /* EDB_TEST_SLOW multiplies every .timeout (valgrind runs 20-100x slower). */
    const char *slow = getenv("EDB_TEST_SLOW");
    unsigned factor = slow != NULL && atoi(slow) > 0 ? (unsigned)atoi(slow) : 1;
    for (struct tshim_test *t = tshim_head; t != NULL; t = t->next) {
        char full[256];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (argc > 1 && strstr(full, argv[1]) == NULL)
            continue;
        tested++;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            if (t->p.timeout > 0)
                alarm((unsigned)t->p.timeout * factor);
            if (t->p.init != NULL)
                t->p.init();
            t->fn();
            if (t->p.fini != NULL)
                t->p.fini();
            exit(0);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            passed++;
            fprintf(stderr, "[PASS] %s\n", full);
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
    fprintf(stderr, "[====] Synthesis: Tested: %u | Passing: %u | Failing: %u | Crashing: %u \n",
            tested, passed, failed, crashed);
    return failed ? 1 : 0;
}

#endif

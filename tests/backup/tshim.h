/* tshim.h: a stand-in for the part of Criterion the edb suites use, for the
 * builds where Criterion cannot run: ThreadSanitizer (its inheritable arena
 * needs address space that TSan reserves; Criterion issue #274: "Could not
 * initialize inheritable arena") and the valgrind runs (tests/valgrind.sh).
 *
 * The suites are written against Criterion.  In those builds the include path
 * starts with tests/shim/, whose criterion/criterion.h and criterion/theories.h
 * include this header instead, and tests/backup/tshim.c (linked into every
 * suite) holds the registry and the runner (main).  What is supported, with
 * Criterion's meaning:
 * - Test(suite, name, .init, .fini, .timeout, .description);
 * - TestSuite(suite, .init, .fini, .timeout): defaults for the suite's tests
 *   (a test's own .timeout wins; the suite's init runs before the test's, the
 *   test's fini before the suite's);
 * - Theory((params), suite, name, ...) with TheoryDataPoints/DataPoints: the
 *   body runs once per combination of the data points (their cartesian
 *   product), called through libffi like Criterion does; cr_assume* skips a
 *   combination;
 * - cr_assert* (what the suites use), cr_skip_test, cr_log_*.
 * Each test runs in its own forked process, one at a time, killed by alarm()
 * after its timeout.  A failed assertion on the test's own thread jumps back to
 * the runner, which runs the fini functions (so the test's directory is
 * removed, as under Criterion) and exits 1; on any other thread it exits 1 at
 * once.  A test fails on a failed assertion, a signal, a timeout, or a
 * ThreadSanitizer report (TSan makes the process exit with 66); valgrind's
 * --error-exitcode is reported the same way.
 *
 * Usage: ./tests/bin/NAME [substring]   (runs the tests whose "suite/name" contains it)
 * EDB_TEST_SLOW=N multiplies every timeout by N.
 */
#ifndef EDB_TSHIM_H
#define EDB_TSHIM_H
/* Like Criterion's header (a system header), so cr_assert_eq(a, b) on an enum and
 * an int compiles under -Wsign-compare exactly as it does with Criterion. */
#pragma GCC system_header

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tshim_params {
    int timeout;                 /* seconds; 0: the suite's, else none */
    const char *description;
    void (*init)(void);          /* run before the test, in its process */
    void (*fini)(void);          /* run after it, also after a failed assertion */
};

struct tshim_datapoints {
    size_t size;                 /* sizeof the type */
    size_t len;                  /* number of values */
    const char *type;            /* the type as written: "int8_t", "const char *" */
    void *arr;
};

struct tshim_test {
    const char *suite, *name;
    void (*fn)(void);
    struct tshim_params p;
    struct tshim_test *next;
};

struct tshim_suite {
    const char *name;
    struct tshim_params p;
    struct tshim_suite *next;
};

void tshim_register(struct tshim_test *t);
void tshim_register_suite(struct tshim_suite *s);
void tshim_theory_main(struct tshim_datapoints *dps, size_t n, void (*fn)(void));
__attribute__((noreturn)) void tshim_fail(const char *file, int line, const char *expr,
                                          const char *fmt, ...);
__attribute__((noreturn)) void tshim_skip(const char *fmt, ...);
__attribute__((noreturn)) void tshim_theory_abort(void);

#define TSHIM_DEFINE_TEST_(suite, name, fn, ...)                                       \
    static void fn(void);                                                             \
    static struct tshim_test suite##_##name##_t = { #suite, #name, fn,                \
                                                    { __VA_ARGS__ }, NULL };           \
    __attribute__((constructor)) static void suite##_##name##_reg(void)               \
    {                                                                                  \
        tshim_register(&suite##_##name##_t);                                           \
    }

#define Test(suite, name, ...)                                                       \
    TSHIM_DEFINE_TEST_(suite, name, suite##_##name##_fn, __VA_ARGS__)                 \
    static void suite##_##name##_fn(void)

#define TestSuite(suite, ...)                                                        \
    static struct tshim_suite suite##_suite_s = { #suite, { __VA_ARGS__ }, NULL };    \
    __attribute__((constructor)) static void suite##_suite_reg(void)                  \
    {                                                                                  \
        tshim_register_suite(&suite##_suite_s);                                        \
    }

/* Theories: the data points are an array named after the test; the test body
 * becomes a function with the theory's parameters, called by tshim_theory_main
 * once per combination (through libffi, the types read from DataPoints). */
#define TheoryDataPoints(suite, name) static struct tshim_datapoints suite##_##name##_dps[]
#define DataPoints(Type, ...)                                                        \
    { sizeof(Type), sizeof((Type[]){ __VA_ARGS__ }) / sizeof(Type), #Type,             \
      (Type[]){ __VA_ARGS__ } }
#define Theory(Params, suite, name, ...)                                             \
    static void suite##_##name##_theory Params;                                       \
    TSHIM_DEFINE_TEST_(suite, name, suite##_##name##_fn, __VA_ARGS__)                 \
    static void suite##_##name##_fn(void)                                             \
    {                                                                                  \
        tshim_theory_main(suite##_##name##_dps,                                        \
                          sizeof suite##_##name##_dps / sizeof suite##_##name##_dps[0], \
                          (void (*)(void))suite##_##name##_theory);                    \
    }                                                                                  \
    static void suite##_##name##_theory Params

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
#define cr_skip_test(...) tshim_skip("" __VA_ARGS__)
#define cr_assume(c) do { if (!(c)) tshim_theory_abort(); } while (0)
#define cr_assume_not(c) cr_assume(!(c))
#define cr_assume_eq(a, b) cr_assume((a) == (b))
#define cr_assume_neq(a, b) cr_assume((a) != (b))
#define cr_assume_lt(a, b) cr_assume((a) < (b))
#define cr_assume_leq(a, b) cr_assume((a) <= (b))
#define cr_assume_gt(a, b) cr_assume((a) > (b))
#define cr_assume_geq(a, b) cr_assume((a) >= (b))
#define cr_assume_str_eq(a, b) cr_assume(strcmp((a), (b)) == 0)
#define cr_assume_str_neq(a, b) cr_assume(strcmp((a), (b)) != 0)
#define cr_log_info(...) do { fprintf(stderr, "[LOG ] " __VA_ARGS__); fprintf(stderr, "\n"); } while (0)
#define cr_log_warn(...) do { fprintf(stderr, "[WARN] " __VA_ARGS__); fprintf(stderr, "\n"); } while (0)
#define cr_log_error(...) do { fprintf(stderr, "[ERR ] " __VA_ARGS__); fprintf(stderr, "\n"); } while (0)

#endif

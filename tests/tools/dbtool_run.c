/* Spawning the built dbtool from tests (see dbtool_run.h).  stdin, stdout and
 * stderr go through temporary files, so no pipe can fill up and deadlock. */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <errno.h>
#include <ftw.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbtool_run.h"

static char *
slurp(int fd, size_t *len)
{
    struct stat sb;
    fstat(fd, &sb);
    char *p = malloc((size_t)sb.st_size + 1);
    cr_assert_not_null(p);
    ssize_t n = pread(fd, p, (size_t)sb.st_size, 0);
    cr_assert_eq(n, sb.st_size);
    p[n] = '\0';
    if (len)
        *len = (size_t)n;
    return p;
}

static int
tmpfile_fd(void)
{
    char name[] = "/tmp/edb-run-XXXXXX";
    int fd = mkstemp(name);
    cr_assert_geq(fd, 0);
    unlink(name);
    return fd;
}

run_result
dbt_run(const char *in, const char *const *argv)
{
    const char *top = getenv("top_builddir");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    int fin = tmpfile_fd(), fout = tmpfile_fd(), ferr = tmpfile_fd();
    if (in) {
        size_t n = strlen(in);
        cr_assert_eq(write(fin, in, n), (ssize_t)n);
        lseek(fin, 0, SEEK_SET);
    }
    size_t argc = 0;
    while (argv[argc])
        argc++;
    const char **av = calloc(argc + 2, sizeof *av);
    av[0] = "dbtool";
    memcpy(av + 1, argv, argc * sizeof *av);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fin, 0);
        dup2(fout, 1);
        dup2(ferr, 2);
        execv(bin, (char *const *)av);
        _exit(127);
    }
    free(av);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    run_result r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = slurp(fout, &r.out_len);
    r.err = slurp(ferr, NULL);
    close(fin);
    close(fout);
    close(ferr);
    cr_assert_neq(r.status, 127, "cannot run %s", bin);
    return r;
}

run_result
dbt_run_tty(const char *const *argv)
{
    const char *top = getenv("top_builddir");
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/dbtool", top ? top : ".");
    int master, slave;
    cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    int ferr = tmpfile_fd();
    size_t argc = 0;
    while (argv[argc])
        argc++;
    const char **av = calloc(argc + 2, sizeof *av);
    av[0] = "dbtool";
    memcpy(av + 1, argv, argc * sizeof *av);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(slave, 1);
        dup2(ferr, 2);
        close(master);
        execv(bin, (char *const *)av);
        _exit(127);
    }
    free(av);
    close(slave);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    for (;;) {
        if (cap - len < 1024)
            out = realloc(out, cap *= 2);
        ssize_t n = read(master, out + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)       /* EIO once the child has closed the terminal */
            break;
        size_t keep = len;
        for (size_t i = 0; i < (size_t)n; i++)
            if (out[len + i] != '\r')
                out[keep++] = out[len + i];
        len = keep;
    }
    out[len] = '\0';
    close(master);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    run_result r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = out;
    r.out_len = len;
    r.err = slurp(ferr, NULL);
    close(ferr);
    return r;
}

run_result
dbt_runv(const char *in, ...)
{
    const char *argv[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, in);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 63)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return dbt_run(in, argv);
}

void
run_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

char *
tmpdir_new(void)
{
    char *d = strdup("/tmp/edb-dbtool-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

char *
dbt_make_db(char *path, size_t cap, const char *schema, const char *table, const char *rows)
{
    char *dir = tmpdir_new();
    snprintf(path, cap, "%s/db", dir);
    run_result r = dbt_runv(NULL, "create", path, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = dbt_runv(schema, "create-table", path, "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    r = dbt_runv(rows, "import", path, table, "-", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    return dir;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void
rm_tree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

size_t
count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Criterion's parallel runner leaks a small block now and then: not ours.
 * LeakSanitizer calls this hook in sanitizer builds; elsewhere it is unused. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

void
dbt_expect_ok(const run_result *r, const char *what)
{
    cr_assert_eq(r->status, 0, "%s: exit %d: %s%s", what, r->status, r->err, r->out);
}

char *
dbt_rows_json(unsigned first, unsigned rows, unsigned width)
{
    char *in = malloc((size_t)rows * (width + 40) + 1), *q = in;
    cr_assert_not_null(in);
    for (unsigned i = first; i < first + rows; i++)
        q += sprintf(q, "{\"v\": \"row %u %0*u\"}\n", i, (int)width, i * 7919u);
    *q = '\0';
    return in;
}

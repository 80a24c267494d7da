/*
 * bench_mapread: how a backup's copier should read data.mdb (issue #12).
 *
 *   bench_mapread FILE [REPS]
 *
 * Reads and hashes every 4 KiB page of FILE (XXH3-128 with the page number as
 * seed, as the copier does), which should be in the page cache (run it twice),
 * in each of these ways, interleaved REPS times (default 5):
 *
 *   map          mmap(PROT_READ, MAP_SHARED), hash the pages in place
 *   map-seq      the same after madvise(MADV_SEQUENTIAL)
 *   map-willneed the same after madvise(MADV_WILLNEED)
 *   map-populate mmap with MAP_POPULATE (page tables filled by mmap)
 *   pread-1m     pread 1 MiB at a time into a 4 KiB-aligned buffer, hash there
 *   pread-256k   the same with 256 KiB
 *
 * and prints, per way, the medians of wall time, CPU time (the process's
 * clock) and minor faults (getrusage).  CPU time and faults are the steady
 * figures on a shared machine.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define PAGE 4096u

static double
clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static uint64_t
hash_pages(const uint8_t *p, size_t n, uint64_t pgno)
{
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        XXH128_hash_t h = XXH3_128bits_withSeed(p + (size_t)i * PAGE, PAGE, pgno + i);
        acc ^= h.low64 ^ h.high64;
    }
    return acc;
}

enum { MAP, MAP_SEQ, MAP_WILLNEED, MAP_POP, PREAD_1M, PREAD_256K, NWAYS };
static const char *names[NWAYS] = { "map", "map-seq", "map-willneed", "map-populate", "pread-1m", "pread-256k" };

static uint64_t
run(int way, int fd, size_t len)
{
    size_t npages = len / PAGE;
    if (way >= PREAD_1M) {
        size_t chunk = way == PREAD_1M ? (1u << 20) : (256u << 10);
        uint8_t *buf = aligned_alloc(PAGE, chunk);
        if (buf == NULL)
            exit(1);
        uint64_t acc = 0;
        for (size_t off = 0; off < npages * PAGE; off += chunk) {
            size_t want = npages * PAGE - off < chunk ? npages * PAGE - off : chunk;
            ssize_t got = pread(fd, buf, want, (off_t)off);
            if (got != (ssize_t)want) {
                perror("pread");
                exit(1);
            }
            acc ^= hash_pages(buf, want / PAGE, off / PAGE);
        }
        free(buf);
        return acc;
    }
    int flags = MAP_SHARED | (way == MAP_POP ? MAP_POPULATE : 0);
    uint8_t *m = mmap(NULL, len, PROT_READ, flags, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    if (way == MAP_SEQ)
        madvise(m, len, MADV_SEQUENTIAL);
    else if (way == MAP_WILLNEED)
        madvise(m, len, MADV_WILLNEED);
    uint64_t acc = hash_pages(m, npages, 0);
    munmap(m, len);
    return acc;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_mapread FILE [REPS]\n");
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 100)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    size_t len = (size_t)st.st_size / PAGE * PAGE;
    double (*wall)[NWAYS] = calloc((size_t)reps, sizeof *wall), (*cpu)[NWAYS] = calloc((size_t)reps, sizeof *cpu);
    double (*flt)[NWAYS] = calloc((size_t)reps, sizeof *flt);
    uint64_t want = run(PREAD_1M, fd, len);     /* warms the cache; every way must agree */
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < NWAYS; k++) {
            int way = (k + r) % NWAYS;          /* rotate the order */
            long f0 = minflt();
            double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            uint64_t got = run(way, fd, len);
            cpu[r][way] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            wall[r][way] = clock_s(CLOCK_MONOTONIC) - w0;
            flt[r][way] = (double)(minflt() - f0);
            if (got != want) {
                fprintf(stderr, "bench_mapread: %s hashed differently\n", names[way]);
                return 1;
            }
        }
    }
    printf("| way (%.0f MiB, median of %d) | wall ms | CPU ms | minor faults |\n|---|---:|---:|---:|\n",
           (double)len / 1048576.0, reps);
    for (int k = 0; k < NWAYS; k++) {
        double w[100], c[100], f[100];
        for (int r = 0; r < reps; r++) {
            w[r] = wall[r][k];
            c[r] = cpu[r][k];
            f[r] = flt[r][k];
        }
        qsort(w, (size_t)reps, sizeof *w, cmp);
        qsort(c, (size_t)reps, sizeof *c, cmp);
        qsort(f, (size_t)reps, sizeof *f, cmp);
        printf("| %s | %.1f | %.1f | %.0f |\n", names[k], w[reps / 2] * 1e3, c[reps / 2] * 1e3, f[reps / 2]);
    }
    free(wall);
    free(cpu);
    free(flt);
    close(fd);
    return 0;
}

/*
 * cmd_keygen.c: `dbtool keygen FILE` and the `--encrypt-key FILE` option of
 * every archive command.
 *
 * A key file holds exactly 32 random bytes (libsodium's randombytes), mode
 * 0600 from its creation (O_EXCL: an existing file is never overwritten, a
 * symlink never followed), fsynced with its directory.  `--encrypt-key FILE`
 * is taken out of the arguments by main() before the command runs, so every
 * command that reads or writes archives accepts it the same way; the key
 * stays in dbt_key for the process (a `backup --repo` child inherits it).
 * Keys never appear in output or messages: only their id (the id written in
 * an encrypted archive's header) is printed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbtool.h"
#include "edb_backup.h"
#include "lifecycle.h"

static uint8_t key_mem[32];
const uint8_t *dbt_key;

/* The id of @key: the same as edb writes in the header (BLAKE2b-128 keyed
 * with the key over a fixed context). */
void
dbt_key_id_hex(char out[33], const uint8_t key[32])
{
    static const char ctx[] = "edb archive key id v1";
    uint8_t id[16];
    if (sodium_init() < 0)
        return;      /* out stays what it was: callers pass "" */
    crypto_generichash(id, sizeof id, (const unsigned char *)ctx, sizeof ctx - 1, key, 32);
    dbt_hex16(out, id);
}

int
dbt_key_load(const char *path)
{
    int fd = dbt_open_regular(path, "--encrypt-key", false);
    if (fd < 0)
        return DBT_FAIL;
    uint8_t buf[33];
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf && (r = read(fd, buf + n, sizeof buf - (size_t)n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            sodium_memzero(buf, sizeof buf);
            return dbt_failf("--encrypt-key", EDB_IO, "'%s': %s", path, strerror(e));
        }
        n += r;
    }
    close(fd);
    if (n != 32) {
        sodium_memzero(buf, sizeof buf);
        return dbt_failf("--encrypt-key", EDB_INVAL, "'%s' is not a key file (a key is exactly "
                         "32 bytes; make one with 'dbtool keygen FILE')", path);
    }
    memcpy(key_mem, buf, 32);
    sodium_memzero(buf, sizeof buf);
    dbt_key = key_mem;
    return DBT_OK;
}

int
dbt_cmd_keygen(int argc, char **argv)
{
    const char *cmd = "keygen";
    if (argc != 2 || argv[1][0] == '-')
        return dbt_usage(cmd, "expected FILE, the key file to create");
    const char *path = argv[1];
    if (sodium_init() < 0)
        return dbt_failf(cmd, EDB_INTERNAL, "libsodium could not be initialised");
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        sodium_memzero(key, sizeof key);
        if (e == EEXIST)
            return dbt_failf(cmd, EDB_EXISTS, "'%s' exists: a key file is never overwritten (an "
                             "archive made with the old key could not be read again)", path);
        return dbt_failf(cmd, EDB_IO, "'%s': %s", path, strerror(e));
    }
    int ok = fchmod(fd, 0600) == 0 && write(fd, key, sizeof key) == (ssize_t)sizeof key &&
             fsync(fd) == 0;
    int e = errno;
    ok = close(fd) == 0 && ok;
    char id[33];
    dbt_key_id_hex(id, key);
    sodium_memzero(key, sizeof key);
    if (!ok) {
        unlink(path);
        return dbt_failf(cmd, EDB_IO, "writing '%s': %s", path, strerror(e));
    }
    char *dup = strdup(path);
    if (dup != NULL) {
        int dfd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dup);
    }
    printf("key written to %s (mode 0600), key id %s\n", path, id);
    return fflush(stdout) == 0 ? DBT_OK : DBT_FAIL;
}

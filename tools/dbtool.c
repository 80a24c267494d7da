/*
 * dbtool: query, load, export, check, back up and restore an edb database from
 * the shell.  Small main; each family of subcommands lives in its own file.
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edb.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: dbtool COMMAND [ARGS...]\n"
               "       dbtool --help | --version\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dbtool (edb) %s\n", edb_version());
        return EXIT_SUCCESS;
    }
    fprintf(stderr, "dbtool: unknown command '%s' (try 'dbtool --help')\n", argv[1]);
    return 2;
}

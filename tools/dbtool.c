/*
 * dbtool: query, load, export, check, back up and restore an edb database from
 * the shell.  Small main and the command table; each family of subcommands
 * lives in its own file (cmd_schema.c, cmd_data.c, cmd_import.c, cmd_admin.c).
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage error.
 *
 * The help texts below are the man page's (doc/dbtool.1) command descriptions,
 * word for word; change both together.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbtool.h"
#include "lifecycle.h"

static const dbt_cmd commands[] = {
    { "create", dbt_cmd_create, "create DB",
      "Create a new, empty database in the directory DB (created if absent). Fails with EDB_EXISTS\n"
      "when DB already holds a database.\n" },
    { "create-table", dbt_cmd_create_table, "create-table DB SCHEMA.json|-",
      "Create a table from a JSON schema document:\n"
      "  {\"name\": \"t\",\n"
      "   \"columns\": [{\"name\": \"id\", \"type\": \"int64\", \"flags\": [\"autoinc\"]},\n"
      "               {\"name\": \"who\", \"type\": \"text\", \"flags\": [\"notnull\"], \"max_size\": 100},\n"
      "               {\"name\": \"n\", \"type\": \"int32\", \"flags\": [\"escrow\"], \"default\": 0}],\n"
      "   \"indexes\": [{\"name\": \"pk\", \"key\": [\"+id\"], \"flags\": [\"primary\"]},\n"
      "               {\"name\": \"by_who\", \"key\": [\"+who\", \"-id\"], \"flags\": [\"unique\"]}]}\n"
      "Types: bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float, double,\n"
      "datetime, guid, text, binary. Column flags: notnull, autoinc, escrow, multivalued;\n"
      "max_size limits text and binary values (bytes); default is a value as in a row.\n"
      "Index flags: primary, unique, ignore_null (no entry for a row whose key columns are\n"
      "all null), ignore_any_null (no entry for a row with a null key column),\n"
      "sort_nulls_high (null after every value in ascending segments too); each key segment\n"
      "is +column (ascending) or -column (descending). Null sorts before the values in an\n"
      "ascending segment and after them in a descending one, so 'scan --index' on a\n"
      "\"-size\" index lists the largest sizes first. Unknown members are errors. The output\n"
      "of 'dbtool schema' is accepted unchanged.\n"
      "Table, column and index names are 1..64 bytes of [A-Za-z0-9_], not starting with a\n"
      "digit; a name holding a NUL or control byte is refused, never cut. SCHEMA.json must be a\n"
      "regular file or -.\n"
      "A text column may name a \"collation\": \"binary\" (the default: UTF-8 bytes) or a BCP 47\n"
      "locale tag with ICU's keywords, such as \"en-u-ks-level2\" (case-insensitive) or\n"
      "\"und-u-ks-level1\" (case- and accent-insensitive); index keys on it then sort, seek and\n"
      "stay unique under that collation. An index may have a \"condition\": \"col\" (entries only\n"
      "for rows where col is not null) or \"!col\" (only where it is null). The index flag tuples\n"
      "makes a substring index on one text column, with \"tuple_min\" and \"tuple_max\"\n"
      "(characters; default 3 and 10). A multi-valued column in an index key gives one entry per\n"
      "value.\n" },
    { "tables", dbt_cmd_tables, "tables DB [--json]",
      "List the tables with their row counts.\n" },
    { "schema", dbt_cmd_schema, "schema DB TABLE",
      "Print the table's schema as the JSON document create-table reads.\n" },
    { "import", dbt_cmd_import, "import DB TABLE FILE|- [--csv] [--batch N] [--replace|--skip-duplicates]",
      "Insert rows from FILE (- for standard input): JSON lines, one object per row whose\n"
      "members are column names, or with --csv a CSV file (RFC 4180) whose first row names the\n"
      "columns. In CSV an empty unquoted field is NULL, \"\" is empty text and a multi-valued\n"
      "column's cell is a JSON array. Columns not given are NULL or their default. The import\n"
      "is one transaction: a bad row imports nothing, and the message names its line and\n"
      "column. --batch N commits every N rows instead (a failure keeps the committed batches).\n"
      "A value given for an AUTOINC column is kept: it must be 1 or more and, when the column\n"
      "is in the primary or a unique index, unused (EDB_KEYDUP otherwise); the table's counter\n"
      "moves past it, so rows given without one, and later inserts, get larger values. An\n"
      "export therefore imports back with the same ids, gaps included.\n"
      "A row whose primary key is taken fails the import, the message naming the key's values\n"
      "(line 3: duplicate key (\"bash\", \"5.2\") in primary index 'pk'); --replace replaces the\n"
      "existing row in the same transaction, --skip-duplicates keeps it and skips the new one;\n"
      "both print the counts on standard error. A key taken in another unique index still fails.\n"
      "FILE must be a regular file (a FIFO, directory or device is refused: use - and a\n"
      "redirection).\n"
      "Into an empty table from FILE without --batch, the secondary indexes are built after\n"
      "the rows, sorted, in the same transaction: their pages are full. If one refuses a row\n"
      "(a key taken in a unique index, an entry too long), the import runs again with every\n"
      "index in place to name the line; nothing is committed either way until the end.\n" },
    { "export", dbt_cmd_export, "export DB TABLE [--format jsonl|csv] [--index I]",
      "Write every row to standard output as JSON lines (the default) or CSV with a header row,\n"
      "in primary-key order or in the order of index I. The output imports back unchanged.\n" },
    { "get", dbt_cmd_get, "get DB TABLE KEY... [--json]",
      "Print the row whose primary key is KEY (one value per key column). Fails with\n"
      "EDB_NOTFOUND when there is none.\n" },
    { "scan", dbt_cmd_scan, "scan DB TABLE [--index I] [--from V...] [--to V...] [--prefix TEXT] [--columns A,B...] [--limit N] [--reverse] [--json]",
      "Print rows in primary-key order or in the order of index I. --from and --to take one\n"
      "value per leading key column (fewer is a prefix) and are inclusive; --prefix TEXT\n"
      "takes the rows whose leading key column, which must be TEXT, starts with TEXT\n"
      "(bytewise; not with --from or --to); --columns prints only the columns named, in\n"
      "that order; --reverse walks from the end; --limit stops after N rows.\n" },
    { "count", dbt_cmd_count, "count DB TABLE [--index I] [--from V...] [--to V...] [--prefix TEXT] [--json]",
      "Print the number of rows, or of index entries in the range (as scan). Without a\n"
      "range it is the B-tree's own entry count, read at once without reading the rows\n"
      "('dbtool check' reads them all).\n" },
    { "delete", dbt_cmd_delete, "delete DB TABLE KEY...",
      "Delete the row whose primary key is KEY (one value per key column) and its index\n"
      "entries. Fails with EDB_NOTFOUND when there is none.\n" },
    { "stat", dbt_cmd_stat, "stat DB [--json]",
      "Print the page size, map size, pages in use, last transaction, reader slots in use, and\n"
      "per table its row count and, for its records and each index, the exact entry count\n"
      "(kept in the catalog) and the statistics (depth, branch, leaf and overflow pages) of\n"
      "the shared B-tree they live in (edb.records or edb.index).\n" },
    { "check", dbt_cmd_check, "check DB [--json]",
      "Check the whole database in a read snapshot (writers keep going): every B-tree page\n"
      "reachable once or free and none lost, the catalog consistent, every record decodable\n"
      "and valid for its columns, keys in order, every index entry matched by its record and\n"
      "every record by its entries. Each problem is printed on standard output; exit status 1\n"
      "when there is any. The check runs in a child process, so a damaged file that makes the\n"
      "reader crash is reported as EDB_CORRUPT. A data.mdb shorter than the pages its meta page\n"
      "uses is refused when any command opens it (EDB_CORRUPT, with both sizes), check included.\n"
      "An index on a collated column made with another ICU collator version is reported\n"
      "(EDB_VERSION): rebuild it with 'dbtool reindex'.\n" },
    { "reindex", dbt_cmd_reindex, "reindex DB TABLE INDEX",
      "Rebuild the secondary index INDEX of TABLE from its rows in one transaction, with this\n"
      "ICU's collators, and print its entry count. Fails with EDB_KEYDUP, changing nothing, when a\n"
      "unique index's rows collide under the new collation.\n" },
    { "compact", dbt_cmd_compact, "compact DB [OUT_DIR]",
      "With OUT_DIR: write a compacted copy of DB (free pages dropped) into the empty or\n"
      "absent directory OUT_DIR, from a read snapshot. The copy is written as OUT_DIR/.compact-XXXXXX/data.mdb\n"
      "(mode 0600 from its creation), synced and renamed to OUT_DIR/data.mdb: interrupted\n"
      "(Ctrl-C, SIGTERM, SIGHUP: exit status 1), killed or failed (a full disk), compact\n"
      "leaves no data.mdb in OUT_DIR, and the next compact into OUT_DIR removes what a kill\n"
      "left.\n"
      "Without OUT_DIR: rewrite DB in place with full pages. Rows inserted in random key\n"
      "order leave LMDB's pages about two-thirds full (and a copy into OUT_DIR keeps them so);\n"
      "this copies every key and value unchanged, in key order, into a new database\n"
      "DB.compact beside DB (it needs free space for that second copy: about the size of the\n"
      "data DB holds), checks it (entry counts and 'dbtool check'), and exchanges it with DB\n"
      "in one atomic rename; the old files are then removed. Prints the pages and data.mdb's\n"
      "size before and after. No other program may have DB open: compact checks (LMDB's lock)\n"
      "and refuses with the program's pid, before it starts and again right before the\n"
      "rename, which it makes holding DB's write lock. Until that rename DB is not written:\n"
      "an interrupted compact leaves it as it was (the next compact removes the partial\n"
      "DB.compact); a failed one removes its partial copy. The format is kept: a format-4\n"
      "database stays format 4 ('dbtool upgrade' converts it to 5).\n" },
    { "update", dbt_cmd_update, "update DB TABLE KEY... --set COL=VALUE...",
      "Change the row whose primary key is KEY (one value per key column, as get takes them):\n"
      "set each COL to VALUE, in one transaction. VALUE is JSON as in an import line (null, a\n"
      "number, \"text\", true, an array for a multi-valued column, whose values it replaces);\n"
      "a VALUE that is not JSON, and a JSON number or boolean given for a text column, is read\n"
      "as text the way KEY is, so --set name=bash needs no quotes. Fails with EDB_NOTFOUND when\n"
      "there is no such row, and changes nothing when any column or value is refused.\n" },
    { "drop-table", dbt_cmd_drop_table, "drop-table DB TABLE",
      "Drop the table with its rows and indexes, in one transaction.\n" },
    { "alter", dbt_cmd_alter, "alter DB TABLE OPERATION",
      "Change a table's schema in one transaction; OPERATION is one of\n"
      "  add-column JSON         a column as in create-table; existing rows read its default\n"
      "                          or NULL (a NOT NULL column needs a default, AUTOINC is refused)\n"
      "  drop-column C           refused with EDB_COLUMN_IN_INDEX while an index uses C; the\n"
      "                          values go when each row is next written\n"
      "  rename-column C NEW     the column keeps its values and indexes\n"
      "  add-index JSON          an index as in create-table, filled from the rows (a UNIQUE\n"
      "                          index over duplicate values is refused with EDB_KEYDUP)\n"
      "  drop-index I            a secondary index\n"
      "  rename NEW              the table\n"
      "Names taken are EDB_EXISTS; bad names EDB_INVAL. 'dbtool schema' shows the result.\n" },
    { "upgrade", dbt_cmd_upgrade, "upgrade DB",
      "Convert DB from an older format to format 5 (every table and index a key range of\n"
      "three LMDB databases; records with 1-, 2- or 4-byte offsets). Formats 1, 2 and 3 (one\n"
      "LMDB database per table and index) are rebuilt from every table's schema, rows and\n"
      "counters; format 4 (which this edb still opens and writes as it is) is copied in key\n"
      "order with every record rewritten. The new database is built in DB.upgrade beside\n"
      "DB, checked, and exchanged with DB in one atomic rename; the old files are then\n"
      "removed. Until that rename DB is not written: an interrupted upgrade leaves it as it\n"
      "was (the next upgrade removes the partial DB.upgrade). No other program may have DB\n"
      "open: one that has is refused by its pid (LMDB's lock), before and right before the\n"
      "rename. A format-5 database is left alone.\n" },
    { "backup", dbt_cmd_backup_any,
      "backup DB ARCHIVE|- [--incremental BASE] [--overwrite] [--manifest FILE] [--compress zstd[:LEVEL] [--threads N]] [--encrypt-key FILE] [--rate-limit BYTES_PER_S] [--low-pin] [--keep-free] [--json] [--quiet] | backup DB --repo DIR [--full-every N] [--every SECONDS] [--keep-last N] [--keep-daily D] [--keep-weekly W] [--max-chain K] [--compress zstd[:LEVEL] [--threads N]] [--encrypt-key FILE] [--low-pin] [--keep-free] [--rate-limit BYTES_PER_S] [--json] [--quiet] [--s3-endpoint URL] [--s3-region R] [--s3-path-style] [--s3-timeout SECONDS] [--s3-part-size SIZE]",
      "Write a consistent snapshot of DB to the archive file ARCHIVE (or, with -, to standard\n"
      "output) while writers keep going. The file is written unnamed (mode 0600) in ARCHIVE's\n"
      "directory, synced and linked as ARCHIVE when complete: a file named ARCHIVE is always\n"
      "complete, and a killed backup leaves no file (where the file system has no unnamed\n"
      "files, a hidden .ARCHIVE.tmp.XXXXXXXXXXXX is used and renamed).\n"
      "--incremental BASE writes only the pages that differ from the archive BASE (a full\n"
      "archive or an incremental, or its manifest; restore needs the whole chain). An existing\n"
      "ARCHIVE is refused unless --overwrite is given; it is then replaced atomically: the old\n"
      "archive stays until the new one is complete. --manifest FILE also writes the archive's\n"
      "manifest (its identity and page hash table, checksummed, a few KiB), which can be the\n"
      "BASE of the next incremental when the archive itself is stored elsewhere (also with -).\n"
      "--json prints one object describing the archive written (the members of 'dbtool info',\n"
      "with database, file, manifest_file and pin_s). --rate-limit caps the copier\n"
      "(bytes per second; K, M, G suffixes are powers of 1024). --low-pin copies in passes\n"
      "under short snapshots so that the database file does not grow behind a long snapshot.\n"
      "--keep-free copies free pages too (a byte-exact image). --compress zstd[:LEVEL]\n"
      "compresses each frame of pages on its own with zstd (LEVEL 1..22, default 1; archive\n"
      "format version 3): page hashes stay over the uncompressed pages, so verify checks every\n"
      "page and names the pages of a damaged frame; restore, merge and incrementals work alike,\n"
      "and a chain may mix compressed and plain archives. --threads N compresses each frame\n"
      "in N parts at once (one zstd frame a part). A progress bar is shown on a\n"
      "terminal; --quiet silences it and the summary. Ctrl-C (SIGINT, SIGTERM, SIGHUP) or a\n"
      "closed pipe stops the backup within half a second, even when the output is stalled:\n"
      "exit status 1, and no ARCHIVE file is left. BASE must be a regular file.\n"
      "An archive is never written to a terminal: - needs standard output redirected.\n"
      "With --repo DIR the archive is the next one of the repository DIR (created if absent):\n"
      "a full archive when DIR holds none or the last chain has N archives (--full-every N),\n"
      "else an incremental on the last archive; then DIR/catalog.json is rewritten atomically.\n"
      "An incremental that finds no changed page writes nothing but a catalog note. --every\n"
      "SECONDS keeps taking backups (continuous mode) until SIGINT, SIGTERM or SIGHUP, which\n"
      "end it cleanly: a backup in progress is abandoned without a trace, exit status 0.\n"
      "--keep-last, --keep-daily, --keep-weekly and --max-chain apply 'repo prune' and 'repo\n"
      "merge' after each backup. One line is printed per backup (--json: one object). Two\n"
      "commands that change one repository at once are refused (EDB_BUSY).\n"
      "DIR may be s3://BUCKET/PREFIX, an S3-compatible bucket with the same layout (plus a\n"
      "manifest object beside each archive), for every --repo command: the archive streams\n"
      "into a multipart upload (aborted on failure or stop, so no object is left) and the\n"
      "catalog is written last. Options: --s3-endpoint URL (default AWS for the region),\n"
      "--s3-region R, --s3-path-style (MinIO and local servers), --s3-timeout SECONDS\n"
      "(default 60: connecting, or less than 1 KiB moved for that long, fails), --s3-part-size\n"
      "SIZE (5M to 5G, default 8M). 5xx answers and resets are retried, 4xx never.\n"
      "Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or\n"
      "~/.aws/credentials; they are never printed. A bucket has no lock: one writer at a time.\n" },
    { "restore", dbt_cmd_restore_any, "restore TARGET_DIR ARCHIVE|-... [--encrypt-key FILE] [--force] [--json] | restore TARGET_DIR --repo DIR [--at TIME | --txn N] [--encrypt-key FILE] [--force] [--json]",
      "Rebuild a database in TARGET_DIR from a full archive followed by its incremental\n"
      "archives, in the order they were taken (- reads one of them from standard input).\n"
      "Every archive is checked completely while it is read; the database is built in a new\n"
      "directory beside TARGET_DIR, every page is compared with the archive's page hashes, and\n"
      "only then renamed into place. A damaged, truncated or mislinked archive (EDB_CORRUPT,\n"
      "EDB_CHECKSUM, EDB_CHAIN) leaves TARGET_DIR untouched. TARGET_DIR must be absent or\n"
      "empty; --force replaces an existing database directory (only data.mdb and lock.mdb)\n"
      "when no process has it open (else EDB_BUSY); the new database keeps the old lock.mdb,\n"
      "so a process that was opening the old one locks the new one's. Symbolic links are\n"
      "never followed. Each ARCHIVE must be a regular file (or -); a FIFO or a directory is\n"
      "refused. Ctrl-C (SIGINT, SIGTERM, SIGHUP) stops the restore (exit status 1) and removes\n"
      "the new directory; what a killed restore leaves beside TARGET_DIR (.TARGET_DIR.restore-*)\n"
      "the next restore to TARGET_DIR removes.\n"
      "--json prints one object: database, id and txn of the snapshot restored, page_size,\n"
      "npages, bytes, archives and archive_bytes read.\n"
      "With --repo DIR the archives come from a repository: the newest backup (--at TIME: the\n"
      "newest taken at or before TIME, ISO 8601 with its zone such as 2026-12-07T15:04:05Z or\n"
      "+01:00; a local time without a zone is refused; --txn N: the one whose snapshot is\n"
      "transaction N), restored with the chain it needs. DIR may be s3://BUCKET/PREFIX (the\n"
      "--s3-* options of backup): the chain is downloaded beside TARGET_DIR first.\n" },
    { "verify", dbt_cmd_verify_any, "verify ARCHIVE... [--encrypt-key FILE] [--deep] [--json]",
      "Check archives without restoring them: every block, every page's hash, the trailer, the\n"
      "page hash table, the end block and every link of each chain. The arguments are grouped\n"
      "into chains by their ids, in any order (a full archive and the incrementals that build\n"
      "on it; several independent chains may be given at once), each chain is checked and\n"
      "each archive reported. With - (standard input) the arguments are one chain in the\n"
      "order given. Each problem is printed on standard output with the archive, frame, page\n"
      "and byte offset concerned; exit status 1 when there is any. An incremental archive\n"
      "whose base is not given is checked as far as it can be without it. --json prints one\n"
      "object per archive: file, the members of 'dbtool info', chain (its number), verified\n"
      "(true or false) and error.\n"
      "--deep also restores the archives into a temporary directory and runs 'dbtool check'\n"
      "on the result (archives must be files, not standard input). The directory,\n"
      "$TMPDIR/dbtool-verify-XXXXXX (/tmp without TMPDIR), is removed at the end and on\n"
      "Ctrl-C (SIGINT, SIGTERM, SIGHUP; exit status 1); what a killed run left, the next\n"
      "verify --deep removes. Each ARCHIVE must be a regular file (or -); a FIFO or a\n"
      "directory is refused. An ARCHIVE s3://BUCKET/PREFIX/NAME is downloaded first (the\n"
      "--s3-* options of backup).\n" },
    { "keygen", dbt_cmd_keygen, "keygen FILE",
      "Create FILE holding a new random 32-byte key for encrypted archives (mode 0600; an\n"
      "existing FILE is never overwritten) and print its key id. Give it to backup, restore,\n"
      "verify, merge and repo commands with --encrypt-key FILE: every frame of the archive is\n"
      "then encrypted and authenticated (libsodium's secretstream, XChaCha20-Poly1305) after\n"
      "compression. The archive's header names the key by its id, never the key itself; info\n"
      "shows an encrypted archive without the key. A wrong or missing key is EDB_AUTH, a frame\n"
      "that fails authentication EDB_CHECKSUM naming its pages. Keep the key apart from the\n"
      "archives: without it they cannot be restored.\n" },
    { "info", dbt_cmd_info_any, "info ARCHIVE|MANIFEST|-... [--json]",
      "Describe each archive or manifest from its blocks, without reading its pages: id, base\n"
      "id, kind (full or incremental, with low-pin and keep-free), snapshot transaction,\n"
      "creation time, page size, pages in the snapshot and pages carried, bytes, and whether\n"
      "it is complete. An interrupted or damaged archive is described as not complete, with\n"
      "the problem, instead of failing. JSON members: id, base_id (null for a full archive),\n"
      "kind, txn, created (ISO 8601 UTC), page_size, npages, pages, bytes, complete,\n"
      "compression, and manifest (true) or problem when they apply. A file that is neither\n"
      "an archive nor a manifest is an error (exit status 1); the others are still shown.\n"
      "An ARCHIVE s3://BUCKET/PREFIX/NAME is downloaded first (the --s3-* options of backup).\n" },
    { "repo", dbt_cmd_repo, "repo list DIR [--json] | repo prune DIR --keep-last N [--keep-daily D] [--keep-weekly W] [--dry-run] | repo merge DIR --max-chain K",
      "Manage a backup repository written by 'backup --repo'. list prints its archives in the\n"
      "order taken (* starts a chain; --json: one object per archive with file and the members\n"
      "of 'dbtool info'). prune keeps the newest N backups, the newest of each of the last D\n"
      "days and of the last W weeks (UTC, weeks from Monday) and removes only whole chains that\n"
      "hold none of them, never a chain a kept backup needs; --dry-run only prints what would\n"
      "go. merge replaces every chain longer than K archives by one merged full archive of its\n"
      "last snapshot, so a restore never reads more than K archives (the intermediate points\n"
      "of that chain are given up). The catalog is rewritten atomically before any file is\n"
      "removed; prune and merge take the repository's lock (EDB_BUSY when it is in use).\n"
      "DIR may be s3://BUCKET/PREFIX (the --s3-* options of backup).\n" },
    { "merge", dbt_cmd_merge, "merge OUT FULL INCR... [--encrypt-key FILE] [--overwrite] [--json] [--quiet]",
      "Merge a chain (the full archive, then its incrementals in order) into OUT, one new full\n"
      "archive that restores exactly what the chain restores (the same snapshot, page for\n"
      "page), without restoring it. The chain is checked as restore checks it: a broken chain\n"
      "(EDB_CHAIN), a damaged or interrupted archive (EDB_CORRUPT, EDB_CHECKSUM) writes\n"
      "nothing. Every page copied is checked against the last archive's page hash table. OUT\n"
      "is written under a temporary name, synced and renamed when complete; an existing OUT\n"
      "is replaced only with --overwrite. Archives must be files (they are read by offset).\n"
      "--json prints the new archive's 'dbtool info' members with file, archives and seconds.\n" },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

const dbt_cmd *
dbt_find_cmd(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: dbtool COMMAND [ARGS...]\n"
               "       dbtool help COMMAND | COMMAND --help\n"
               "       dbtool --help | --version\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s\n", commands[i].synopsis);
    fprintf(f, "\nDB is a database directory; - is standard input. Output is an aligned table on a\n"
               "terminal and one JSON object per line otherwise (or with --json).\n"
               "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static int
help(const char *name)
{
    const dbt_cmd *c = dbt_find_cmd(name);
    if (c == NULL) {
        fprintf(stderr, "dbtool: help: unknown command '%s' (try 'dbtool --help')\n", name);
        return DBT_USAGE;
    }
    printf("usage: dbtool %s\n\n%s", c->synopsis, c->help);
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return DBT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dbtool (edb) %s\n", edb_version());
        return EXIT_SUCCESS;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return EXIT_SUCCESS;
        }
        return help(argv[2]);
    }
    const dbt_cmd *c = dbt_find_cmd(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "dbtool: unknown command '%s' (try 'dbtool --help')\n", argv[1]);
        return DBT_USAGE;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return help(c->name);
    /* --encrypt-key FILE: every archive command's, taken out here. */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--encrypt-key") != 0)
            continue;
        if (i + 1 >= argc)
            return dbt_usage(c->name, "--encrypt-key needs a key file (see 'dbtool keygen')");
        int rc = dbt_key_load(argv[i + 1]);
        if (rc != DBT_OK)
            return rc;
        memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);
        argc -= 2;
        i--;
    }
    return c->run(argc - 1, argv + 1);
}

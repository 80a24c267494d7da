/*
 * demo: a tour of the edb engine.  Creates a database with two tables and
 * their indexes in DIR, loads a few thousand generated rows in transactions,
 * then seeks, walks ranges, updates, uses an escrow counter and a nested
 * transaction, and prints what it did.
 *
 * usage: demo DIR      (DIR must not hold a database yet)
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edb.h"

#define CHECK(x) do { int rc__ = (x); if (rc__ < 0) { \
        fprintf(stderr, "demo: %s: %s\n", #x, edb_error_last()); exit(EXIT_FAILURE); } } while (0)

static const char *const cities[] = { "Oslo", "Lima", "Pune", "Kyiv", "Cork", "Nice", "Bern", "Riga" };
#define NCITIES 8
#define NCUSTOMERS 1000
#define NORDERS 4000

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
create_schema(edb_session *s)
{
    static const int64_t zero = 0;
    edb_column_def ccols[] = {
        { "id", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "name", EDB_COL_TEXT, EDB_COL_NOTNULL, 64, NULL, 0 },
        { "city", EDB_COL_TEXT, 0, 32, NULL, 0 },
        { "orders", EDB_COL_INT64, EDB_COL_ESCROW, 0, &zero, sizeof zero },
        { "tags", EDB_COL_TEXT, EDB_COL_MULTIVALUED, 16, NULL, 0 },
    };
    edb_index_def cidx[] = {
        { "pk", "+id\0", EDB_IDX_PRIMARY },
        { "by_city", "+city\0+name\0", 0 },
    };
    edb_table_def customers = { "customers", ccols, 5, cidx, 2 };
    edb_column_def ocols[] = {
        { "no", EDB_COL_INT64, EDB_COL_AUTOINC, 0, NULL, 0 },
        { "customer", EDB_COL_INT32, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "amount", EDB_COL_DOUBLE, EDB_COL_NOTNULL, 0, NULL, 0 },
        { "placed", EDB_COL_DATETIME, 0, 0, NULL, 0 },
    };
    edb_index_def oidx[] = {
        { "pk", "+no\0", EDB_IDX_PRIMARY },
        { "by_customer", "+customer\0-placed\0", 0 },
        { "by_amount", "-amount\0", 0 },
    };
    edb_table_def orders = { "orders", ocols, 4, oidx, 3 };
    CHECK(edb_txn_begin(s, 0));
    CHECK(edb_table_create(s, &customers));
    CHECK(edb_table_create(s, &orders));
    CHECK(edb_txn_commit(s));
    printf("created tables 'customers' (5 columns, 2 indexes) and 'orders' (4 columns, 3 indexes)\n");
}

static void
load(edb_session *s)
{
    edb_cursor *c, *o;
    CHECK(edb_cursor_open(&c, s, "customers"));
    CHECK(edb_cursor_open(&o, s, "orders"));
    double t0 = now();
    CHECK(edb_txn_begin(s, 0));
    for (int32_t id = 1; id <= NCUSTOMERS; id++) {
        char name[32];
        snprintf(name, sizeof name, "customer-%04d", (int)((id * 7919) % 10000));
        const char *city = cities[(id * 31) % NCITIES];
        CHECK(edb_update_prepare(c, EDB_PREP_INSERT));
        CHECK(edb_column_set(c, 1, &id, sizeof id, 0));
        CHECK(edb_column_set(c, 2, name, strlen(name), 0));
        CHECK(edb_column_set(c, 3, city, strlen(city), 0));
        if (id % 3 == 0)
            CHECK(edb_column_set(c, 5, "vip", 3, EDB_SET_APPEND));
        if (id % 5 == 0)
            CHECK(edb_column_set(c, 5, "newsletter", 10, EDB_SET_APPEND));
        CHECK(edb_update(c));
    }
    int64_t placed = 1700000000000000;
    uint32_t x = 42;
    for (int i = 0; i < NORDERS; i++) {
        x = x * 1664525u + 1013904223u;
        int32_t customer = (int32_t)(x % NCUSTOMERS) + 1;
        double amount = (double)(x >> 20) / 100.0;
        placed += 60000000;
        CHECK(edb_update_prepare(o, EDB_PREP_INSERT));
        CHECK(edb_column_set(o, 2, &customer, sizeof customer, 0));
        CHECK(edb_column_set(o, 3, &amount, sizeof amount, 0));
        CHECK(edb_column_set(o, 4, &placed, sizeof placed, 0));
        CHECK(edb_update(o));
        /* count it on the customer: escrow add on the customer row */
        CHECK(edb_key_make(c, &customer, sizeof customer, EDB_KEY_NEW));
        CHECK(edb_cursor_seek(c, EDB_SEEK_EQ));
        CHECK(edb_escrow_update(c, 4, 1, NULL));
    }
    CHECK(edb_txn_commit(s));
    double t1 = now();
    edb_tree_stat st;
    CHECK(edb_table_stat(&st, s, "customers", NULL));
    printf("loaded %" PRIu64 " customers", st.entries);
    CHECK(edb_table_stat(&st, s, "orders", NULL));
    printf(" and %" PRIu64 " orders in one transaction (%.0f ms)\n", st.entries, (t1 - t0) * 1e3);
    edb_cursor_close(c);
    edb_cursor_close(o);
}

static void
print_customer(edb_cursor *c)
{
    int32_t id;
    char name[65], city[33];
    size_t n1, n2;
    int64_t count;
    unsigned ntags;
    CHECK(edb_column_get(c, 1, &id, sizeof id, NULL, 0));
    CHECK(edb_column_get(c, 2, name, sizeof name - 1, &n1, 0));
    CHECK(edb_column_get(c, 3, city, sizeof city - 1, &n2, 0));
    CHECK(edb_column_get(c, 4, &count, sizeof count, NULL, 0));
    CHECK(edb_column_count(&ntags, c, 5));
    name[n1] = city[n2] = '\0';
    printf("    #%-4d %-14s %-5s orders=%-3" PRId64 " tags=", id, name, city, count);
    for (unsigned i = 1; i <= ntags; i++) {
        char tag[17];
        size_t n;
        CHECK(edb_column_get(c, 5, tag, sizeof tag - 1, &n, i));
        tag[n] = '\0';
        printf("%s%s", i > 1 ? "," : "", tag);
    }
    printf("%s\n", ntags ? "" : "-");
}

static void
queries(edb_session *s)
{
    edb_cursor *c, *o;
    CHECK(edb_cursor_open(&c, s, "customers"));
    CHECK(edb_cursor_open(&o, s, "orders"));
    CHECK(edb_txn_begin(s, EDB_TXN_READONLY));

    int32_t id = 500;
    CHECK(edb_key_make(c, &id, sizeof id, EDB_KEY_NEW));
    CHECK(edb_cursor_seek(c, EDB_SEEK_EQ));
    printf("seek EQ customers.pk = 500:\n");
    print_customer(c);

    /* every customer in Lima whose name starts at or after "customer-5": prefix range */
    CHECK(edb_cursor_set_index(c, "by_city"));
    CHECK(edb_key_make(c, "Lima", 4, EDB_KEY_NEW));
    CHECK(edb_key_make(c, "customer-5", 10, 0));
    CHECK(edb_cursor_seek(c, EDB_SEEK_GE));
    CHECK(edb_key_make(c, "Lima", 4, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
    CHECK(edb_cursor_set_range(c, EDB_RANGE_UPPER));
    int n = 1;
    printf("range by_city: Lima, name >= \"customer-5\" (first 3 of them):\n");
    print_customer(c);
    while (edb_cursor_move(c, EDB_MOVE_NEXT) == 0) {
        if (++n <= 3)
            print_customer(c);
    }
    printf("    ... %d customers in that range\n", n);

    /* the five largest orders: a descending index walked from the start */
    CHECK(edb_cursor_set_index(o, "by_amount"));
    printf("top 5 orders by amount (index -amount):\n");
    CHECK(edb_cursor_move(o, EDB_MOVE_FIRST));
    for (int i = 0; i < 5; i++) {
        int64_t no;
        int32_t cust;
        double amount;
        CHECK(edb_column_get(o, 1, &no, sizeof no, NULL, 0));
        CHECK(edb_column_get(o, 2, &cust, sizeof cust, NULL, 0));
        CHECK(edb_column_get(o, 3, &amount, sizeof amount, NULL, 0));
        printf("    order %-5" PRId64 " customer %-4d amount %.2f\n", no, cust, amount);
        if (edb_cursor_move(o, EDB_MOVE_NEXT) != 0)
            break;
    }

    /* orders of customer 7, newest first: a prefix of (+customer, -placed) */
    CHECK(edb_cursor_set_index(o, "by_customer"));
    int32_t cust = 7;
    CHECK(edb_key_make(o, &cust, sizeof cust, EDB_KEY_NEW));
    int count = 0;
    if (edb_cursor_seek(o, EDB_SEEK_EQ) == 0) {
        CHECK(edb_key_make(o, &cust, sizeof cust, EDB_KEY_NEW | EDB_KEY_PREFIX_END));
        CHECK(edb_cursor_set_range(o, EDB_RANGE_UPPER));
        do
            count++;
        while (edb_cursor_move(o, EDB_MOVE_NEXT) == 0);
    }
    printf("customer 7 has %d orders (prefix seek on by_customer)\n", count);
    CHECK(edb_txn_commit(s));
    edb_cursor_close(c);
    edb_cursor_close(o);
}

static void
updates(edb_session *s)
{
    edb_cursor *c;
    CHECK(edb_cursor_open(&c, s, "customers"));
    CHECK(edb_txn_begin(s, 0));
    /* move every Oslo customer to Bern */
    CHECK(edb_cursor_set_index(c, "by_city"));
    CHECK(edb_key_make(c, "Oslo", 4, EDB_KEY_NEW));
    int moved = 0;
    while (edb_cursor_seek(c, EDB_SEEK_EQ) == 0) {
        CHECK(edb_update_prepare(c, EDB_PREP_REPLACE));
        CHECK(edb_column_set(c, 3, "Bern", 4, 0));
        CHECK(edb_update(c));
        moved++;
        CHECK(edb_key_make(c, "Oslo", 4, EDB_KEY_NEW));
    }
    printf("moved %d customers from Oslo to Bern (index by_city kept exact)\n", moved);

    /* a nested level that is rolled back */
    CHECK(edb_txn_begin(s, 0));
    CHECK(edb_cursor_set_index(c, NULL));
    CHECK(edb_cursor_move(c, EDB_MOVE_FIRST));
    int deleted = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(edb_record_delete(c));
        deleted++;
        if (edb_cursor_move(c, EDB_MOVE_NEXT) != 0)
            break;
    }
    edb_tree_stat st;
    CHECK(edb_table_stat(&st, s, "customers", NULL));
    printf("nested level: deleted %d customers (%" PRIu64 " left) ... ", deleted, st.entries);
    CHECK(edb_txn_rollback(s));
    CHECK(edb_table_stat(&st, s, "customers", NULL));
    printf("rolled back: %" PRIu64 " customers again\n", st.entries);

    /* a unique violation leaves everything as it was */
    CHECK(edb_update_prepare(c, EDB_PREP_INSERT));
    int32_t id = 1;
    CHECK(edb_column_set(c, 1, &id, sizeof id, 0));
    CHECK(edb_column_set(c, 2, "dup", 3, 0));
    int rc = edb_update(c);
    printf("inserting customer 1 again: %s (%s)\n", edb_err_name(rc), edb_error_last());
    edb_update_cancel(c);
    CHECK(edb_txn_commit(s));
    CHECK(edb_table_stat(&st, s, "customers", "by_city"));
    printf("index by_city has %" PRIu64 " entries\n", st.entries);
    edb_cursor_close(c);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: demo DIR\n");
        return 2;
    }
    edb_env *env;
    edb_session *s;
    CHECK(edb_env_open(&env, argv[1], NULL));
    CHECK(edb_session_begin(&s, env));
    char **names;
    size_t ntables;
    CHECK(edb_table_list(&names, &ntables, s));
    edb_free(names);
    if (ntables != 0) {
        fprintf(stderr, "demo: %s already holds tables; give a fresh directory\n", argv[1]);
        return EXIT_FAILURE;
    }
    printf("edb %s: database in %s\n", edb_version(), edb_env_path(env));
    create_schema(s);
    load(s);
    queries(s);
    updates(s);
    edb_env_info info;
    CHECK(edb_env_info_get(&info, env));
    printf("database: %u-byte pages, %" PRIu64 " pages used, last transaction %" PRIu64 "\n",
           info.page_size, info.last_page + 1, info.txn_id);
    edb_session_end(s);
    edb_env_close(env);
    return EXIT_SUCCESS;
}

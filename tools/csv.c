/*
 * csv.c: RFC 4180 record reader (see csv.h).  Line numbers count LF; a CR
 * alone inside an unquoted field is data, CR LF ends a record.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "csv.h"

int
dbt_csv_record(dbt_csv *r, uint64_t *start, char *err, size_t errlen)
{
    int ch;
    for (;;) {        /* skip blank lines */
        ch = getc(r->f);
        if (ch == EOF)
            return 0;
        r->line++;
        if (ch == '\r') {
            int c2 = getc(r->f);
            if (c2 == '\n')
                continue;
            if (c2 != EOF)
                ungetc(c2, r->f);
            break;
        }
        if (ch != '\n')
            break;
    }
    *start = r->line;
    ungetc(ch, r->f);
    r->n = 0;
    for (;;) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            dbt_cell *p = realloc(r->cells, cap * sizeof *p);
            if (p == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            memset(p + r->cap, 0, (cap - r->cap) * sizeof *p);
            r->cells = p;
            r->cap = cap;
        }
        dbt_cell *c = &r->cells[r->n++];
        c->b.len = 0;
        c->quoted = false;
        jv_buf_add(&c->b, "", 0);
        ch = getc(r->f);
        if (ch == '"') {
            c->quoted = true;
            for (;;) {
                ch = getc(r->f);
                if (ch == EOF) {
                    snprintf(err, errlen, "field %zu: the quoted field never ends", r->n);
                    return -1;
                }
                if (ch == '"') {
                    ch = getc(r->f);
                    if (ch != '"')
                        break;
                }
                if (ch == '\n')
                    r->line++;
                char cc = (char)ch;
                if (jv_buf_add(&c->b, &cc, 1) != 0) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
            }
            if (ch == '\r') {
                int c2 = getc(r->f);
                if (c2 != '\n') {
                    snprintf(err, errlen, "field %zu: a carriage return after the closing quote", r->n);
                    return -1;
                }
                ch = '\n';
            }
            if (ch != ',' && ch != '\n' && ch != EOF) {
                snprintf(err, errlen, "field %zu: text after the closing quote", r->n);
                return -1;
            }
        } else {
            while (ch != ',' && ch != '\n' && ch != EOF) {
                if (ch == '"') {
                    snprintf(err, errlen, "field %zu: a quote inside an unquoted field", r->n);
                    return -1;
                }
                if (ch == '\r') {
                    int c2 = getc(r->f);
                    if (c2 == '\n') {
                        ch = '\n';
                        break;
                    }
                    if (c2 != EOF)
                        ungetc(c2, r->f);
                }
                char cc = (char)ch;
                if (jv_buf_add(&c->b, &cc, 1) != 0) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
                ch = getc(r->f);
            }
        }
        if (ch == ',')
            continue;
        return 1;     /* '\n' or EOF ends the record */
    }
}

void
dbt_csv_free(dbt_csv *r)
{
    for (size_t i = 0; i < r->cap; i++)
        jv_buf_free(&r->cells[i].b);
    free(r->cells);
    r->cells = NULL;
    r->n = r->cap = 0;
}

/*
 * ctl/table — kumactl's tables: Go's text/tabwriter with minwidth 1,
 * padding 3 and spaces, as app/kumactl/pkg/output/table uses it. Every cell
 * but the last of a row is padded to its column's widest cell (in runes)
 * plus three spaces; the last cell is printed as is.
 */
#ifndef CTL_TABLE_H
#define CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct table {
    size_t ncols;
    char **cells; /* nrows * ncols, row-major, owned */
    size_t nrows, cap;
};

void table_init(struct table *t, size_t ncols);
/* Appends a row of t->ncols cells (copied; NULL cells print as ""). */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *out);
void table_free(struct table *t);

#endif

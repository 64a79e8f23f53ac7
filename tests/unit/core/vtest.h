/*
 * Table-driven validator tests: each case is a spec written as JSON with
 * single quotes (turned into double quotes before parsing, to keep the C
 * tables readable) and the expected verr_join() output ("" = valid).
 */
#ifndef VTEST_H
#define VTEST_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/resource.h"
#include "core/validate.h"
#include "core/verr.h"

struct vcase {
    const char *spec;     /* JSON with ' for " ; NULL = empty spec */
    const char *expected; /* verr_join() output */
};

typedef void vtest_fn(const struct resource *r, struct verr *ve);

static inline json_t *vtest_json(const char *s)
{
    char *q = strdup(s ? s : "{}");
    for (char *c = q; *c; c++)
        if (*c == '\'')
            *c = '"';
    json_error_t je;
    json_t *v = json_loads(q, JSON_DECODE_ANY, &je);
    if (!v)
        fprintf(stderr, "  bad test JSON: %s: %s\n", je.text, q);
    free(q);
    return v;
}

static inline struct resource *vtest_resource(const struct res_type *t, const char *mesh,
                                              const char *name, const char *spec)
{
    struct resource *r = resource_new(t, mesh, name);
    json_t *v = vtest_json(spec);
    if (v) {
        json_decref(r->spec);
        r->spec = v;
    }
    return r;
}

/* Runs fn over every case; prints each mismatch; returns the failures. */
static inline int vtest_run(const char *what, const struct res_type *t, vtest_fn *fn,
                            const char *mesh, const char *name, const struct vcase *cases, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct resource *r = vtest_resource(t, mesh, name, cases[i].spec);
        struct verr ve = {0};
        fn(r, &ve);
        char *got = verr_join(&ve);
        if (strcmp(got, cases[i].expected) != 0) {
            fprintf(stderr, "  %s case %zu: %s\n    got:      \"%s\"\n    expected: \"%s\"\n", what,
                    i, cases[i].spec ? cases[i].spec : "{}", got, cases[i].expected);
            failed++;
        }
        free(got);
        verr_free(&ve);
        resource_free(r);
    }
    return failed;
}

#define VTEST_TABLE(what, t, fn, cases)                                                            \
    do {                                                                                           \
        int f_ = vtest_run(what, t, fn, "default", "x", cases, sizeof(cases) / sizeof(cases[0]));  \
        if (f_)                                                                                    \
            TEST_FAIL_("%d of %zu %s cases failed", f_, sizeof(cases) / sizeof(cases[0]), what);   \
    } while (0)

#endif

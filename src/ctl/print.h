/*
 * ctl/print — kumactl's output of resources: tables (Kuma's columns per
 * type, AGE from modificationTime, the pagination footer), YAML (Go's
 * yaml-of-JSON: keys sorted; a single old-style resource prints its meta
 * first, then its spec) and JSON (Go's json.MarshalIndent with two spaces and
 * HTML-safe escapes). Every function takes parsed JSON as the REST API
 * returns it and a FILE*, so output is testable without a server.
 */
#ifndef CTL_PRINT_H
#define CTL_PRINT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "core/types.h"

/* A wall-clock instant that also covers Go's zero time (year 1). */
struct ctl_time {
    int64_t sec; /* seconds since the Unix epoch, may be negative */
    int32_t nsec;
};

/* Go's zero time, 0001-01-01T00:00:00Z. */
struct ctl_time ctl_time_zero(void);
struct ctl_time ctl_time_now(void);
/* Parses RFC 3339 (Z or ±hh:mm, optional fraction); 0 or -1. */
int ctl_time_parse(const char *s, struct ctl_time *t);

/* Kuma's table.Duration of now - then: "0s", "59s", "5m", "3h", "12d", "292y"
 * (durations saturate at Go's ~292 years) or "never" for the future. */
void ctl_format_age(const struct ctl_time *then, const struct ctl_time *now, char *out,
                    size_t outlen);

enum ctl_format { CTL_FMT_TABLE, CTL_FMT_YAML, CTL_FMT_JSON };
/* "table", "yaml", "json"; -1 for anything else. */
int ctl_format_parse(const char *s);

/* A list response {total, items, next}. Returns 0 or -1 on a malformed list
 * (message in *errmsg). */
int ctl_print_list(const struct res_type *t, const json_t *list, enum ctl_format f,
                   const struct ctl_time *now, FILE *out, char **errmsg);
/* One resource as GET /…/{name} returns it. */
int ctl_print_one(const struct res_type *t, const json_t *item, enum ctl_format f,
                  const struct ctl_time *now, FILE *out, char **errmsg);
/* `kumactl inspect meshes` for a MeshInsight list. */
int ctl_print_mesh_insights(const json_t *list, enum ctl_format f, FILE *out, char **errmsg);

/* YAML of one resource as kumactl's YAML printer (and apply --dry-run)
 * prints it. */
void ctl_print_resource_yaml(const struct res_type *t, const json_t *item, FILE *out);
/* Go's json.MarshalIndent(v, "", "  ") followed by a newline. */
void ctl_print_json(const json_t *v, FILE *out);

/* The `offset` query parameter of a list's `next` URL; NULL if none.
 * Caller frees. */
char *ctl_next_offset(const json_t *list);

/* A copy of item with Kuma's meta keys first, in the order Go marshals
 * rest.ResourceMeta (type, mesh, name, creationTime, modificationTime,
 * labels, kri), then the other keys in their original order. */
json_t *ctl_order_meta_first(const json_t *item);

#endif

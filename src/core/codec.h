/*
 * codec — YAML and JSON text to JSON values and back.
 *
 * Input is parsed with libyaml (YAML 1.1 is a superset of the JSON users send),
 * one or more "---"-separated documents. Plain scalars become null, booleans,
 * integers or reals following YAML's core schema; quoted scalars stay strings.
 * Limits protect the servers: nesting depth, number of nodes, integer range.
 */
#ifndef CORE_CODEC_H
#define CORE_CODEC_H

#include <jansson.h>
#include <stddef.h>

#include "core/util.h"

#define CODEC_MAX_DEPTH 64
#define CODEC_MAX_NODES 100000

/* Parses every document in buf into a new JSON array (empty documents are
 * skipped). Returns 0, or -1 with e saying where ("line 3, column 5: ..."). */
int codec_parse(const char *buf, size_t len, json_t **docs, struct err *e);

/* Parses exactly one document (error if none or several). */
int codec_parse_one(const char *buf, size_t len, json_t **doc, struct err *e);

/* Block-style YAML for v, map keys sorted when sort_keys (as Go's yaml
 * marshalling of JSON does). Caller frees. */
char *codec_yaml_dump(const json_t *v, int sort_keys);

/* Whether a string would read back as a non-string if written as a plain
 * YAML scalar ("true", "123", "null"), so an emitter must quote it. */
int codec_scalar_is_ambiguous(const char *s);

/* Compact JSON text; caller frees. */
char *codec_json_dump(const json_t *v, int pretty);

#endif

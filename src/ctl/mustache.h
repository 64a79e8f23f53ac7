/*
 * ctl/mustache — the Mustache subset `kumactl apply -v k=v` renders, as
 * Kuma's pkg/util/template does with github.com/hoisie/mustache:
 * {{name}} (HTML-escaped like Go's template.HTMLEscape), {{{name}}} and
 * {{& name}} (raw), dotted names ({{a.b}}), sections {{#a}}..{{/a}},
 * inverted sections {{^a}}..{{/a}}, comments {{! ...}}. Missing names render
 * as nothing. Partials render as nothing; delimiter changes are refused.
 *
 * Written by hand: no C Mustache library is packaged for Debian 12, and
 * this subset is ~200 lines with no allocation beyond its bounded output.
 */
#ifndef CTL_MUSTACHE_H
#define CTL_MUSTACHE_H

#include <jansson.h>
#include <stddef.h>

/* The rendering context for -v pairs: "a.b=1" becomes {"a":{"b":"1"}};
 * later pairs win. Caller owns the result. */
json_t *mustache_context(char *const *keys, char *const *vals, size_t n);

/* Renders tmpl[0..len) with ctx into a new NUL-terminated *out (at most
 * max_out bytes). Returns 0, or -1 with a newly allocated *errmsg
 * ("unmatched open tag", "unmatched close tag \"x\"", ...). */
int mustache_render(const char *tmpl, size_t len, const json_t *ctx, size_t max_out, char **out,
                    char **errmsg);

#endif

/*
 * admin_query — the admin endpoint's request-target decoding: %XX escapes
 * in the path, and query arguments (`a=1&b&c=x+y`) looked up by name, with
 * libmicrohttpd's rules (which the endpoint used before): '+' is a space in
 * arguments, a malformed escape stays as it is, the first of repeated names
 * wins. Pure string functions, fuzzed on their own (tests/fuzz/fuzz_admin_query.c).
 */
#ifndef DP_ADMIN_QUERY_H
#define DP_ADMIN_QUERY_H

/* Decodes %XX escapes of s in place (and '+' as a space when plus is set).
 * The result is never longer than s; a %00 escape ends the string there. */
void dp_admin_unescape(char *s, int plus);

/* The decoded value of the first query argument named key ("" for `key` or
 * `key=`), or NULL if there is none or query is NULL. query is the part
 * after '?', undecoded. The caller frees the result. */
char *dp_admin_query_arg(const char *query, const char *key);

#endif

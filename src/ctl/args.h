/*
 * args — command-line flags the way kumactl's cobra/pflag parser reads them:
 * "--name value", "--name=value", "-m value", "-mvalue", "-m=value", boolean
 * flags with an optional "=true|false", repeatable key=value maps
 * ("--var a=1,b=2"), "--" ending the flags, and positional arguments mixed
 * freely with flags. Error texts are pflag's ("unknown flag: --x",
 * "flag needs an argument: --name", ...), so kumactl prints what Kuma prints.
 *
 * The parser owns nothing it did not allocate: flag definitions are static
 * tables of the caller; values point into argv or into copies owned by the
 * result, freed by args_free(). The flag tables must outlive the result:
 * defaults are looked up in them.
 */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#include <stddef.h>

enum flag_kind {
    FLAG_BOOL,
    FLAG_STRING,
    FLAG_INT,
    FLAG_MAP,          /* repeatable key=value[,key=value] (pflag StringToString) */
    FLAG_DURATION,     /* Go duration: "1m", "30s", "1m30s", "500ms" */
    FLAG_STRING_SLICE, /* repeatable a[,b] (pflag StringSlice); elements in vals */
    FLAG_STRING_ARRAY, /* repeatable, not split (pflag StringArray); elements in vals */
};

/* One flag. A table of them ends with an entry whose name is NULL. */
struct flag_def {
    const char *name; /* long name without dashes */
    char shorthand;   /* 0 = none */
    enum flag_kind kind;
    const char *defval; /* shown in help and returned when unset; NULL = none */
    const char *usage;
    int required; /* cobra MarkFlagRequired */
};

/* A parsed flag. For FLAG_MAP, keys/vals hold every pair in order given. */
struct flag_val {
    const struct flag_def *def;
    int set;
    const char *str; /* last value given (STRING, INT, DURATION, BOOL text) */
    char **keys, **vals;
    size_t npairs;
};

struct args {
    struct flag_val *flags;
    size_t nflags;
    char **pos; /* positional arguments (point into argv) */
    size_t npos;
    int help;                             /* -h/--help was given */
    const struct flag_def *const *tables; /* the tables parsed against (defaults) */
    size_t ntables;
};

/*
 * Parses argv[0..argc) (the words after the command path) against the given
 * flag tables (searched in order; the first match wins). Returns 0, or -1 with
 * a newly allocated pflag-style message in *errmsg.
 */
int args_parse(const struct flag_def *const *tables, size_t ntables, int argc, char **argv,
               struct args *out, char **errmsg);
void args_free(struct args *a);

/* Accessors by long name; unknown names behave as unset flags. */
const char *args_str(const struct args *a, const char *name); /* value or default or "" */
int args_bool(const struct args *a, const char *name);
long long args_int(const struct args *a, const char *name);
/* Duration in milliseconds (value or default); -1 if unparsable. */
long long args_duration_ms(const struct args *a, const char *name);
int args_is_set(const struct args *a, const char *name);
const struct flag_val *args_get(const struct args *a, const char *name);

/* Validates required flags: cobra's `required flag(s) "a", "b" not set`. */
int args_check_required(const struct args *a, char **errmsg);

/* Parses a Go duration ("1m30s", "500ms", "2h"); returns ms or -1. */
long long args_parse_duration_ms(const char *s);

/* Splits s into pairs as pflag's StringToString does: a value with exactly
 * one "=" is a single pair (commas stay in the value), otherwise a CSV record
 * of key=value elements. Returns 0 or -1 when an element lacks "=". Appends
 * to the key and value arrays (caller frees). */
int args_split_map(const char *s, char ***keys, char ***vals, size_t *n);

#endif

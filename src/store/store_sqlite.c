/*
 * store_sqlite — the embedded store: every resource is one row of one SQLite
 * table, in a file (KUMA_STORE_TYPE=sqlite, the default) or in memory
 * (KUMA_STORE_TYPE=memory: the same code on ":memory:", gone on exit).
 *
 * Schema (version 1, recorded in PRAGMA user_version; `migrations` below is
 * applied in order on open, so a later version only appends a step). It
 * follows Kuma's Postgres schema:
 *
 *   resources(name, mesh, type, version, spec TEXT, creation_time,
 *             modification_time, owner_name, owner_mesh, owner_type,
 *             labels TEXT)
 *   PRIMARY KEY (name, mesh, type)
 *   FOREIGN KEY (owner_name, owner_mesh, owner_type)
 *       REFERENCES resources (name, mesh, type) ON DELETE CASCADE
 *
 * Global resources have mesh ''. A mesh-scoped row is owned by its Mesh row
 * (owner_type 'Mesh', owner_mesh '', owner_name = mesh), so deleting the mesh
 * deletes everything in it in the same transaction. Times are ns since the
 * Unix epoch. spec and labels are compact JSON text.
 *
 * Durability: WAL journal with synchronous=FULL. In WAL mode, NORMAL only
 * fsyncs the WAL at checkpoints, so a power cut can lose the last commits even
 * though the caller was told they succeeded; FULL fsyncs the WAL on every
 * commit, so every acknowledged write survives kill -9 and power loss (as far
 * as the disk honours fsync). The cost is one fsync per write; docs/store.md
 * has figures. The database file is created with mode 0600 before SQLite
 * opens it (whatever the umask), and SQLite gives its -wal and -shm files the
 * mode of the database file; we also tighten them if they already exist.
 *
 * Concurrency: every call is safe from any thread. Writes go through one
 * writer connection guarded by a mutex, each as one BEGIN IMMEDIATE
 * transaction (which also serializes against another process on the same
 * file; busy_timeout waits for it). A file store reads (get, list, count)
 * through a second, query_only connection with its own mutex, so reads do not
 * wait for a write's fsync: WAL runs readers beside the writer, and a read
 * that starts after a COMMIT returned sees it. Updates are optimistic: the
 * UPDATE names the version the caller read, and 0 rows changed means a
 * conflict (or a missing row). `changes` is appended to only after COMMIT
 * succeeded, so nothing is ever published for a rolled-back write.
 *
 * Errors: the contract's codes, with Kuma's words in `struct err` where Kuma
 * has them ("resource already exists: type=\"Mesh\" name=\"x\" mesh=\"\"").
 * A database failure is logged here with sqlite3_errmsg and returned as
 * STORE_EIO; nothing in this file aborts on what the database or a caller
 * hands it. Only bound parameters reach SQL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store.h"

#define STORE_BUSY_TIMEOUT_MS 5000

/* Schema migrations; entry i takes user_version i to i+1. Append only. */
static const char *const migrations[] = {
    "CREATE TABLE resources ("
    "  name TEXT NOT NULL,"
    "  mesh TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  spec TEXT NOT NULL DEFAULT '{}',"
    "  creation_time INTEGER NOT NULL,"
    "  modification_time INTEGER NOT NULL,"
    "  owner_name TEXT,"
    "  owner_mesh TEXT,"
    "  owner_type TEXT,"
    "  labels TEXT NOT NULL DEFAULT '{}',"
    "  PRIMARY KEY (name, mesh, type),"
    "  CONSTRAINT owner_fk FOREIGN KEY (owner_name, owner_mesh, owner_type)"
    "    REFERENCES resources (name, mesh, type) ON DELETE CASCADE"
    ");"
    /* The cascade looks children up by owner; lists scan one type in
     * (name, mesh) order, or one type in one mesh by name. */
    "CREATE INDEX owner_fk_index ON resources (owner_type, owner_mesh, owner_name);"
    "CREATE INDEX resources_type_name ON resources (type, name, mesh);"
    "CREATE INDEX resources_type_mesh ON resources (type, mesh, name);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
    ST_BEGIN,
    ST_BEGIN_IMMEDIATE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_MESH_EXISTS,
    ST_INSERT,
    ST_UPDATE,
    ST_VERSION,
    ST_GET,
    ST_CHILDREN,
    ST_DELETE,
    ST_N
};

static const char *const stmt_sql[ST_N] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_MESH_EXISTS] = "SELECT 1 FROM resources WHERE name = ?1 AND mesh = '' AND type = 'Mesh'",
    [ST_INSERT] = "INSERT INTO resources (name, mesh, type, version, spec, creation_time,"
                  " modification_time, owner_name, owner_mesh, owner_type, labels)"
                  " VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5, ?6, ?7, ?8, ?9)",
    [ST_UPDATE] = "UPDATE resources SET spec = ?1, labels = ?2, version = version + 1,"
                  " modification_time = ?3"
                  " WHERE name = ?4 AND mesh = ?5 AND type = ?6 AND version = ?7",
    [ST_VERSION] = "SELECT version FROM resources WHERE name = ?1 AND mesh = ?2 AND type = ?3",
    [ST_GET] = "SELECT spec, labels, version, creation_time, modification_time"
               " FROM resources WHERE name = ?1 AND mesh = ?2 AND type = ?3",
    /* Every row the cascade will remove with (?1, ?2, ?3): its owned rows,
     * their owned rows, and so on. UNION (not UNION ALL) ends on cycles. */
    [ST_CHILDREN] = "WITH RECURSIVE doomed (name, mesh, type) AS ("
                    "  SELECT name, mesh, type FROM resources"
                    "   WHERE owner_name = ?1 AND owner_mesh = ?2 AND owner_type = ?3"
                    "  UNION"
                    "  SELECT r.name, r.mesh, r.type FROM resources r JOIN doomed d"
                    "   ON r.owner_name = d.name AND r.owner_mesh = d.mesh"
                    "   AND r.owner_type = d.type)"
                    " SELECT r.type, r.mesh, r.name, r.version FROM doomed d"
                    " JOIN resources r ON r.name = d.name AND r.mesh = d.mesh AND r.type = d.type"
                    " ORDER BY r.type, r.mesh, r.name",
    [ST_DELETE] = "DELETE FROM resources WHERE name = ?1 AND mesh = ?2 AND type = ?3",
};

/* List and count statements differ by which filters are present; each
 * combination is prepared once so the planner picks an index for it. */
enum {
    LF_MESH = 1,
    LF_NAME = 2,
    LF_LABEL = 4,
    LF_N = 8,
};

/* One SQLite connection, its prepared statements and the mutex that
 * serializes its use (SQLite's own mutex is off). */
struct conn {
    pthread_mutex_t mu;
    sqlite3 *db;
    enum store_kind kind;
    sqlite3_stmt *st[ST_N];
    sqlite3_stmt *list[LF_N];
    sqlite3_stmt *count[LF_N];
};

/* The writer connection takes every write; a file store also has a reader
 * connection (query_only) for get/list/count, so reads never queue behind
 * a write's fsync or a checkpoint: WAL lets them run side by side, and a
 * read that starts after a COMMIT returned sees it. Measured with
 * bench/bench_store.c (4 threads creating, one thread getting): one shared
 * connection gave ~18k gets/s with the slowest get at ~150 ms; the reader
 * connection gives ~195k gets/s with the slowest at ~2 ms.
 * The memory store has one connection (":memory:" is private to it). */
struct store {
    struct conn w, r;
    int has_reader;
};

/* ---- errors ------------------------------------------------------------ */

/* Fills e and returns code, so error paths read `return fail(e, CODE, ...)`. */
__attribute__((format(printf, 3, 4))) static int fail(struct err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Appends s quoted as Go's %q does for the ASCII range, so messages read
 * exactly like Kuma's; other bytes pass through. */
static void buf_goquote(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            buf_append(b, "\\\"", 2);
            break;
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                buf_printf(b, "\\x%02x", *p);
            else
                buf_append(b, p, 1);
        }
    }
    buf_append(b, "\"", 1);
}

/* "<what>: type="T" name="N" mesh="M"", Kuma's store error format. */
static int res_error(struct err *e, int code, const char *what, const struct res_type *t,
                     const char *mesh, const char *name)
{
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "%s: type=", what);
    buf_goquote(&b, t->name);
    buf_printf(&b, " name=");
    buf_goquote(&b, name);
    buf_printf(&b, " mesh=");
    buf_goquote(&b, mesh);
    err_set(e, "%s", buf_str(&b));
    buf_free(&b);
    return code;
}

/* Logs and reports a database failure while sqlite3_errmsg is still valid. */
static int db_error(struct conn *s, struct err *e, const char *what)
{
    const char *msg = sqlite3_errmsg(s->db);
    int code = sqlite3_extended_errcode(s->db);
    log_error("store", "%s: %s (sqlite code %d)", what, msg, code);
    err_set(e, "store: %s: %s", what, msg);
    return STORE_EIO;
}

/* ---- statement helpers ------------------------------------------------- */

static void st_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Runs a statement that returns no rows. */
static int exec_st(struct conn *s, enum stmt_id id, struct err *e, const char *what)
{
    sqlite3_stmt *st = s->st[id];
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db_error(s, e, what);
    st_done(st);
    return ret;
}

/* Ends a failed transaction. SQLite rolls back by itself after some errors
 * (SQLITE_FULL, SQLITE_IOERR, ...), so only roll back what is still open. */
static void rollback(struct conn *s)
{
    if (sqlite3_get_autocommit(s->db))
        return;
    if (exec_st(s, ST_ROLLBACK, NULL, "rollback") != 0)
        log_error("store", "rollback failed; the connection may be unusable");
}

static void bind_key(sqlite3_stmt *st, const struct res_type *t, const char *mesh, const char *name)
{
    bind_text(st, 1, name);
    bind_text(st, 2, mesh);
    bind_text(st, 3, t->name);
}

/* Serializes a JSON object for the spec/labels columns; NULL means {}.
 * Anything but an object is refused (NULL) here rather than stored as a row
 * that could not be read back. */
static char *json_text(const json_t *v)
{
    if (!v)
        return xstrdup("{}");
    if (!json_is_object(v))
        return NULL;
    return json_dumps(v, JSON_COMPACT);
}

static json_t *column_json(sqlite3_stmt *st, int col)
{
    const char *txt = (const char *)sqlite3_column_text(st, col);
    if (!txt)
        return json_object();
    json_t *v = json_loads(txt, JSON_ALLOW_NUL, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Builds a resource from (spec, labels, version, creation, modification)
 * starting at column `col`. NULL if the stored JSON does not parse. */
static struct resource *row_resource(sqlite3_stmt *st, int col, const struct res_type *t,
                                     const char *mesh, const char *name)
{
    json_t *spec = column_json(st, col);
    json_t *labels = column_json(st, col + 1);
    if (!spec || !labels) {
        json_decref(spec);
        json_decref(labels);
        return NULL;
    }
    struct resource *r = resource_new(t, mesh, name);
    json_decref(r->spec);
    json_decref(r->labels);
    r->spec = spec;
    r->labels = labels;
    r->version = sqlite3_column_int64(st, col + 2);
    r->creation_time = sqlite3_column_int64(st, col + 3);
    r->modification_time = sqlite3_column_int64(st, col + 4);
    return r;
}

/* ---- open / close ------------------------------------------------------ */

static int exec_sql(struct conn *s, const char *sql, struct err *e, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    log_error("store", "%s: %s", what, msg ? msg : sqlite3_errmsg(s->db));
    err_set(e, "store: %s: %s", what, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return STORE_EIO;
}

static int pragma_int(struct conn *s, const char *sql, int *out, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(s, e, sql);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int ret = db_error(s, e, sql);
        sqlite3_finalize(st);
        return ret;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Brings the schema to SCHEMA_VERSION in one transaction; refuses a newer
 * database rather than misreading it. */
static int migrate(struct conn *s, struct err *e)
{
    int ret = exec_sql(s, "BEGIN IMMEDIATE", e, "begin migration");
    if (ret)
        return ret;
    int uv = 0;
    ret = pragma_int(s, "PRAGMA user_version", &uv, e);
    if (ret)
        goto out;
    if (uv > SCHEMA_VERSION) {
        log_error("store", "database schema version %d is newer than this build's %d", uv,
                  SCHEMA_VERSION);
        err_set(e, "store: database schema version %d is newer than this build supports (%d)", uv,
                SCHEMA_VERSION);
        ret = STORE_EIO;
        goto out;
    }
    for (int v = uv; v < SCHEMA_VERSION; v++) {
        ret = exec_sql(s, migrations[v], e, "migrate schema");
        if (ret)
            goto out;
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        ret = exec_sql(s, sql, e, "migrate schema");
        if (ret)
            goto out;
        if (s->kind == STORE_KIND_SQLITE)
            log_info("store", "schema migrated to version %d", v + 1);
    }
    ret = exec_sql(s, "COMMIT", e, "commit migration");
out:
    if (ret && !sqlite3_get_autocommit(s->db))
        exec_sql(s, "ROLLBACK", NULL, "rollback migration");
    return ret;
}

static char *build_select(unsigned flags, int count)
{
    struct buf b;
    buf_init(&b, 0);
    if (count)
        buf_printf(&b, "SELECT count(*) FROM resources WHERE type = ?1");
    else
        buf_printf(&b, "SELECT name, mesh, spec, labels, version, creation_time,"
                       " modification_time FROM resources WHERE type = ?1");
    if (flags & LF_MESH)
        buf_printf(&b, " AND mesh = ?2");
    /* instr(), not LIKE: no wildcard escaping, and case-sensitive like
     * Postgres' LIKE (SQLite's LIKE folds ASCII case). */
    if (flags & LF_NAME)
        buf_printf(&b, " AND instr(name, ?3) > 0");
    /* json_each rather than json_extract: a label key may contain dots,
     * slashes or quotes that a JSON path would have to escape. */
    if (flags & LF_LABEL)
        buf_printf(&b, " AND EXISTS (SELECT 1 FROM json_each(resources.labels)"
                       " WHERE json_each.key = ?4 AND json_each.type = 'text'"
                       " AND json_each.value = ?5)");
    if (!count)
        buf_printf(&b, " ORDER BY name, mesh LIMIT ?6 OFFSET ?7");
    char *sql = xstrdup(buf_str(&b));
    buf_free(&b);
    return sql;
}

static int prepare_all(struct conn *s, struct err *e)
{
    for (int i = 0; i < ST_N; i++)
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK)
            return db_error(s, e, "prepare statement");
    for (unsigned f = 0; f < LF_N; f++) {
        for (int count = 0; count < 2; count++) {
            char *sql = build_select(f, count);
            sqlite3_stmt **dst = count ? &s->count[f] : &s->list[f];
            int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, dst, NULL);
            free(sql);
            if (rc != SQLITE_OK)
                return db_error(s, e, "prepare list statement");
        }
    }
    return 0;
}

/* Creates the database file with mode 0600 (or tightens an existing one)
 * before SQLite opens it; SQLite then uses that mode for -wal and -shm.
 * A new file's directory entry is fsynced so the file survives a power cut. */
static int prepare_file(const char *path, struct err *e)
{
    int created = 1;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        int en = errno;
        log_error("store", "open %s: %s", path, strerror(en));
        return fail(e, STORE_EIO, "store: open %s: %s", path, strerror(en));
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077)) {
        log_warn("store", "%s had mode %04o; setting 0600", path, (unsigned)(sb.st_mode & 07777));
        if (fchmod(fd, 0600) != 0) {
            int en = errno;
            close(fd);
            log_error("store", "chmod %s: %s", path, strerror(en));
            return fail(e, STORE_EIO, "store: chmod %s: %s", path, strerror(en));
        }
    }
    close(fd);
    if (created) {
        char *dir = xstrdup(path);
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0)
                log_warn("store", "fsync %s: %s", dir, strerror(errno));
            close(dfd);
        }
        free(dir);
    }
    return 0;
}

static void tighten_mode(const char *path, const char *suffix)
{
    char *p = xasprintf("%s%s", path, suffix);
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) && chmod(p, 0600) != 0)
        log_warn("store", "chmod %s: %s", p, strerror(errno));
    free(p);
}

/* Opens one connection with the settings every connection needs. */
static int conn_open(struct conn *c, enum store_kind kind, const char *name, struct err *e)
{
    c->kind = kind;
    pthread_mutex_init(&c->mu, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(name, &c->db, flags, NULL) != SQLITE_OK) {
        if (!c->db) {
            log_error("store", "sqlite3_open %s: out of memory", name);
            err_set(e, "store: open %s: out of memory", name);
            return STORE_EIO;
        }
        return db_error(c, e, "open database");
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
    return exec_sql(c, "PRAGMA foreign_keys = ON", e, "enable foreign keys");
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(c->st[i]);
    for (int i = 0; i < LF_N; i++) {
        sqlite3_finalize(c->list[i]);
        sqlite3_finalize(c->count[i]);
    }
    if (c->db && sqlite3_close(c->db) != SQLITE_OK)
        log_error("store", "close: %s", sqlite3_errmsg(c->db));
    c->db = NULL;
    pthread_mutex_destroy(&c->mu);
}

/* journal_mode answers with the mode in effect; anything but "wal" (a file
 * system without shared memory, say) is refused rather than silently running
 * with weaker guarantees. This is also the first read of the file, so a file
 * that is not a database fails here, before anything is written to it. */
static int set_wal(struct conn *c, const char *path, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return db_error(c, e, "set WAL mode");
    int ret = 0;
    int rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (rc != SQLITE_ROW) {
        ret = db_error(c, e, "set WAL mode");
    } else if (!mode || strcmp(mode, "wal") != 0) {
        log_error("store", "%s: cannot use WAL (journal mode %s)", path, mode ? mode : "?");
        err_set(e, "store: %s: cannot use WAL (journal mode %s)", path, mode ? mode : "?");
        ret = STORE_EIO;
    }
    sqlite3_finalize(st);
    return ret;
}

int store_open(enum store_kind kind, const char *path, struct store **out, struct err *e)
{
    int ret;
    if (kind != STORE_KIND_SQLITE && kind != STORE_KIND_MEMORY)
        return fail(e, STORE_EINVALID, "invalid: unknown store kind %d", (int)kind);
    if (kind == STORE_KIND_SQLITE && (!path || !*path))
        return fail(e, STORE_EINVALID, "invalid: the sqlite store needs a file path");
    if (!sqlite3_threadsafe()) {
        /* Our mutexes need SQLite's multi-thread mode at least. */
        log_error("store", "libsqlite3 was built without thread support");
        return fail(e, STORE_EIO, "store: libsqlite3 was built without thread support");
    }
    if (kind == STORE_KIND_SQLITE && (ret = prepare_file(path, e)) != 0)
        return ret;

    struct store *s = xcalloc(1, sizeof(*s));
    const char *name = kind == STORE_KIND_MEMORY ? ":memory:" : path;
    if ((ret = conn_open(&s->w, kind, name, e)) != 0)
        goto fail;
    if (kind == STORE_KIND_SQLITE) {
        if ((ret = set_wal(&s->w, path, e)) != 0)
            goto fail;
        if ((ret = exec_sql(&s->w, "PRAGMA synchronous = FULL", e, "set synchronous")) != 0)
            goto fail;
    }
    if ((ret = migrate(&s->w, e)) != 0)
        goto fail;
    if ((ret = prepare_all(&s->w, e)) != 0)
        goto fail;
    if (kind == STORE_KIND_SQLITE) {
        /* The reader: opened after the schema exists; query_only makes a
         * write through it fail instead of bypassing the writer's lock. */
        s->has_reader = 1;
        if ((ret = conn_open(&s->r, kind, path, e)) != 0)
            goto fail;
        if ((ret = exec_sql(&s->r, "PRAGMA query_only = ON", e, "set query_only")) != 0)
            goto fail;
        if ((ret = prepare_all(&s->r, e)) != 0)
            goto fail;
        tighten_mode(path, "-wal");
        tighten_mode(path, "-shm");
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return ret;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    /* The reader first: the last connection to close checkpoints the WAL
     * into the database file and removes it. */
    if (s->has_reader)
        conn_close(&s->r);
    conn_close(&s->w);
    free(s);
}

/* The connection for reads. */
static struct conn *reader(struct store *s)
{
    return s->has_reader ? &s->r : &s->w;
}

/* ---- writes ------------------------------------------------------------ */

static int check_key(const struct res_type *t, const char *mesh, const char *name, struct err *e)
{
    if (!t || !t->name)
        return fail(e, STORE_EINVALID, "invalid: missing resource type");
    if (!name || !*name)
        return fail(e, STORE_EINVALID, "invalid: name must not be empty");
    if (t->scope == RES_SCOPE_GLOBAL && mesh && *mesh)
        return fail(e, STORE_EINVALID, "invalid: %s is global-scoped and cannot be in a mesh",
                    t->name);
    return 0;
}

int store_create(struct store *store, struct resource *r, struct changes *ch, struct err *e)
{
    struct conn *s = &store->w;
    if (!r)
        return fail(e, STORE_EINVALID, "invalid: no resource");
    const char *mesh = r->mesh ? r->mesh : "";
    int ret = check_key(r->type, mesh, r->name, e);
    if (ret)
        return ret;
    char *spec = json_text(r->spec), *labels = json_text(r->labels);
    if (!spec || !labels) {
        ret = fail(e, STORE_EINVALID, "invalid: spec and labels must be JSON objects");
        goto out_free;
    }
    int mesh_scoped = r->type->scope == RES_SCOPE_MESH;
    int64_t now = now_ns();

    pthread_mutex_lock(&s->mu);
    if ((ret = exec_st(s, ST_BEGIN_IMMEDIATE, e, "begin")) != 0)
        goto out_unlock;
    if (mesh_scoped) {
        sqlite3_stmt *st = s->st[ST_MESH_EXISTS];
        bind_text(st, 1, mesh);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            ret = fail(e, STORE_ENOMESH, "mesh of name %s is not found", mesh);
        else if (rc != SQLITE_ROW)
            ret = db_error(s, e, "look up mesh");
        st_done(st);
        if (ret)
            goto out_rollback;
    }
    sqlite3_stmt *st = s->st[ST_INSERT];
    bind_key(st, r->type, mesh, r->name);
    bind_text(st, 4, spec);
    sqlite3_bind_int64(st, 5, now);
    bind_text(st, 6, mesh_scoped ? mesh : NULL);
    bind_text(st, 7, mesh_scoped ? "" : NULL);
    bind_text(st, 8, mesh_scoped ? TYPE_MESH.name : NULL);
    bind_text(st, 9, labels);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        ret = res_error(e, STORE_EEXIST, "resource already exists", r->type, mesh, r->name);
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        ret = fail(e, STORE_ENOMESH, "mesh of name %s is not found", mesh);
    else if (rc != SQLITE_DONE)
        ret = db_error(s, e, "insert");
    st_done(st);
    if (ret)
        goto out_rollback;
    if ((ret = exec_st(s, ST_COMMIT, e, "commit")) != 0)
        goto out_rollback;
    pthread_mutex_unlock(&s->mu);

    r->version = 1;
    r->creation_time = r->modification_time = now;
    changes_add(ch, r->type, mesh, r->name, CHANGE_CREATE, 1);
    goto out_free;

out_rollback:
    rollback(s);
out_unlock:
    pthread_mutex_unlock(&s->mu);
out_free:
    free(spec);
    free(labels);
    return ret;
}

/* After an UPDATE or DELETE matched nothing: is the row there at all?
 * Returns 1 (yes), 0 (no) or STORE_EIO. */
static int row_exists(struct conn *s, const struct res_type *t, const char *mesh, const char *name,
                      int64_t *version, struct err *e)
{
    sqlite3_stmt *st = s->st[ST_VERSION];
    bind_key(st, t, mesh, name);
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        if (version)
            *version = sqlite3_column_int64(st, 0);
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        ret = db_error(s, e, "look up version");
    }
    st_done(st);
    return ret;
}

int store_update(struct store *store, struct resource *r, struct changes *ch, struct err *e)
{
    struct conn *s = &store->w;
    if (!r)
        return fail(e, STORE_EINVALID, "invalid: no resource");
    const char *mesh = r->mesh ? r->mesh : "";
    int ret = check_key(r->type, mesh, r->name, e);
    if (ret)
        return ret;
    char *spec = json_text(r->spec), *labels = json_text(r->labels);
    if (!spec || !labels) {
        ret = fail(e, STORE_EINVALID, "invalid: spec and labels must be JSON objects");
        goto out_free;
    }
    int64_t now = now_ns();

    pthread_mutex_lock(&s->mu);
    if ((ret = exec_st(s, ST_BEGIN_IMMEDIATE, e, "begin")) != 0)
        goto out_unlock;
    sqlite3_stmt *st = s->st[ST_UPDATE];
    bind_text(st, 1, spec);
    bind_text(st, 2, labels);
    sqlite3_bind_int64(st, 3, now);
    bind_text(st, 4, r->name);
    bind_text(st, 5, mesh);
    bind_text(st, 6, r->type->name);
    sqlite3_bind_int64(st, 7, r->version);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        ret = db_error(s, e, "update");
    st_done(st);
    if (ret)
        goto out_rollback;
    if (sqlite3_changes(s->db) == 0) {
        int ex = row_exists(s, r->type, mesh, r->name, NULL, e);
        if (ex == 1)
            ret = res_error(e, STORE_ECONFLICT, "resource conflict", r->type, mesh, r->name);
        else if (ex == 0)
            ret = res_error(e, STORE_ENOTFOUND, "resource not found", r->type, mesh, r->name);
        else
            ret = ex;
        goto out_rollback;
    }
    if ((ret = exec_st(s, ST_COMMIT, e, "commit")) != 0)
        goto out_rollback;
    pthread_mutex_unlock(&s->mu);

    r->version++;
    r->modification_time = now;
    changes_add(ch, r->type, mesh, r->name, CHANGE_UPDATE, r->version);
    goto out_free;

out_rollback:
    rollback(s);
out_unlock:
    pthread_mutex_unlock(&s->mu);
out_free:
    free(spec);
    free(labels);
    return ret;
}

int store_delete(struct store *store, const struct res_type *t, const char *mesh, const char *name,
                 struct changes *ch, struct err *e)
{
    struct conn *s = &store->w;
    if (!mesh)
        mesh = "";
    int ret = check_key(t, mesh, name, e);
    if (ret)
        return ret;
    struct changes doomed = {0};
    int64_t version = 0;

    pthread_mutex_lock(&s->mu);
    if ((ret = exec_st(s, ST_BEGIN_IMMEDIATE, e, "begin")) != 0)
        goto out_unlock;
    int ex = row_exists(s, t, mesh, name, &version, e);
    if (ex != 1) {
        ret = ex == 0 ? res_error(e, STORE_ENOTFOUND, "resource not found", t, mesh, name) : ex;
        goto out_rollback;
    }
    /* The rows the cascade will take with it, read in the same transaction
     * so the report is exactly what the DELETE removes. */
    sqlite3_stmt *st = s->st[ST_CHILDREN];
    bind_text(st, 1, name);
    bind_text(st, 2, mesh);
    bind_text(st, 3, t->name);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *tname = (const char *)sqlite3_column_text(st, 0);
        const struct res_type *ct = tname ? types_by_name(tname) : NULL;
        if (!ct) {
            /* A type this build does not know (written by a newer one):
             * the row goes, but nobody here can subscribe to it. */
            log_warn("store", "cascade deletes a row of unknown type \"%s\"", tname ? tname : "");
            continue;
        }
        changes_add(&doomed, ct, (const char *)sqlite3_column_text(st, 1),
                    (const char *)sqlite3_column_text(st, 2), CHANGE_DELETE,
                    sqlite3_column_int64(st, 3));
    }
    if (rc != SQLITE_DONE)
        ret = db_error(s, e, "list owned resources");
    st_done(st);
    if (ret)
        goto out_rollback;
    st = s->st[ST_DELETE];
    bind_key(st, t, mesh, name);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        ret = db_error(s, e, "delete");
    st_done(st);
    if (ret)
        goto out_rollback;
    if ((ret = exec_st(s, ST_COMMIT, e, "commit")) != 0)
        goto out_rollback;
    pthread_mutex_unlock(&s->mu);

    /* The owner first, then what went with it: a subscriber that drops a
     * whole mesh on its delete can skip the children cheaply. */
    changes_add(ch, t, mesh, name, CHANGE_DELETE, version);
    for (size_t i = 0; i < doomed.n; i++)
        changes_add(ch, doomed.v[i].type, doomed.v[i].mesh, doomed.v[i].name, CHANGE_DELETE,
                    doomed.v[i].version);
    changes_free(&doomed);
    return 0;

out_rollback:
    rollback(s);
out_unlock:
    pthread_mutex_unlock(&s->mu);
    changes_free(&doomed);
    return ret;
}

/* ---- reads ------------------------------------------------------------- */

int store_get(struct store *store, const struct res_type *t, const char *mesh, const char *name,
              struct resource **out, struct err *e)
{
    struct conn *s = reader(store);
    if (!mesh)
        mesh = "";
    if (!t || !name)
        return fail(e, STORE_EINVALID, "invalid: missing type or name");
    int ret = 0;
    struct resource *r = NULL;

    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = s->st[ST_GET];
    bind_key(st, t, mesh, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r = row_resource(st, 0, t, mesh, name);
        if (!r) {
            log_error("store", "row type=%s mesh=%s name=%s holds invalid JSON", t->name, mesh,
                      name);
            ret = fail(e, STORE_EIO, "store: stored resource has invalid JSON");
        }
    } else if (rc == SQLITE_DONE) {
        ret = res_error(e, STORE_ENOTFOUND, "resource not found", t, mesh, name);
    } else {
        ret = db_error(s, e, "get");
    }
    st_done(st);
    pthread_mutex_unlock(&s->mu);
    if (ret == 0)
        *out = r;
    return ret;
}

static void bind_filter(sqlite3_stmt *st, const struct res_type *t, const struct store_filter *f,
                        unsigned flags)
{
    bind_text(st, 1, t->name);
    if (flags & LF_MESH)
        bind_text(st, 2, f->mesh);
    if (flags & LF_NAME)
        bind_text(st, 3, f->name_substr);
    if (flags & LF_LABEL) {
        bind_text(st, 4, f->label_key);
        bind_text(st, 5, f->label_value);
    }
}

/* Runs a count statement already bound; STORE_EIO on failure. */
static int step_count(struct conn *s, sqlite3_stmt *st, size_t *n, struct err *e)
{
    int ret = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        ret = db_error(s, e, "count");
    st_done(st);
    return ret;
}

int store_list(struct store *store, const struct res_type *t, const struct store_filter *f,
               struct resource_list *out, struct err *e)
{
    struct conn *s = reader(store);
    static const struct store_filter none = {0};
    if (!f)
        f = &none;
    if (!t)
        return fail(e, STORE_EINVALID, "invalid: missing type");
    if ((f->label_key == NULL) != (f->label_value == NULL))
        return fail(e, STORE_EINVALID, "invalid: a label filter needs both a key and a value");
    if (f->offset > INT64_MAX || f->size > INT64_MAX)
        return fail(e, STORE_EINVALID, "invalid: invalid offset: out of range");
    unsigned flags =
        (f->mesh ? LF_MESH : 0) | (f->name_substr ? LF_NAME : 0) | (f->label_key ? LF_LABEL : 0);
    struct resource_list l = {0};
    int ret;

    pthread_mutex_lock(&s->mu);
    /* One read transaction: total and page come from the same snapshot. */
    if ((ret = exec_st(s, ST_BEGIN, e, "begin")) != 0)
        goto out_unlock;
    sqlite3_stmt *st = s->count[flags];
    bind_filter(st, t, f, flags);
    if ((ret = step_count(s, st, &l.total, e)) != 0)
        goto out_rollback;
    st = s->list[flags];
    bind_filter(st, t, f, flags);
    sqlite3_bind_int64(st, 6, f->size ? (int64_t)f->size : -1);
    sqlite3_bind_int64(st, 7, (int64_t)f->offset);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *mesh = (const char *)sqlite3_column_text(st, 1);
        struct resource *r = row_resource(st, 2, t, mesh, name);
        if (!r) {
            log_error("store", "row type=%s mesh=%s name=%s holds invalid JSON", t->name,
                      mesh ? mesh : "", name ? name : "");
            ret = fail(e, STORE_EIO, "store: stored resource has invalid JSON");
            break;
        }
        resource_list_push(&l, r);
    }
    if (!ret && rc != SQLITE_DONE)
        ret = db_error(s, e, "list");
    st_done(st);
    if (ret)
        goto out_rollback;
    if ((ret = exec_st(s, ST_COMMIT, e, "commit")) != 0)
        goto out_rollback;
    pthread_mutex_unlock(&s->mu);

    l.has_next = f->offset + l.n < l.total;
    l.next_offset = l.has_next ? f->offset + l.n : 0;
    *out = l;
    return 0;

out_rollback:
    rollback(s);
out_unlock:
    pthread_mutex_unlock(&s->mu);
    resource_list_free(&l);
    return ret;
}

int store_count(struct store *store, const struct res_type *t, const char *mesh, size_t *n,
                struct err *e)
{
    struct conn *s = reader(store);
    if (!t)
        return fail(e, STORE_EINVALID, "invalid: missing type");
    struct store_filter f = {.mesh = mesh};
    unsigned flags = mesh ? LF_MESH : 0;
    size_t count = 0;

    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = s->count[flags];
    bind_filter(st, t, &f, flags);
    int ret = step_count(s, st, &count, e);
    pthread_mutex_unlock(&s->mu);
    if (ret == 0)
        *n = count;
    return ret;
}

/*
 * Helpers for kumactl's unit tests: output capture, golden files under
 * tests/unit/ctl/testdata (regenerate with UPDATE_GOLDEN=1), JSON fixtures,
 * and a throwaway HTTP server on loopback that answers with canned
 * responses, so commands run end to end without a control plane.
 */
#ifndef TEST_CTL_HELPERS_H
#define TEST_CTL_HELPERS_H

#include <jansson.h>
#include <stdio.h>

#include "ctl/ctl.h"

/* An in-memory FILE*; text() returns what was written so far. */
struct capture {
    FILE *f;
    char *buf;
    size_t len;
};
void capture_open(struct capture *c);
const char *capture_text(struct capture *c);
void capture_close(struct capture *c);

/* Path of a file in testdata; caller frees. */
char *testdata_path(const char *name);
/* Contents of a testdata file (fails the test if absent); caller frees. */
char *testdata_read(const char *name);
json_t *testdata_json(const char *name);
/* Compares got with testdata/name (or writes it when UPDATE_GOLDEN=1). */
void assert_golden(const char *name, const char *got);

/* Canned response for one request "METHOD /path?query". */
struct fake_route {
    const char *request; /* e.g. "GET /meshes" (query string included) */
    int status;
    const char *body;
};
/* Starts a server answering routes (404 {} for others) for up to
 * max_requests requests; returns its base URL ("http://127.0.0.1:port").
 * Received request lines and bodies are appended to a log readable with
 * fake_server_log() once the server has stopped. */
const char *fake_server_start(const struct fake_route *routes, size_t nroutes, int max_requests);
/* Waits for the server to finish and returns its request log. */
char *fake_server_log(void);

/* A struct ctl for tests: captured out/err, a configuration with one control
 * plane at url (NULL = unreachable), fixed "now" = 2024-01-02T03:04:05Z. */
void test_ctl_init(struct ctl *c, struct capture *out, struct capture *err, const char *url);
/* Parses argv (flags of the command plus the global ones) into a. */
void test_ctl_args(struct ctl *c, struct args *a, const struct flag_def *flags, int argc,
                   char **argv);

#endif

/*
 * Transparent proxying in the engine without iptables: listener matching by
 * original destination (table-driven), the redirect listener's refusal of
 * connections that were not redirected (they would loop), listeners bound to
 * no port, and an ORIGINAL_DST cluster with nothing to go to. The redirected
 * paths themselves need iptables: tests/integration/test_tproxy_passthrough.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "dp/tproxy.h"
#include "dp_helpers.h"
#include "test.h"

static struct sockaddr_storage sa_of(const char *ip, unsigned port)
{
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&sa;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &a->sin_addr);
    }
    return sa;
}

TEST(tproxy_match_table)
{
    static const struct {
        const char *listener;
        unsigned lport;
        const char *dst;
        unsigned dport;
        int want;
    } cases[] = {
        {"198.18.50.1", 80, "198.18.50.1", 80, 2}, /* exact */
        {"0.0.0.0", 80, "198.18.50.1", 80, 1},     /* wildcard */
        {"198.18.50.1", 80, "198.18.50.1", 81, 0}, /* other port */
        {"198.18.50.2", 80, "198.18.50.1", 80, 0}, /* other address */
        {"::", 80, "198.18.50.1", 80, 0},          /* other family */
        {"0.0.0.0", 80, "2001:2::1", 80, 0},
        {"2001:2::1", 443, "2001:2:0:0::1", 443, 2}, /* same address, other spelling */
        {"::", 443, "2001:2::1", 443, 1},
        {"2001:2::2", 443, "2001:2::1", 443, 0},
        {"not-an-ip", 80, "198.18.50.1", 80, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dp_listener l = {0};
        l.address.address = (char *)cases[i].listener;
        l.address.port_value = cases[i].lport;
        struct sockaddr_storage sa = sa_of(cases[i].dst, cases[i].dport);
        if (dp_tproxy_match(&l, &sa) != cases[i].want)
            TEST_FAIL_("case %zu: %s:%u vs %s:%u: got %d, want %d", i, cases[i].listener,
                       cases[i].lport, cases[i].dst, cases[i].dport, dp_tproxy_match(&l, &sa),
                       cases[i].want);
    }
    struct dp_listener none = {0};
    struct sockaddr_storage sa = sa_of("198.18.50.1", 80);
    ASSERT_INT_EQ(dp_tproxy_match(&none, &sa), 0);
    char buf[64];
    dp_tproxy_format(&sa, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "198.18.50.1:80");
    sa = sa_of("2001:2::1", 8080);
    dp_tproxy_format(&sa, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, "[2001:2::1]:8080");
    ASSERT_INT_EQ(dp_tproxy_family_usable("198.18.0.1"), 1);
    ASSERT_INT_EQ(dp_tproxy_bind_source(-1, AF_INET, "not-an-ip"), -22);
}

/* Redirect listener (use_original_dst) on an ephemeral port → passthrough
 * ORIGINAL_DST cluster; plus an outbound bound to no port, for `target`. */
static struct dp_config *tp_config(int with_passthrough_cluster, int target_port)
{
    struct dp_config *c = dp_config_new("1");
    struct dp_listener *l = dp_config_add_listener(c, "outbound:passthrough:ipv4", "127.0.0.1", 0);
    l->traffic_direction = DP_DIR_OUTBOUND;
    l->use_original_dst = 1;
    l->tcp_proxy.stat_prefix = xstrdup("outbound_passthrough_ipv4");
    l->tcp_proxy.cluster = xstrdup("outbound:passthrough:ipv4");
    if (with_passthrough_cluster) {
        struct dp_cluster *cl = dp_config_add_cluster(c, "outbound:passthrough:ipv4");
        cl->type = DP_CLUSTER_ORIGINAL_DST;
    }
    struct dp_listener *o = dp_config_add_listener(c, "outbound:198.18.50.1:80", "198.18.50.1", 80);
    o->no_bind = 1;
    o->tcp_proxy.stat_prefix = xstrdup("echo");
    o->tcp_proxy.cluster = xstrdup("echo");
    struct dp_cluster *e = dp_config_add_cluster(c, "echo");
    dp_cla_add_endpoint(&e->load_assignment, "127.0.0.1", (uint32_t)target_port, 0);
    e->upstream_bind_address = xstrdup("127.0.0.6");
    return c;
}

TEST(tproxy_direct_connection_to_redirect_port_is_closed)
{
    signal(SIGPIPE, SIG_IGN);
    struct backend *b = backend_start(BACKEND_ID, "A");
    struct dp_engine_opts o = {.workers = 2};
    struct dp_engine *eng = NULL;
    struct err e = {{0}};
    ASSERT_INT_EQ(dp_engine_new(&o, &eng, &e), 0);
    ASSERT_INT_EQ(dp_engine_apply(eng, tp_config(1, backend_port(b)), &e), 0);
    /* bind_to_port false: no socket of its own (198.18.50.1 is not even local). */
    ASSERT_INT_EQ(dp_engine_listener_port(eng, "outbound:198.18.50.1:80"), -1);
    int port = dp_engine_listener_port(eng, "outbound:passthrough:ipv4");
    ASSERT(port > 0);
    /* Not redirected: the original destination is the proxy's own socket;
     * passing it on would connect to itself. Closed at once, counted. */
    for (int i = 0; i < 3; i++) {
        char *s = client_read_all(port);
        ASSERT_STR_EQ(s, "");
        free(s);
    }
    ASSERT_INT_EQ(stat_wait(eng, "tcp.outbound_passthrough_ipv4.downstream_cx_no_route", 3), 3);
    ASSERT_INT_EQ(stat_get(eng, "cluster.outbound_passthrough_ipv4.upstream_cx_total"), 0);
    ASSERT_INT_EQ(backend_accepted(b), 0);
    /* Passthrough off (the cluster is gone): the listener stays, same result. */
    ASSERT_INT_EQ(dp_engine_apply(eng, tp_config(0, backend_port(b)), &e), 0);
    ASSERT_INT_EQ(dp_engine_listener_port(eng, "outbound:passthrough:ipv4"), port);
    char *s = client_read_all(port);
    ASSERT_STR_EQ(s, "");
    free(s);
    ASSERT_INT_EQ(stat_wait(eng, "tcp.outbound_passthrough_ipv4.downstream_cx_no_route", 4), 4);
    /* The configuration dump says what it is. */
    char *dump = dp_engine_config_dump(eng);
    ASSERT_STR_CONTAINS(dump, "\"useOriginalDst\": true");
    ASSERT_STR_CONTAINS(dump, "\"bindToPort\": false");
    free(dump);
    dp_engine_free(eng);
    backend_stop(b);
}

/*
 * tlsgen — self-signed TLS certificates (see tlsgen.h).
 */
#define _GNU_SOURCE
#include "ca/tlsgen.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca/pki.h"

#define NS_PER_S    1000000000LL
#define MAX_HOSTS   256
#define MAX_HOSTLEN 253

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Builds and self-signs the certificate; server selects the EKU. */
#define CP_CERT_CN "kuma-control-plane"

/* cn: the subject's common name, or NULL for Kuma's empty subject. */
static int self_signed(int server, const char *cn, const char *const *hosts, size_t n,
                       enum ca_key_type kt, char **cert_pem, char **key_pem, struct err *e)
{
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    struct ca__san *sans = NULL;
    int rc = -1;

    if (n > MAX_HOSTS)
        return err_set(e, "more than %d hostnames", MAX_HOSTS);
    sans = xcalloc(n + 1, sizeof(*sans));
    for (size_t i = 0; i < n; i++) {
        if (!hosts[i] || !*hosts[i] || strlen(hosts[i]) > MAX_HOSTLEN) {
            err_set(e, "invalid hostname \"%.64s\"", hosts[i] ? hosts[i] : "");
            goto out;
        }
        for (const char *c = hosts[i]; *c; c++)
            if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f) {
                err_set(e, "invalid hostname \"%.64s\"", hosts[i]);
                goto out;
            }
        sans[i].kind = is_ip(hosts[i]) ? CA__SAN_IP : CA__SAN_DNS;
        sans[i].value = hosts[i];
    }
    key = ca__keygen(kt, 2048, e);
    if (!key)
        goto out;
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, key) ||
        (cn && !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                           (const unsigned char *)cn, -1, -1, 0)) ||
        !X509_set_issuer_name(x, X509_get_subject_name(x))) {
        ca__ossl_err(e, "failed to generate TLS certificate");
        goto out;
    }
    if (ca__set_serial_random(x, 1, e))
        goto out;
    int64_t nb = now_ns() / NS_PER_S - 5 * 60;
    if (ca__set_validity(x, nb, nb + 10LL * 365 * 24 * 3600, e))
        goto out;
    if (ca__add_key_usage(
            x, CA__KU_KEY_ENCIPHERMENT | CA__KU_DIGITAL_SIGNATURE | CA__KU_KEY_CERT_SIGN, e) ||
        ca__add_ext_key_usage(x, server, !server, e) || ca__add_basic_constraints(x, 1, e) ||
        ca__add_subject_key_id(x, e) || (n > 0 && ca__add_san(x, sans, n, 1, e)) ||
        ca__sign(x, key, e))
        goto out;
    if (ca__export_pems(x, key, cert_pem, key_pem, e))
        goto out;
    rc = 0;
out:
    free(sans);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int ca_generate_tls_cert(const char *cert_type, const char *const *hostnames, size_t nhostnames,
                         const char *key_type, char **cert_pem, char **key_pem, struct err *e)
{
    int server;
    if (cert_type && strcmp(cert_type, "server") == 0)
        server = 1;
    else if (cert_type && strcmp(cert_type, "client") == 0)
        server = 0;
    else
        return err_set(e, "invalid certificate type \"%s\"", cert_type ? cert_type : "");
    if (nhostnames == 0)
        return err_set(e, "at least one hostname must be given");
    enum ca_key_type kt = CA_KEY_RSA;
    if (key_type && *key_type && ca_key_type_parse(key_type, &kt) != 0)
        return err_set(e, "invalid key type \"%s\"", key_type);
    struct err ge;
    if (self_signed(server, NULL, hostnames, nhostnames, kt, cert_pem, key_pem, &ge) != 0)
        return err_set(e, "could not generate certificate: %s", ge.msg);
    return 0;
}

int ca_generate_cp_cert(const char *hostname, enum ca_key_type key_type, char **cert_pem,
                        char **key_pem, struct err *e)
{
    char hn[256] = "";
    const char *hosts[MAX_HOSTS];
    char *owned[MAX_HOSTS];
    size_t n = 0, nowned = 0;
    struct ifaddrs *ifs = NULL;

    if (!hostname) {
        if (gethostname(hn, sizeof(hn) - 1) != 0)
            return err_set(e, "could not get a hostname of the machine");
        hostname = hn;
    }
    if (*hostname)
        hosts[n++] = hostname;
    hosts[n++] = "localhost";
    /* Every address of every interface, loopback included (Kuma's GetAllIPs). */
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i && n < MAX_HOSTS; i = i->ifa_next) {
            char buf[INET6_ADDRSTRLEN];
            const void *addr = NULL;
            int fam = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;
            if (fam == AF_INET)
                addr = &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
            else if (fam == AF_INET6)
                addr = &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
            if (!addr || !inet_ntop(fam, addr, buf, sizeof(buf)))
                continue;
            int dup = 0;
            for (size_t j = 0; j < n; j++)
                dup |= strcmp(hosts[j], buf) == 0;
            if (dup)
                continue;
            owned[nowned] = xstrdup(buf);
            hosts[n++] = owned[nowned++];
        }
        freeifaddrs(ifs);
    }
    /* Without interfaces (a bare namespace), the loopback addresses still apply. */
    int has4 = 0;
    for (size_t j = 0; j < n; j++)
        has4 |= strcmp(hosts[j], "127.0.0.1") == 0;
    if (!has4 && n < MAX_HOSTS)
        hosts[n++] = "127.0.0.1";
    /* A subject, unlike Kuma's: curl and libcurl over OpenSSL (kumactl here)
     * refuse a certificate whose issuer name is empty ("SSL: couldn't get
     * X509-issuer name"), and this certificate is its own issuer. */
    int rc =
        self_signed(1, CP_CERT_CN, hosts, n,
                    key_type == CA_KEY_RSA ? CA_KEY_RSA : CA_KEY_ECDSA_P256, cert_pem, key_pem, e);
    for (size_t j = 0; j < nowned; j++)
        free(owned[j]);
    return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>

#include "metald/syntax.h"
#include "metald/config.h"
#include "metald/log.h"
#include "metald/manifest.h"
#include "metald/util.h"
#include "metald/yaml_tree.h"

/* Binding context: where errors go and which file they name. */
struct cfg {
        const char *file;
        char *err;
        size_t errlen;
};

static int bad(struct cfg *c, const struct ynode *n, const char *path, const char *fmt, ...) _printf_(4, 5);
static int bad(struct cfg *c, const struct ynode *n, const char *path, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(c->err, c->errlen, "%s:%u: %s: %s", c->file, n ? n->line : 1, path, msg);
        return -EINVAL;
}

/* "path.key" (or "key" at the top level); long paths are cut, they only label errors. */
static void join(char *dst, size_t cap, const char *path, const char *key)
{
        const char *parts[] = { path, *path ? "." : "", key };
        size_t o = 0;

        for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
                for (const char *p = parts[i]; *p && o + 1 < cap; p++)
                        dst[o++] = *p;
        dst[o] = '\0';
}

static const char *shown(const struct ynode *n, char *buf, size_t cap)
{
        return log_escape(buf, cap, n->value, strlen(n->value));
}

static int want(struct cfg *c, struct ynode *n, const char *path, enum ynode_kind kind)
{
        if (n->kind != kind)
                return bad(c, n, path, "expected %s, found %s", ynode_kind_name(kind), ynode_kind_name(n->kind));
        return 0;
}

/* Looks up an optional scalar; *ret_node is NULL when the key is absent. */
static int scalar(struct cfg *c, struct ynode *map, const char *key, const char *path,
                  char *full, size_t fullcap, struct ynode **ret_node)
{
        struct ynode *n = ynode_get(map, key);

        join(full, fullcap, path, key);
        *ret_node = n;
        if (!n)
                return 0;
        return want(c, n, full, YNODE_SCALAR);
}

static int get_str(struct cfg *c, struct ynode *map, const char *key, const char *path,
                   char *dst, size_t cap)
{
        char full[256], v[96];
        struct ynode *n;
        int r = scalar(c, map, key, path, full, sizeof(full), &n);

        if (r < 0 || !n)
                return r;
        if (strlen(n->value) >= cap)
                return bad(c, n, full, "'%s' is longer than %zu bytes", shown(n, v, sizeof(v)), cap - 1);
        memcpy(dst, n->value, strlen(n->value) + 1);
        return 0;
}

static int get_u32(struct cfg *c, struct ynode *map, const char *key, const char *path,
                   uint32_t min, uint32_t max, uint32_t *dst)
{
        char full[256], v[96];
        struct ynode *n;
        uint64_t x;
        int r = scalar(c, map, key, path, full, sizeof(full), &n);

        if (r < 0 || !n)
                return r;
        if (parse_u64(n->value, min, max, &x) < 0)
                return bad(c, n, full, "'%s' is not an integer between %u and %u",
                           shown(n, v, sizeof(v)), min, max);
        *dst = (uint32_t)x;
        return 0;
}

static int get_port(struct cfg *c, struct ynode *map, const char *key, const char *path,
                    bool allow_zero, uint16_t *dst)
{
        uint32_t v = *dst;
        int r = get_u32(c, map, key, path, allow_zero ? 0 : 1, 65535, &v);

        *dst = (uint16_t)v;
        return r;
}

/* Durations are written "90s", "10m", "1h"; stored in the unit the caller asks for. */
static int get_duration(struct cfg *c, struct ynode *map, const char *key, const char *path,
                        uint64_t unit_usec, uint64_t min, uint64_t max, uint32_t *dst)
{
        char full[256], v[96];
        struct ynode *n;
        uint64_t usec;
        int r = scalar(c, map, key, path, full, sizeof(full), &n);

        if (r < 0 || !n)
                return r;
        if (parse_duration_usec(n->value, &usec) < 0)
                return bad(c, n, full, "'%s' is not a duration (e.g. 500ms, 90s, 10m, 1h)",
                           shown(n, v, sizeof(v)));
        if (usec / unit_usec < min || usec / unit_usec > max || usec % unit_usec)
                return bad(c, n, full, "'%s' is out of range (%llu%s to %llu%s)", shown(n, v, sizeof(v)),
                           (unsigned long long)min, unit_usec == USEC_PER_SEC ? "s" : "ms",
                           (unsigned long long)max, unit_usec == USEC_PER_SEC ? "s" : "ms");
        *dst = (uint32_t)(usec / unit_usec);
        return 0;
}

static int get_bool(struct cfg *c, struct ynode *map, const char *key, const char *path, bool *dst)
{
        char full[256], v[96];
        struct ynode *n;
        int r = scalar(c, map, key, path, full, sizeof(full), &n);

        if (r < 0 || !n)
                return r;
        if (parse_bool(n->value, dst) < 0)
                return bad(c, n, full, "'%s' is not a boolean (true or false)", shown(n, v, sizeof(v)));
        return 0;
}

static int ipv4_value(struct cfg *c, struct ynode *n, const char *full, uint32_t *dst)
{
        char v[96];
        struct in_addr a;

        if (want(c, n, full, YNODE_SCALAR) < 0)
                return -EINVAL;
        if (parse_ipv4(n->value, &a) < 0)
                return bad(c, n, full, "'%s' is not an IPv4 address", shown(n, v, sizeof(v)));
        *dst = ntohl(a.s_addr);
        return 0;
}

static int get_ipv4(struct cfg *c, struct ynode *map, const char *key, const char *path, uint32_t *dst)
{
        char full[256];
        struct ynode *n = ynode_get(map, key);

        join(full, sizeof(full), path, key);
        return n ? ipv4_value(c, n, full, dst) : 0;
}

static int get_in_addr(struct cfg *c, struct ynode *map, const char *key, const char *path,
                       struct in_addr *dst)
{
        uint32_t v = ntohl(dst->s_addr);
        int r = get_ipv4(c, map, key, path, &v);

        dst->s_addr = htonl(v);
        return r;
}

static int no_unknown(struct cfg *c, struct ynode *map, const char *path)
{
        struct ynode *u = ynode_first_unused(map);
        char full[256];

        if (!u)
                return 0;
        join(full, sizeof(full), path, u->key);
        return bad(c, u, full, "unknown key");
}

/* Fetches an optional child section that must be a mapping. */
static int section(struct cfg *c, struct ynode *map, const char *key, struct ynode **ret)
{
        struct ynode *n = ynode_get(map, key);

        *ret = n;
        if (n && n->kind == YNODE_SCALAR && n->plain && (!*n->value || strcmp(n->value, "~") == 0)) {
                *ret = NULL;    /* "key:" with nothing after it */
                return 0;
        }
        return n ? want(c, n, key, YNODE_MAP) : 0;
}

static int get_iface(struct cfg *c, struct ynode *map, const char *path, char dst[IF_NAMESIZE])
{
        return get_str(c, map, "interface", path, dst, IF_NAMESIZE);
}

static int parse_range(struct cfg *c, struct ynode *n, const char *full, const struct dhcp_subnet *s,
                       struct dhcp_range *ret)
{
        char a[INET_ADDRSTRLEN], v[96];
        const char *dash;
        struct in_addr lo, hi;

        if (want(c, n, full, YNODE_SCALAR) < 0)
                return -EINVAL;
        dash = strchr(n->value, '-');
        if (!dash || (size_t)(dash - n->value) >= sizeof(a))
                goto invalid;
        memcpy(a, n->value, (size_t)(dash - n->value));
        a[dash - n->value] = '\0';
        /* tolerate "a - b" */
        for (char *e = a + strlen(a); e > a && e[-1] == ' '; e--)
                e[-1] = '\0';
        dash++;
        while (*dash == ' ')
                dash++;
        if (parse_ipv4(a, &lo) < 0 || parse_ipv4(dash, &hi) < 0)
                goto invalid;
        ret->start = ntohl(lo.s_addr);
        ret->end = ntohl(hi.s_addr);
        if (ret->start > ret->end)
                return bad(c, n, full, "'%s' starts after it ends", shown(n, v, sizeof(v)));
        if ((ret->start & s->mask) != s->network || (ret->end & s->mask) != s->network)
                return bad(c, n, full, "'%s' is not inside the subnet", shown(n, v, sizeof(v)));
        return 0;
invalid:
        return bad(c, n, full, "'%s' is not a range like 10.0.0.100-10.0.0.199", shown(n, v, sizeof(v)));
}

static int parse_ranges(struct cfg *c, struct ynode *map, const char *path, struct dhcp_subnet *s)
{
        char full[256], item[280];
        struct ynode *n = ynode_get(map, "ranges");

        join(full, sizeof(full), path, "ranges");
        if (!n)
                return 0;
        if (want(c, n, full, YNODE_SEQ) < 0)
                return -EINVAL;
        if (n->n_children > CONFIG_MAX_RANGES)
                return bad(c, n, full, "more than %d ranges", CONFIG_MAX_RANGES);
        for (struct ynode *r = n->child; r; r = r->next) {
                snprintf(item, sizeof(item), "%s[%zu]", full, s->n_ranges);
                if (parse_range(c, r, item, s, &s->ranges[s->n_ranges]) < 0)
                        return -EINVAL;
                for (size_t i = 0; i < s->n_ranges; i++)
                        if (s->ranges[i].start <= s->ranges[s->n_ranges].end &&
                            s->ranges[s->n_ranges].start <= s->ranges[i].end)
                                return bad(c, r, item, "overlaps %s[%zu]", full, i);
                s->n_ranges++;
        }
        return 0;
}

static int parse_dns(struct cfg *c, struct ynode *map, const char *path, struct dhcp_subnet *s)
{
        char full[256], item[280];
        struct ynode *n = ynode_get(map, "dns");

        join(full, sizeof(full), path, "dns");
        if (!n)
                return 0;
        if (n->kind == YNODE_SCALAR) {
                s->n_dns = 1;
                return ipv4_value(c, n, full, &s->dns[0]);
        }
        if (want(c, n, full, YNODE_SEQ) < 0)
                return -EINVAL;
        if (n->n_children > CONFIG_MAX_DNS_SERVERS)
                return bad(c, n, full, "more than %d servers", CONFIG_MAX_DNS_SERVERS);
        for (struct ynode *d = n->child; d; d = d->next) {
                snprintf(item, sizeof(item), "%s[%zu]", full, s->n_dns);
                if (ipv4_value(c, d, item, &s->dns[s->n_dns++]) < 0)
                        return -EINVAL;
        }
        return 0;
}

static int parse_reservation(struct cfg *c, struct ynode *n, const char *path, const struct dhcp_subnet *s,
                             struct dhcp_reservation *res)
{
        char full[300], v[96];
        struct ynode *mac;

        if (want(c, n, path, YNODE_MAP) < 0)
                return -EINVAL;
        mac = ynode_get(n, "mac");
        join(full, sizeof(full), path, "mac");
        if (!mac)
                return bad(c, n, full, "is required");
        if (want(c, mac, full, YNODE_SCALAR) < 0)
                return -EINVAL;
        if (parse_mac(mac->value, res->mac) < 0)
                return bad(c, mac, full, "'%s' is not a MAC address", shown(mac, v, sizeof(v)));
        join(full, sizeof(full), path, "address");
        if (!ynode_get(n, "address"))
                return bad(c, n, full, "is required");
        if (get_ipv4(c, n, "address", path, &res->addr) < 0)
                return -EINVAL;
        if ((res->addr & s->mask) != s->network)
                return bad(c, ynode_get(n, "address"), full, "is not inside the subnet");
        if (get_str(c, n, "hostname", path, res->hostname, sizeof(res->hostname)) < 0)
                return -EINVAL;
        return no_unknown(c, n, path);
}

static int parse_reservations(struct cfg *c, struct ynode *map, const char *path, struct dhcp_subnet *s)
{
        char full[256], item[280];
        struct ynode *n = ynode_get(map, "reservations");

        join(full, sizeof(full), path, "reservations");
        if (!n)
                return 0;
        if (want(c, n, full, YNODE_SEQ) < 0)
                return -EINVAL;
        if (n->n_children > CONFIG_MAX_RESERVATIONS)
                return bad(c, n, full, "more than %d reservations", CONFIG_MAX_RESERVATIONS);
        s->reservations = calloc(n->n_children ? n->n_children : 1, sizeof(*s->reservations));
        if (!s->reservations)
                return -ENOMEM;
        for (struct ynode *r = n->child; r; r = r->next) {
                struct dhcp_reservation *res = &s->reservations[s->n_reservations];

                snprintf(item, sizeof(item), "%s[%zu]", full, s->n_reservations);
                if (parse_reservation(c, r, item, s, res) < 0)
                        return -EINVAL;
                for (size_t i = 0; i < s->n_reservations; i++) {
                        if (memcmp(s->reservations[i].mac, res->mac, 6) == 0)
                                return bad(c, r, item, "MAC is already reserved by %s[%zu]", full, i);
                        if (s->reservations[i].addr == res->addr)
                                return bad(c, r, item, "address is already reserved by %s[%zu]", full, i);
                }
                s->n_reservations++;
        }
        return 0;
}

static int parse_subnet(struct cfg *c, struct ynode *n, const char *path, struct dhcp_subnet *s)
{
        char full[300], v[96];
        struct ynode *net;
        struct in_addr a;

        if (want(c, n, path, YNODE_MAP) < 0)
                return -EINVAL;
        join(full, sizeof(full), path, "network");
        net = ynode_get(n, "network");
        if (!net)
                return bad(c, n, full, "is required (e.g. 10.0.0.0/24)");
        if (want(c, net, full, YNODE_SCALAR) < 0)
                return -EINVAL;
        if (parse_cidr(net->value, &a, &s->prefix) < 0 || s->prefix < 8 || s->prefix > 30)
                return bad(c, net, full, "'%s' is not a network like 10.0.0.0/24 (prefix 8 to 30)",
                           shown(net, v, sizeof(v)));
        s->network = ntohl(a.s_addr);
        s->mask = prefix_to_mask(s->prefix);
        if (parse_ranges(c, n, path, s) < 0 || parse_dns(c, n, path, s) < 0 ||
            get_ipv4(c, n, "router", path, &s->router) < 0 ||
            get_str(c, n, "domain", path, s->domain, sizeof(s->domain)) < 0 ||
            get_duration(c, n, "lease_time", path, USEC_PER_SEC, 10, 365 * 86400, &s->lease_time_s) < 0 ||
            parse_reservations(c, n, path, s) < 0)
                return -EINVAL;
        return no_unknown(c, n, path);
}

static int parse_subnets(struct cfg *c, struct ynode *dhcp, struct dhcp_config *d)
{
        struct ynode *n = ynode_get(dhcp, "subnets");
        char item[64];

        if (!n)
                return 0;
        if (want(c, n, "dhcp.subnets", YNODE_SEQ) < 0)
                return -EINVAL;
        if (n->n_children > CONFIG_MAX_SUBNETS)
                return bad(c, n, "dhcp.subnets", "more than %d subnets", CONFIG_MAX_SUBNETS);
        d->subnets = calloc(n->n_children ? n->n_children : 1, sizeof(*d->subnets));
        if (!d->subnets)
                return -ENOMEM;
        for (struct ynode *s = n->child; s; s = s->next) {
                struct dhcp_subnet *sub = &d->subnets[d->n_subnets];

                snprintf(item, sizeof(item), "dhcp.subnets[%zu]", d->n_subnets);
                d->n_subnets++;         /* counted first so config_free sees its reservations */
                if (parse_subnet(c, s, item, sub) < 0)
                        return -EINVAL;
                for (size_t i = 0; i + 1 < d->n_subnets; i++) {
                        const struct dhcp_subnet *o = &d->subnets[i];
                        uint32_t m = o->mask & sub->mask;

                        if ((o->network & m) == (sub->network & m))
                                return bad(c, s, item, "overlaps dhcp.subnets[%zu]", i);
                }
        }
        return 0;
}

static int parse_dhcp(struct cfg *c, struct ynode *root, struct dhcp_config *d)
{
        char mode[16] = "";
        struct ynode *n;
        uint64_t pool = 0;

        if (section(c, root, "dhcp", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (get_bool(c, n, "enabled", "dhcp", &d->enabled) < 0 ||
            get_str(c, n, "mode", "dhcp", mode, sizeof(mode)) < 0 ||
            get_iface(c, n, "dhcp", d->interface) < 0 ||
            get_in_addr(c, n, "listen_address", "dhcp", &d->listen) < 0 ||
            get_port(c, n, "port", "dhcp", false, &d->port) < 0 ||
            get_port(c, n, "proxy_port", "dhcp", true, &d->proxy_port) < 0 ||
            get_port(c, n, "client_port", "dhcp", false, &d->client_port) < 0 ||
            get_bool(c, n, "authoritative", "dhcp", &d->authoritative) < 0 ||
            get_duration(c, n, "lease_time", "dhcp", USEC_PER_SEC, 10, 365 * 86400, &d->lease_time_s) < 0 ||
            get_duration(c, n, "offer_hold", "dhcp", USEC_PER_SEC, 1, 3600, &d->offer_hold_s) < 0 ||
            get_duration(c, n, "decline_hold", "dhcp", USEC_PER_SEC, 1, 86400, &d->decline_hold_s) < 0 ||
            get_u32(c, n, "receive_buffer", "dhcp", 65536, 256u << 20, &d->rcvbuf_bytes) < 0 ||
            parse_subnets(c, n, d) < 0)
                return -EINVAL;
        if (*mode) {
                if (strcmp(mode, "full") == 0)
                        d->mode = DHCP_MODE_FULL;
                else if (strcmp(mode, "proxy") == 0)
                        d->mode = DHCP_MODE_PROXY;
                else
                        return bad(c, ynode_get(n, "mode"), "dhcp.mode", "'%.32s' is not 'full' or 'proxy'", mode);
        }
        for (size_t i = 0; i < d->n_subnets; i++)
                for (size_t j = 0; j < d->subnets[i].n_ranges; j++)
                        pool += d->subnets[i].ranges[j].end - d->subnets[i].ranges[j].start + 1;
        if (pool > DHCP_MAX_POOL_ADDRESSES)
                return bad(c, n, "dhcp.subnets", "pools hold %llu addresses, more than %u",
                           (unsigned long long)pool, DHCP_MAX_POOL_ADDRESSES);
        if (d->enabled && d->mode == DHCP_MODE_FULL && d->n_subnets == 0)
                return bad(c, n, "dhcp.subnets", "full mode needs at least one subnet");
        return no_unknown(c, n, "dhcp");
}

static int parse_tftp(struct cfg *c, struct ynode *root, struct tftp_config *t)
{
        struct ynode *n;

        if (section(c, root, "tftp", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (get_bool(c, n, "enabled", "tftp", &t->enabled) < 0 ||
            get_iface(c, n, "tftp", t->interface) < 0 ||
            get_in_addr(c, n, "listen_address", "tftp", &t->listen) < 0 ||
            get_port(c, n, "port", "tftp", false, &t->port) < 0 ||
            get_str(c, n, "root", "tftp", t->root, sizeof(t->root)) < 0 ||
            get_u32(c, n, "max_blksize", "tftp", 512, TFTP_MAX_BLKSIZE, &t->max_blksize) < 0 ||
            get_u32(c, n, "max_windowsize", "tftp", 1, TFTP_MAX_WINDOWSIZE, &t->max_windowsize) < 0 ||
            get_u32(c, n, "max_transfers", "tftp", 1, 65536, &t->max_transfers) < 0 ||
            get_u32(c, n, "max_per_client", "tftp", 1, 1024, &t->max_per_client) < 0 ||
            get_duration(c, n, "timeout", "tftp", USEC_PER_MSEC, 100, 255000, &t->timeout_ms) < 0 ||
            get_u32(c, n, "retries", "tftp", 1, 32, &t->retries) < 0)
                return -EINVAL;
        return no_unknown(c, n, "tftp");
}

static int parse_http(struct cfg *c, struct ynode *root, struct http_config *h)
{
        struct ynode *n;

        if (section(c, root, "http", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (get_bool(c, n, "enabled", "http", &h->enabled) < 0 ||
            get_in_addr(c, n, "listen_address", "http", &h->listen) < 0 ||
            get_port(c, n, "port", "http", false, &h->port) < 0 ||
            get_str(c, n, "root", "http", h->root, sizeof(h->root)) < 0 ||
            get_u32(c, n, "threads", "http", 0, HTTP_MAX_THREADS, &h->threads) < 0 ||
            get_u32(c, n, "max_connections", "http", 1, 65536, &h->max_connections) < 0 ||
            get_u32(c, n, "max_per_client", "http", 1, 65536, &h->max_per_client) < 0 ||
            get_duration(c, n, "idle_timeout", "http", USEC_PER_SEC, 1, 3600, &h->idle_timeout_s) < 0 ||
            get_u32(c, n, "max_header_bytes", "http", HTTP_MIN_HEADER_BYTES, HTTP_MAX_HEADER_BYTES,
                    &h->max_header_bytes) < 0 ||
            get_u32(c, n, "stream_min_bytes", "http", 0, UINT32_MAX, &h->stream_min_bytes) < 0 ||
            get_u32(c, n, "stream_connections", "http", 0, 65536, &h->stream_connections) < 0)
                return -EINVAL;
        return no_unknown(c, n, "http");
}

static int set_boot_file(struct boot_config *b, uint16_t arch, const char *file)
{
        for (size_t i = 0; i < b->n_files; i++)
                if (b->files[i].arch == arch)
                        return str_copy(b->files[i].file, sizeof(b->files[i].file), file);
        if (b->n_files >= CONFIG_MAX_BOOT_FILES)
                return -E2BIG;
        b->files[b->n_files].arch = arch;
        return str_copy(b->files[b->n_files++].file, sizeof(b->files[0].file), file);
}

static int parse_boot_files(struct cfg *c, struct ynode *boot, struct boot_config *b)
{
        struct ynode *n = ynode_get(boot, "files");
        char full[300], v[96];

        if (!n)
                return 0;
        if (want(c, n, "boot.files", YNODE_MAP) < 0)
                return -EINVAL;
        for (struct ynode *f = n->child; f; f = f->next) {
                uint64_t arch;

                f->used = true;
                snprintf(full, sizeof(full), "boot.files.%.64s", f->key);
                if (parse_u64(f->key, 0, 65535, &arch) < 0)
                        return bad(c, f, full, "key is not an architecture number (RFC 4578, 0-65535)");
                if (want(c, f, full, YNODE_SCALAR) < 0)
                        return -EINVAL;
                if (!*f->value || strlen(f->value) > DHCP_MAX_BOOTFILE || strpbrk(f->value, " \t\n"))
                        return bad(c, f, full, "'%s' is not a usable file name", shown(f, v, sizeof(v)));
                if (set_boot_file(b, (uint16_t)arch, f->value) < 0)
                        return bad(c, f, full, "too many boot files");
        }
        return 0;
}

static int parse_extra_modules(struct cfg *c, struct ynode *build, struct boot_enroll_build *b)
{
        static const char full[] = "boot.enroll.build.extra_modules";
        struct ynode *n = ynode_get(build, "extra_modules");
        char item[64], v[96];

        if (!n || (n->kind == YNODE_SCALAR && n->plain && (!*n->value || strcmp(n->value, "~") == 0)))
                return 0;
        if (want(c, n, full, YNODE_SEQ) < 0)
                return -EINVAL;
        if (n->n_children > CONFIG_MAX_EXTRA_MODULES)
                return bad(c, n, full, "more than %d modules", CONFIG_MAX_EXTRA_MODULES);
        for (struct ynode *m = n->child; m; m = m->next) {
                snprintf(item, sizeof(item), "%s[%zu]", full, b->n_extra_modules);
                if (want(c, m, item, YNODE_SCALAR) < 0)
                        return -EINVAL;
                if (!syntax_module_name(m->value))
                        return bad(c, m, item, "'%s' is not a module name (1 to %d letters, digits, - and _)",
                                   shown(m, v, sizeof(v)), INITRAMFS_MAX_MODULE_NAME);
                str_copy(b->extra_modules[b->n_extra_modules++], sizeof(b->extra_modules[0]), m->value);
        }
        return 0;
}

static int parse_boot_enroll_build(struct cfg *c, struct ynode *enroll, struct boot_enroll_build *b)
{
        static const char path[] = "boot.enroll.build";
        struct ynode *n = ynode_get(enroll, "build");
        char compression[16] = "";

        if (!n)
                return 0;
        if (n->kind == YNODE_SCALAR && n->plain && (!*n->value || strcmp(n->value, "~") == 0))
                return bad(c, n, "boot.enroll.build.modules", "is required");
        if (want(c, n, path, YNODE_MAP) < 0)
                return -EINVAL;
        b->enabled = true;
        if (get_str(c, n, "modules", path, b->modules, sizeof(b->modules)) < 0 ||
            get_str(c, n, "agent", path, b->agent, sizeof(b->agent)) < 0 ||
            get_str(c, n, "busybox", path, b->busybox, sizeof(b->busybox)) < 0 ||
            get_str(c, n, "compression", path, compression, sizeof(compression)) < 0 ||
            parse_extra_modules(c, n, b) < 0)
                return -EINVAL;
        if (!*b->modules)
                return bad(c, ynode_get(n, "modules") ? ynode_get(n, "modules") : n, "boot.enroll.build.modules",
                           "is required (a module tree such as /lib/modules/VERSION)");
        if (!*b->busybox)
                return bad(c, ynode_get(n, "busybox"), "boot.enroll.build.busybox", "must not be empty");
        if (strcmp(compression, "zstd") == 0)
                b->compression = ENROLL_COMPRESS_ZSTD;
        else if (*compression && strcmp(compression, "gzip") != 0)
                return bad(c, ynode_get(n, "compression"), "boot.enroll.build.compression",
                           "'%.16s' is not gzip or zstd", compression);
        return no_unknown(c, n, path);
}

/* Values end up in iPXE scripts: refuse what iPXE would split, expand or treat as syntax. */
static int parse_boot_enroll(struct cfg *c, struct ynode *boot, struct boot_enroll *e)
{
        static const char *const keys[] = { "kernel", "initrd", "template" };
        char *const dst[] = { e->kernel, e->initrd, e->tmpl };
        char full[64], v[96];
        const char *why;
        struct ynode *n;

        if (section(c, boot, "enroll", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                if (get_str(c, n, keys[i], "boot.enroll", dst[i], BOOT_MAX_ARTIFACT_PATH + 1) < 0)
                        return -EINVAL;
                join(full, sizeof(full), "boot.enroll", keys[i]);
                if (ynode_get(n, keys[i]) && syntax_artifact_path(dst[i]) < 0)
                        return bad(c, ynode_get(n, keys[i]), full,
                                   "'%s' is not a relative path of letters, digits and . _ - + ~ /",
                                   shown(ynode_get(n, keys[i]), v, sizeof(v)));
        }
        if (get_str(c, n, "cmdline", "boot.enroll", e->cmdline, sizeof(e->cmdline)) < 0)
                return -EINVAL;
        if (syntax_cmdline(e->cmdline, &why) < 0)
                return bad(c, ynode_get(n, "cmdline"), "boot.enroll.cmdline", "%s", why);
        if (parse_boot_enroll_build(c, n, &e->build) < 0)
                return -EINVAL;
        if (e->build.enabled && *e->initrd)
                return bad(c, ynode_get(n, "initrd"), "boot.enroll.initrd",
                           "boot.enroll.initrd and boot.enroll.build are mutually exclusive "
                           "(with build, metald makes the initrd)");
        return no_unknown(c, n, "boot.enroll");
}

static int parse_boot(struct cfg *c, struct ynode *root, struct boot_config *b)
{
        char efi[64] = "";
        struct ynode *n;

        if (section(c, root, "boot", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (get_str(c, n, "http_url", "boot", b->http_url, sizeof(b->http_url)) < 0 ||
            get_str(c, n, "script", "boot", b->script, sizeof(b->script)) < 0 ||
            get_str(c, n, "efi_x64", "boot", efi, sizeof(efi)) < 0 ||
            get_duration(c, n, "retry_delay", "boot", USEC_PER_SEC, 1, BOOT_MAX_RETRY_DELAY_S,
                         &b->retry_delay_s) < 0 ||
            parse_boot_enroll(c, n, &b->enroll) < 0)
                return -EINVAL;
        if (*b->http_url && !str_has_prefix(b->http_url, "http://"))
                return bad(c, ynode_get(n, "http_url"), "boot.http_url", "'%.64s' must start with http://",
                           b->http_url);
        if (*efi) {
                static const uint16_t x64[] = { 7, 9 };

                if (strcmp(efi, "ipxe.efi") != 0 && strcmp(efi, "snponly.efi") != 0)
                        return bad(c, ynode_get(n, "efi_x64"), "boot.efi_x64",
                                   "'%.32s' is not ipxe.efi or snponly.efi", efi);
                for (size_t i = 0; i < ARRAY_SIZE(x64); i++)
                        set_boot_file(b, x64[i], efi);
        }
        if (parse_boot_files(c, n, b) < 0)
                return -EINVAL;
        return no_unknown(c, n, "boot");
}

static int parse_lifecycle(struct cfg *c, struct ynode *root, struct lifecycle_config *l)
{
        struct lifecycle_timeouts *t = &l->timeouts;
        struct ynode *n, *local;
        char full[64], v[96];

        if (section(c, root, "lifecycle", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (get_duration(c, n, "enroll_timeout", "lifecycle", USEC_PER_SEC, 10, 7 * 86400, &t->enroll_s) < 0 ||
            get_duration(c, n, "agent_timeout", "lifecycle", USEC_PER_SEC, 10, 86400, &t->agent_s) < 0 ||
            get_duration(c, n, "imaging_timeout", "lifecycle", USEC_PER_SEC, 60, 7 * 86400, &t->imaging_s) < 0 ||
            get_duration(c, n, "imaged_timeout", "lifecycle", USEC_PER_SEC, 10, 7 * 86400, &t->imaged_s) < 0 ||
            get_duration(c, n, "join_timeout", "lifecycle", USEC_PER_SEC, 10, 7 * 86400, &t->join_s) < 0 ||
            get_duration(c, n, "nonce_ttl", "lifecycle", USEC_PER_SEC, 10, 86400, &l->nonce_ttl_s) < 0 ||
            get_duration(c, n, "heartbeat", "lifecycle", USEC_PER_SEC, 1, 3600, &l->heartbeat_s) < 0)
                return -EINVAL;
        if (l->heartbeat_s * 3 > t->agent_s)
                return bad(c, ynode_get(n, "heartbeat") ? ynode_get(n, "heartbeat") : n, "lifecycle.heartbeat",
                           "must be at most a third of lifecycle.agent_timeout (%us)", t->agent_s);
        if (section(c, n, "local_boot", &local) < 0)
                return -EINVAL;
        if (local) {
                if (get_str(c, local, "bios", "lifecycle.local_boot", l->local_boot_bios, sizeof(l->local_boot_bios)) < 0 ||
                    get_str(c, local, "efi", "lifecycle.local_boot", l->local_boot_efi, sizeof(l->local_boot_efi)) < 0 ||
                    no_unknown(c, local, "lifecycle.local_boot") < 0)
                        return -EINVAL;
                for (int i = 0; i < 2; i++) {
                        const char *cmd = i ? l->local_boot_efi : l->local_boot_bios;

                        join(full, sizeof(full), "lifecycle.local_boot", i ? "efi" : "bios");
                        for (const char *p = cmd; *p; p++)
                                if (*p < 0x20 || *p > 0x7e)
                                        return bad(c, ynode_get(local, i ? "efi" : "bios"), full,
                                                   "'%s' is not one line of printable ASCII",
                                                   shown(ynode_get(local, i ? "efi" : "bios"), v, sizeof(v)));
                }
        }
        return no_unknown(c, n, "lifecycle");
}

/* A selector given as one value or a list of values. */
static int get_patterns(struct cfg *c, struct ynode *map, const char *key, const char *path,
                        char (*dst)[PROFILE_MAX_WORD + 1], size_t *n)
{
        struct ynode *node = ynode_get(map, key), *first;
        char full[128], item[160];

        join(full, sizeof(full), path, key);
        if (!node)
                return 0;
        first = node->kind == YNODE_SEQ ? node->child : node;
        if (node->kind == YNODE_SEQ && node->n_children > PROFILE_MAX_PATTERNS)
                return bad(c, node, full, "more than %d values", PROFILE_MAX_PATTERNS);
        if (node->kind == YNODE_MAP)
                return bad(c, node, full, "expected a value or a list of values");
        for (struct ynode *v = first; v; v = node->kind == YNODE_SEQ ? v->next : NULL) {
                snprintf(item, sizeof(item), "%s[%zu]", full, *n);
                if (want(c, v, item, YNODE_SCALAR) < 0)
                        return -EINVAL;
                if (!*v->value || strlen(v->value) > PROFILE_MAX_WORD)
                        return bad(c, v, item, "must be 1 to %d characters", PROFILE_MAX_WORD);
                str_copy(dst[(*n)++], PROFILE_MAX_WORD + 1, v->value);
        }
        return 0;
}

static int parse_match_labels(struct cfg *c, struct ynode *match, const char *path, struct profile_match *m)
{
        struct ynode *n = ynode_get(match, "labels");
        char full[128], item[200];

        join(full, sizeof(full), path, "labels");
        if (!n)
                return 0;
        if (want(c, n, full, YNODE_MAP) < 0)
                return -EINVAL;
        if (n->n_children > PROFILE_MAX_LABELS)
                return bad(c, n, full, "more than %d labels", PROFILE_MAX_LABELS);
        for (struct ynode *l = n->child; l; l = l->next) {
                struct profile_label *pl = &m->labels[m->n_labels];
                char pair[2 * PROFILE_MAX_WORD + 2];

                l->used = true;
                snprintf(item, sizeof(item), "%s.%.64s", full, l->key);
                if (want(c, l, item, YNODE_SCALAR) < 0)
                        return -EINVAL;
                snprintf(pair, sizeof(pair), "%.63s=%.63s", l->key, l->value);
                if (strlen(l->key) > PROFILE_MAX_WORD || strlen(l->value) > PROFILE_MAX_WORD ||
                    syntax_labels(pair) < 0)
                        return bad(c, l, item, "labels are letters, digits and - _ . / (at most %d each)",
                                   PROFILE_MAX_WORD);
                str_copy(pl->key, sizeof(pl->key), l->key);
                str_copy(pl->value, sizeof(pl->value), l->value);
                m->n_labels++;
        }
        return 0;
}

static int parse_match(struct cfg *c, struct ynode *prof, const char *path, struct profile_match *m)
{
        struct ynode *n = ynode_get(prof, "match");
        char full[128];

        join(full, sizeof(full), path, "match");
        if (!n)
                return 0;       /* no selectors: the default profile */
        if (want(c, n, full, YNODE_MAP) < 0)
                return -EINVAL;
        if (get_patterns(c, n, "mac", full, m->mac, &m->n_mac) < 0 ||
            get_patterns(c, n, "uuid", full, m->uuid, &m->n_uuid) < 0 ||
            get_patterns(c, n, "serial", full, m->serial, &m->n_serial) < 0 ||
            get_str(c, n, "vendor", full, m->vendor, sizeof(m->vendor)) < 0 ||
            get_str(c, n, "product", full, m->product, sizeof(m->product)) < 0 ||
            parse_match_labels(c, n, full, m) < 0)
                return -EINVAL;
        return no_unknown(c, n, full);
}

/* install.disk_serial and install.disk_path each name one disk, so neither goes with an explicit disk rule. */
static int parse_disk_rule(struct cfg *c, struct ynode *n, const char *full, struct profile *p)
{
        char sub[160], v[96];
        struct ynode *serial = ynode_get(n, "disk_serial"), *path = ynode_get(n, "disk_path");

        join(sub, sizeof(sub), full, "disk_serial");
        if (serial && (!*p->disk_serial || strspn(p->disk_serial, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                                  "0123456789-_.:") != strlen(p->disk_serial)))
                return bad(c, serial, sub, "'%s' is not a disk serial of letters, digits and - _ . :",
                           shown(serial, v, sizeof(v)));
        join(sub, sizeof(sub), full, "disk_path");
        if (path && ((!str_has_prefix(p->disk_path, "/dev/disk/by-path/") &&
                      !str_has_prefix(p->disk_path, "/dev/disk/by-id/")) ||
                     strstr(p->disk_path, "/..") || strspn(p->disk_path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                                                         "qrstuvwxyz0123456789-_.:/+") != strlen(p->disk_path)))
                return bad(c, path, sub, "'%s' is not a path below /dev/disk/by-path/ or /dev/disk/by-id/",
                           shown(path, v, sizeof(v)));
        if ((serial || path) && ynode_get(n, "disk"))
                return bad(c, ynode_get(n, "disk"), full, "disk, disk_serial and disk_path exclude each other");
        if (serial && path)
                return bad(c, path, full, "disk, disk_serial and disk_path exclude each other");
        if (serial || path)
                p->disk[0] = '\0';
        return 0;
}

static int parse_install(struct cfg *c, struct ynode *prof, const char *path, struct profile *p)
{
        struct ynode *n = ynode_get(prof, "install");
        char full[128], sub[160];

        join(full, sizeof(full), path, "install");
        str_copy(p->install_mode, sizeof(p->install_mode), "install");
        str_copy(p->disk, sizeof(p->disk), "largest");
        if (!n)
                return 0;
        if (want(c, n, full, YNODE_MAP) < 0 || get_str(c, n, "mode", full, p->install_mode, sizeof(p->install_mode)) < 0 ||
            get_str(c, n, "disk", full, p->disk, sizeof(p->disk)) < 0 ||
            get_str(c, n, "disk_serial", full, p->disk_serial, sizeof(p->disk_serial)) < 0 ||
            get_str(c, n, "disk_path", full, p->disk_path, sizeof(p->disk_path)) < 0 ||
            get_bool(c, n, "allow_removable", full, &p->allow_removable) < 0)
                return -EINVAL;
        join(sub, sizeof(sub), full, "mode");
        if (strcmp(p->install_mode, "image") == 0)      /* the name this mode had first */
                str_copy(p->install_mode, sizeof(p->install_mode), "install");
        if (strcmp(p->install_mode, "install") != 0 && strcmp(p->install_mode, "diskless") != 0)
                return bad(c, ynode_get(n, "mode"), sub, "'%.32s' is not a known install mode (install, diskless)",
                           p->install_mode);
        join(sub, sizeof(sub), full, "disk");
        if (!*p->disk || strspn(p->disk, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(p->disk))
                return bad(c, ynode_get(n, "disk"), sub,
                           "'%.32s' is not largest, smallest, ssd, hdd, nvme or a device name such as sda", p->disk);
        if (parse_disk_rule(c, n, full, p) < 0)
                return -EINVAL;
        return no_unknown(c, n, full);
}

/* image_version pins a profile to one version of its image. */
static int parse_image_pin(struct cfg *c, struct ynode *n, const char *path, struct profile *p)
{
        struct ynode *v = ynode_get(n, "image_version");
        char full[128], shown_v[96];

        join(full, sizeof(full), path, "image_version");
        if (!v)
                return 0;
        if (want(c, v, full, YNODE_SCALAR) < 0)
                return -EINVAL;
        if (parse_u64(v->value, 1, IMAGE_MAX_VERSION, &p->image_version) < 0)
                return bad(c, v, full, "'%s' is not a version from 1 to 2^53-1", shown(v, shown_v, sizeof(shown_v)));
        if (!*p->image)
                return bad(c, v, full, "needs an image");
        return 0;
}

/* netboot: a kernel (and initrd) below http.root booted as they are; the values end up in iPXE scripts. */
static int parse_netboot(struct cfg *c, struct ynode *prof, const char *path, struct profile *p)
{
        static const char *const keys[] = { "kernel", "initrd" };
        struct profile_netboot *nb = &p->netboot;
        char *const dst[] = { nb->kernel, nb->initrd };
        struct ynode *n = ynode_get(prof, "netboot");
        char full[128], sub[160], v[96];
        const char *why;

        join(full, sizeof(full), path, "netboot");
        if (!n)
                return 0;
        if (want(c, n, full, YNODE_MAP) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                struct ynode *k = ynode_get(n, keys[i]);

                join(sub, sizeof(sub), full, keys[i]);
                if (get_str(c, n, keys[i], full, dst[i], BOOT_MAX_ARTIFACT_PATH + 1) < 0)
                        return -EINVAL;
                if (k && syntax_artifact_path(dst[i]) < 0)
                        return bad(c, k, sub, "'%s' is not a relative path of letters, digits and . _ - + ~ /",
                                   shown(k, v, sizeof(v)));
        }
        join(sub, sizeof(sub), full, "kernel");
        if (!*nb->kernel)
                return bad(c, n, sub, "is required (a kernel below http.root)");
        join(sub, sizeof(sub), full, "cmdline");
        if (get_str(c, n, "cmdline", full, nb->cmdline, sizeof(nb->cmdline)) < 0)
                return -EINVAL;
        if (syntax_cmdline(nb->cmdline, &why) < 0)
                return bad(c, ynode_get(n, "cmdline"), sub, "%s", why);
        if (*p->image)
                return bad(c, n, full, "image and netboot exclude each other: a profile installs an image or "
                           "boots a netboot");
        return no_unknown(c, n, full);
}

/* Printable, no quotes or backslashes; '{' only in the placeholders {mac} and {name} when templated. */
static bool power_value_ok(const char *s, bool templated)
{
        for (const char *p = s; *p;) {
                if (templated && (str_has_prefix(p, "{mac}") || str_has_prefix(p, "{name}"))) {
                        p += p[1] == 'm' ? 5 : 6;
                        continue;
                }
                if (*p < 0x20 || *p > 0x7e || strchr("{}\"'\\", *p))
                        return false;
                p++;
        }
        return true;
}

/* Which keys each driver takes, which it needs, and the form of each value. */
static int check_power(struct cfg *c, struct ynode *n, const char *full, const struct profile_power *pw)
{
        static const struct {
                const char *key;
                unsigned drivers, required;     /* bit per enum profile_power_driver */
        } keys[] = {
                { "socket", 1u << PROFILE_POWER_QEMU, 1u << PROFILE_POWER_QEMU },
                { "host", 1u << PROFILE_POWER_IPMI, 1u << PROFILE_POWER_IPMI },
                { "port", 1u << PROFILE_POWER_IPMI, 0 },
                { "user", 1u << PROFILE_POWER_IPMI, 1u << PROFILE_POWER_IPMI },
                { "password_file", 1u << PROFILE_POWER_IPMI, 1u << PROFILE_POWER_IPMI },
                { "cipher_suite", 1u << PROFILE_POWER_IPMI, 0 },
        };
        static const char *const names[] = { "manual", "qemu", "ipmi" };
        char sub[192];

        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                struct ynode *k = ynode_get(n, keys[i].key);

                join(sub, sizeof(sub), full, keys[i].key);
                if (k && !(keys[i].drivers & (1u << pw->driver)))
                        return bad(c, k, sub, "is not a setting of the %s driver", names[pw->driver]);
                if (!k && (keys[i].required & (1u << pw->driver)))
                        return bad(c, n, sub, "is required by the %s driver", names[pw->driver]);
        }
        join(sub, sizeof(sub), full, "socket");
        if (*pw->socket && (pw->socket[0] != '/' || !power_value_ok(pw->socket, true)))
                return bad(c, ynode_get(n, "socket"), sub, "'%.64s' is not an absolute path ({mac} and {name} "
                           "may be filled in)", pw->socket);
        join(sub, sizeof(sub), full, "host");
        if (*pw->host && (pw->host[0] == '-' || strpbrk(pw->host, " /") || !power_value_ok(pw->host, true)))
                return bad(c, ynode_get(n, "host"), sub, "'%.64s' is not a DNS name or address ({mac} and {name} "
                           "may be filled in)", pw->host);
        join(sub, sizeof(sub), full, "user");
        if (*pw->user && (pw->user[0] == '-' ||
                          strspn(pw->user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@") !=
                                  strlen(pw->user)))
                return bad(c, ynode_get(n, "user"), sub, "'%.32s' is not a user name of letters, digits and . _ - @",
                           pw->user);
        join(sub, sizeof(sub), full, "password_file");
        if (*pw->password_file && (pw->password_file[0] != '/' || !power_value_ok(pw->password_file, false)))
                return bad(c, ynode_get(n, "password_file"), sub, "'%.64s' is not an absolute path",
                           pw->password_file);
        return 0;
}

static int parse_power(struct cfg *c, struct ynode *prof, const char *path, struct profile_power *pw)
{
        struct ynode *n = ynode_get(prof, "power");
        char full[128], sub[160], driver[16] = "manual";
        uint32_t cs = 0;

        join(full, sizeof(full), path, "power");
        pw->port = POWER_IPMI_DEFAULT_PORT;
        if (!n)
                return 0;
        if (want(c, n, full, YNODE_MAP) < 0 || get_str(c, n, "driver", full, driver, sizeof(driver)) < 0 ||
            get_str(c, n, "socket", full, pw->socket, sizeof(pw->socket)) < 0 ||
            get_str(c, n, "host", full, pw->host, sizeof(pw->host)) < 0 ||
            get_port(c, n, "port", full, false, &pw->port) < 0 ||
            get_str(c, n, "user", full, pw->user, sizeof(pw->user)) < 0 ||
            get_str(c, n, "password_file", full, pw->password_file, sizeof(pw->password_file)) < 0 ||
            get_u32(c, n, "cipher_suite", full, 1, POWER_MAX_CIPHER_SUITE, &cs) < 0)
                return -EINVAL;
        pw->cipher_suite = (uint8_t)cs;
        join(sub, sizeof(sub), full, "driver");
        if (strcmp(driver, "qemu") == 0)
                pw->driver = PROFILE_POWER_QEMU;
        else if (strcmp(driver, "ipmi") == 0)
                pw->driver = PROFILE_POWER_IPMI;
        else if (strcmp(driver, "manual") != 0)
                return bad(c, ynode_get(n, "driver"), sub, "'%.16s' is not manual, qemu or ipmi", driver);
        if (check_power(c, n, full, pw) < 0)
                return -EINVAL;
        return no_unknown(c, n, full);
}

static int parse_profile(struct cfg *c, struct ynode *n, const char *path, struct profile *p)
{
        char approval[16] = "manual", full[128], v[96];

        if (want(c, n, path, YNODE_MAP) < 0)
                return -EINVAL;
        join(full, sizeof(full), path, "name");
        if (!ynode_get(n, "name"))
                return bad(c, n, full, "is required");
        if (get_str(c, n, "name", path, p->name, sizeof(p->name)) < 0 || parse_match(c, n, path, &p->match) < 0 ||
            get_str(c, n, "image", path, p->image, sizeof(p->image)) < 0 || parse_image_pin(c, n, path, p) < 0 ||
            parse_install(c, n, path, p) < 0 || parse_netboot(c, n, path, p) < 0 ||
            get_str(c, n, "hostname", path, p->hostname, sizeof(p->hostname)) < 0 ||
            get_str(c, n, "cluster", path, p->cluster, sizeof(p->cluster)) < 0 ||
            get_str(c, n, "approval", path, approval, sizeof(approval)) < 0 ||
            parse_power(c, n, path, &p->power) < 0)
                return -EINVAL;
        if (!*p->name ||
            strspn(p->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(p->name))
                return bad(c, ynode_get(n, "name"), full, "'%s' is not a name of letters, digits and - _ .",
                           shown(ynode_get(n, "name"), v, sizeof(v)));
        join(full, sizeof(full), path, "approval");
        if (strcmp(approval, "auto") == 0)
                p->approval = PROFILE_APPROVE_AUTO;
        else if (strcmp(approval, "manual") != 0)
                return bad(c, ynode_get(n, "approval"), full, "'%.16s' is not manual or auto", approval);
        return no_unknown(c, n, path);
}

static int parse_profiles(struct cfg *c, struct ynode *root, struct config *cfg)
{
        struct ynode *n = ynode_get(root, "profiles");
        char item[64];

        if (!n)
                return 0;
        if (want(c, n, "profiles", YNODE_SEQ) < 0)
                return -EINVAL;
        if (n->n_children > CONFIG_MAX_PROFILES)
                return bad(c, n, "profiles", "more than %d profiles", CONFIG_MAX_PROFILES);
        cfg->profiles = calloc(n->n_children ? n->n_children : 1, sizeof(*cfg->profiles));
        if (!cfg->profiles)
                return -ENOMEM;
        for (struct ynode *p = n->child; p; p = p->next) {
                struct profile *pr = &cfg->profiles[cfg->n_profiles];

                snprintf(item, sizeof(item), "profiles[%zu]", cfg->n_profiles);
                if (parse_profile(c, p, item, pr) < 0)
                        return -EINVAL;
                for (size_t i = 0; i < cfg->n_profiles; i++) {
                        if (strcmp(cfg->profiles[i].name, pr->name) == 0)
                                return bad(c, p, item, "name '%s' is used by profiles[%zu] too", pr->name, i);
                        /* identical selectors always tie: a configuration error, not a runtime surprise */
                        if (memcmp(&cfg->profiles[i].match, &pr->match, sizeof(pr->match)) == 0)
                                return bad(c, p, item, "matches exactly the same machines as profiles[%zu] (%s)", i,
                                           cfg->profiles[i].name);
                }
                cfg->n_profiles++;
        }
        return 0;
}

static int parse_control(struct cfg *c, struct ynode *root, struct control_config *ctl)
{
        struct ynode *n, *mode;
        char full[64] = "control.mode";
        uint64_t m;

        if (section(c, root, "control", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (get_str(c, n, "socket", "control", ctl->socket, sizeof(ctl->socket)) < 0 ||
            get_str(c, n, "admin_token_file", "control", ctl->admin_token_file, sizeof(ctl->admin_token_file)) < 0)
                return -EINVAL;
        mode = ynode_get(n, "mode");
        if (mode) {
                char v[96];
                char *end = NULL;

                if (want(c, mode, full, YNODE_SCALAR) < 0)
                        return -EINVAL;
                errno = 0;
                m = strtoull(mode->value, &end, 8);
                if (!*mode->value || *end || errno || m > 0777)
                        return bad(c, mode, full, "'%s' is not an octal file mode such as 0660",
                                   shown(mode, v, sizeof(v)));
                ctl->socket_mode = (uint32_t)m;
        }
        return no_unknown(c, n, "control");
}

/* A list of PEM public key files; each must be readable and an Ed25519 key. */
static int parse_key_list(struct cfg *c, struct ynode *images, const char *key,
                          char (*dst)[CONFIG_MAX_PATH_BYTES], size_t *n)
{
        struct ynode *list = ynode_get(images, key);
        char full[64], item[96], v[96];
        struct manifest_key k;

        join(full, sizeof(full), "images", key);
        if (!list)
                return 0;
        if (want(c, list, full, YNODE_SEQ) < 0)
                return -EINVAL;
        if (list->n_children > IMAGE_MAX_KEYS)
                return bad(c, list, full, "more than %d keys", IMAGE_MAX_KEYS);
        for (struct ynode *e = list->child; e; e = e->next) {
                snprintf(item, sizeof(item), "%s[%zu]", full, *n);
                if (want(c, e, item, YNODE_SCALAR) < 0)
                        return -EINVAL;
                if (!*e->value || strlen(e->value) >= CONFIG_MAX_PATH_BYTES)
                        return bad(c, e, item, "must be a path of 1 to %d bytes", CONFIG_MAX_PATH_BYTES - 1);
                if (manifest_key_load(e->value, &k) < 0)
                        return bad(c, e, item, "'%s' is not a readable PEM Ed25519 public key", shown(e, v, sizeof(v)));
                str_copy(dst[(*n)++], CONFIG_MAX_PATH_BYTES, e->value);
        }
        return 0;
}

static int parse_images(struct cfg *c, struct ynode *root, struct images_config *im)
{
        struct ynode *n;

        if (section(c, root, "images", &n) < 0 || !n)
                return n ? -EINVAL : 0;
        if (parse_key_list(c, n, "trusted_keys", im->trusted_keys, &im->n_trusted_keys) < 0 ||
            parse_key_list(c, n, "revoked_keys", im->revoked_keys, &im->n_revoked_keys) < 0 ||
            get_u32(c, n, "max_concurrent_installs", "images", 1, IMAGE_MAX_CONCURRENT_INSTALLS,
                    &im->max_concurrent_installs) < 0 ||
            get_bool(c, n, "require_signed", "images", &im->require_signed) < 0)
                return -EINVAL;
        if (im->require_signed && !im->n_trusted_keys)
                return bad(c, ynode_get(n, "require_signed"), "images.require_signed", "needs images.trusted_keys");
        return no_unknown(c, n, "images");
}

/* images.require_signed: no profile may boot files that no signature covers. */
static int check_require_signed(struct cfg *c, struct ynode *root, const struct config *cfg)
{
        struct ynode *list = ynode_get(root, "profiles");
        struct ynode *p = list && list->kind == YNODE_SEQ ? list->child : NULL;
        char who[PROFILE_MAX_WORD + 16];

        if (!cfg->images.require_signed)
                return 0;
        for (size_t i = 0; i < cfg->n_profiles && p; i++, p = p->next) {
                if (!*cfg->profiles[i].netboot.kernel)
                        continue;
                snprintf(who, sizeof(who), "profile %s", cfg->profiles[i].name);
                return bad(c, ynode_get(p, "netboot"), who,
                           "netboot boots unsigned files, which images.require_signed refuses");
        }
        return 0;
}

static void set_defaults(struct config *cfg)
{
        static const struct boot_file defaults[] = {
                { 0, "undionly.kpxe" }, { 6, "ipxe-i386.efi" }, { 7, "ipxe.efi" },
                { 9, "ipxe.efi" }, { 10, "ipxe-arm32.efi" }, { 11, "ipxe-arm64.efi" },
                { 15, "ipxe-i386.efi" }, { 16, "ipxe.efi" }, { 18, "ipxe-arm32.efi" },
                { 19, "ipxe-arm64.efi" },
        };

        str_copy(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/metald");
        cfg->log_level = LOG_INFO;
        cfg->dhcp = (struct dhcp_config){
                .enabled = true, .mode = DHCP_MODE_FULL, .port = 67, .proxy_port = 4011,
                .client_port = 68, .authoritative = true, .lease_time_s = 3600,
                .offer_hold_s = 30, .decline_hold_s = 600, .rcvbuf_bytes = 4u << 20,
        };
        cfg->tftp = (struct tftp_config){
                .enabled = true, .port = 69, .root = "pxe", .max_blksize = TFTP_MAX_BLKSIZE,
                .max_windowsize = 64, .max_transfers = TFTP_DEFAULT_MAX_TRANSFERS,
                .max_per_client = TFTP_DEFAULT_MAX_PER_CLIENT, .timeout_ms = 1000,
                .retries = TFTP_MAX_RETRIES,
        };
        cfg->http = (struct http_config){
                .enabled = true, .port = 8080, .max_connections = HTTP_DEFAULT_MAX_CONNECTIONS,
                .max_per_client = HTTP_DEFAULT_MAX_PER_CLIENT, .idle_timeout_s = HTTP_DEFAULT_IDLE_TIMEOUT_S,
                .max_header_bytes = HTTP_DEFAULT_HEADER_BYTES, .stream_min_bytes = HTTP_DEFAULT_STREAM_MIN_BYTES,
                .stream_connections = HTTP_DEFAULT_STREAM_CONNECTIONS,
        };
        str_copy(cfg->boot.script, sizeof(cfg->boot.script), "boot.ipxe");
        cfg->boot.retry_delay_s = 30;
        str_copy(cfg->boot.enroll.tmpl, sizeof(cfg->boot.enroll.tmpl), "enroll.ipxe.tmpl");
        str_copy(cfg->boot.enroll.build.busybox, sizeof(cfg->boot.enroll.build.busybox), "/bin/busybox");
        memcpy(cfg->boot.files, defaults, sizeof(defaults));
        cfg->boot.n_files = ARRAY_SIZE(defaults);
        cfg->lifecycle = (struct lifecycle_config){
                .timeouts = { .enroll_s = 1800, .agent_s = 300, .imaging_s = 7200, .imaged_s = 1800, .join_s = 1800 },
                .nonce_ttl_s = 1800, .heartbeat_s = 10,
                .local_boot_bios = "sanboot --no-describe --drive 0x80", .local_boot_efi = "exit",
        };
        cfg->control = (struct control_config){ .socket = "/run/metald/control.sock", .socket_mode = 0660 };
        cfg->images.max_concurrent_installs = IMAGE_DEFAULT_MAX_INSTALLS;
}

static int parse_root(struct cfg *c, struct ynode *root, struct config *cfg)
{
        char level[16] = "";
        struct ynode *server;

        if (want(c, root, "(top level)", YNODE_MAP) < 0)
                return -EINVAL;
        if (section(c, root, "server", &server) < 0)
                return -EINVAL;
        if (server && (get_iface(c, server, "server", cfg->interface) < 0 ||
                       get_in_addr(c, server, "address", "server", &cfg->server_address) < 0 ||
                       no_unknown(c, server, "server") < 0))
                return -EINVAL;
        if (get_str(c, root, "state_dir", "", cfg->state_dir, sizeof(cfg->state_dir)) < 0 ||
            get_str(c, root, "log_level", "", level, sizeof(level)) < 0)
                return -EINVAL;
        if (*level) {
                cfg->log_level = log_level_from_string(level);
                if (cfg->log_level < 0)
                        return bad(c, ynode_get(root, "log_level"), "log_level",
                                   "'%.16s' is not one of error, warning, notice, info, debug", level);
        }
        if (parse_dhcp(c, root, &cfg->dhcp) < 0 || parse_tftp(c, root, &cfg->tftp) < 0 ||
            parse_http(c, root, &cfg->http) < 0 || parse_boot(c, root, &cfg->boot) < 0 ||
            parse_lifecycle(c, root, &cfg->lifecycle) < 0 || parse_profiles(c, root, cfg) < 0 ||
            parse_control(c, root, &cfg->control) < 0 || parse_images(c, root, &cfg->images) < 0 ||
            check_require_signed(c, root, cfg) < 0)
                return -EINVAL;
        if (!*cfg->http.root)
                memcpy(cfg->http.root, cfg->tftp.root, sizeof(cfg->http.root));
        return no_unknown(c, root, "");
}

static int load(struct ynode *root, const char *name, struct config **ret, char *err, size_t errlen)
{
        struct cfg c = { .file = name, .err = err, .errlen = errlen };
        struct config *cfg = calloc(1, sizeof(*cfg));
        int r;

        if (!cfg)
                return -ENOMEM;
        set_defaults(cfg);
        str_copy(cfg->path, sizeof(cfg->path), name);
        r = parse_root(&c, root, cfg);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, errlen, "%s: out of memory", name);
                config_free(cfg);
                return r;
        }
        *ret = cfg;
        return 0;
}

int config_load_string(const char *text, const char *name, struct config **ret, char *err, size_t errlen)
{
        struct ynode *root = NULL;
        int r = ynode_load_string(text, strlen(text), name, &root, err, errlen);

        if (r < 0)
                return r;
        r = load(root, name, ret, err, errlen);
        ynode_free(root);
        return r;
}

int config_load_file(const char *path, struct config **ret, char *err, size_t errlen)
{
        struct ynode *root = NULL;
        int r = ynode_load_file(path, &root, err, errlen);

        if (r < 0)
                return r;
        r = load(root, path, ret, err, errlen);
        ynode_free(root);
        return r;
}

void config_free(struct config *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->dhcp.n_subnets; i++)
                free(c->dhcp.subnets[i].reservations);
        free(c->dhcp.subnets);
        free(c->profiles);
        free(c);
}

const char *config_boot_file(const struct config *c, uint16_t arch)
{
        for (size_t i = 0; i < c->boot.n_files; i++)
                if (c->boot.files[i].arch == arch)
                        return c->boot.files[i].file;
        return NULL;
}

const char *dhcp_mode_name(enum dhcp_mode m)
{
        return m == DHCP_MODE_PROXY ? "proxy" : "full";
}

int config_base_url(const struct config *cfg, uint32_t server_ip, char *buf, size_t cap)
{
        char ip[16];
        int n;

        if (*cfg->boot.http_url)
                n = snprintf(buf, cap, "%s", cfg->boot.http_url);
        else {
                format_ipv4(ip, (struct in_addr){ htonl(server_ip) });
                n = snprintf(buf, cap, "http://%s:%u", ip, cfg->http.port);
        }
        if (n < 0 || (size_t)n >= cap)
                return -ENAMETOOLONG;
        /* no trailing slash: paths are appended with one */
        while (n > 0 && buf[n - 1] == '/')
                buf[--n] = '\0';
        return 0;
}

int config_script_url(const struct config *cfg, uint32_t server_ip, char *buf, size_t cap)
{
        char base[256];
        int n;

        if (config_base_url(cfg, server_ip, base, sizeof(base)) < 0)
                return -ENAMETOOLONG;
        n = snprintf(buf, cap, "%s/%s", base, cfg->boot.script);
        return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "metald/util.h"

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "true", "yes", "on", "1" };
        static const char *const no[] = { "false", "no", "off", "0" };

        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int parse_duration_usec(const char *s, uint64_t *ret)
{
        static const struct { const char *suffix; uint64_t mult; } units[] = {
                { "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC }, { "d", 86400 * USEC_PER_SEC }, { "", USEC_PER_SEC },
        };
        char num[32];
        size_t digits = strspn(s, "0123456789");
        uint64_t v;

        if (digits == 0 || digits >= sizeof(num))
                return -EINVAL;
        memcpy(num, s, digits);
        num[digits] = '\0';
        if (parse_u64(num, 0, UINT32_MAX, &v) < 0)
                return -ERANGE;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (strcmp(s + digits, units[i].suffix) == 0) {
                        *ret = v * units[i].mult;
                        return 0;
                }
        }
        return -EINVAL;
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)tolower((unsigned char)c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int parse_mac(const char *s, uint8_t ret[6])
{
        uint8_t mac[6];

        if (strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++) {
                int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);
                char sep = s[i * 3 + 2];

                if (hi < 0 || lo < 0)
                        return -EINVAL;
                if (i < 5 && sep != ':' && sep != '-')
                        return -EINVAL;
                mac[i] = (uint8_t)(hi << 4 | lo);
        }
        memcpy(ret, mac, 6);
        return 0;
}

int parse_ipv4(const char *s, struct in_addr *ret)
{
        struct in_addr a;

        /* inet_pton rejects octal and short forms, which is what we want. */
        if (inet_pton(AF_INET, s, &a) != 1)
                return -EINVAL;
        *ret = a;
        return 0;
}

int parse_cidr(const char *s, struct in_addr *ret_net, unsigned *ret_prefix)
{
        char addr[INET_ADDRSTRLEN];
        const char *slash = strchr(s, '/');
        struct in_addr net;
        uint64_t prefix;

        if (!slash || (size_t)(slash - s) >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, s, (size_t)(slash - s));
        addr[slash - s] = '\0';
        if (parse_ipv4(addr, &net) < 0 || parse_u64(slash + 1, 0, 32, &prefix) < 0)
                return -EINVAL;
        if (ntohl(net.s_addr) & ~prefix_to_mask((unsigned)prefix))
                return -EINVAL;
        *ret_net = net;
        *ret_prefix = (unsigned)prefix;
        return 0;
}

int str_copy(char *dst, size_t cap, const char *src)
{
        size_t n = strlen(src);

        if (cap == 0)
                return -ENAMETOOLONG;
        if (n >= cap) {
                memcpy(dst, src, cap - 1);
                dst[cap - 1] = '\0';
                return -ENAMETOOLONG;
        }
        memcpy(dst, src, n + 1);
        return 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_only(const char *s, size_t len, const char *extra)
{
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      (c && strchr(extra, c))))
                        return false;
        }
        return true;
}

char *xstrdup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

void format_mac(char buf[18], const uint8_t mac[6])
{
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x",
                 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

void format_ipv4(char buf[16], struct in_addr a)
{
        if (!inet_ntop(AF_INET, &a, buf, 16))
                str_copy(buf, 16, "?");
}

void format_hex(char *buf, const uint8_t *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                buf[2 * i] = digits[p[i] >> 4];
                buf[2 * i + 1] = digits[p[i] & 15];
        }
        buf[2 * n] = '\0';
}

static bool uuid_dash_at(size_t i)
{
        return i == 8 || i == 13 || i == 18 || i == 23;
}

int uuid_normalize(const char *s, size_t len, char out[UUID_TEXT_BYTES])
{
        char t[UUID_TEXT_BYTES];
        bool zero = true, ff = true;

        if (len == 0) {
                out[0] = '\0';
                return 0;
        }
        if (len != UUID_TEXT_BYTES - 1)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (uuid_dash_at(i) ? s[i] != '-' : hexval(s[i]) < 0)
                        return -EINVAL;
                t[i] = (char)tolower((unsigned char)s[i]);
                zero &= uuid_dash_at(i) || t[i] == '0';
                ff &= uuid_dash_at(i) || t[i] == 'f';
        }
        t[zero || ff ? 0 : len] = '\0';
        memcpy(out, t, UUID_TEXT_BYTES);
        return 0;
}

void uuid_format(char out[UUID_TEXT_BYTES], const uint8_t g[16])
{
        snprintf(out, UUID_TEXT_BYTES, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[0],
                 g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
        (void)uuid_normalize(out, UUID_TEXT_BYTES - 1, out);
}

bool uuid_is_identity(const char *s)
{
        char t[UUID_TEXT_BYTES];
        size_t len = strnlen(s, UUID_TEXT_BYTES);

        return uuid_normalize(s, len, t) == 0 && *t;
}

uint32_t prefix_to_mask(unsigned prefix)
{
        return prefix == 0 ? 0 : UINT32_MAX << (32 - prefix);
}

static uint64_t clock_usec(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t now_monotonic_usec(void) { return clock_usec(CLOCK_MONOTONIC); }
uint64_t now_realtime_usec(void) { return clock_usec(CLOCK_REALTIME); }

int random_bytes(void *p, size_t n)
{
        uint8_t *q = p;

        while (n > 0) {
                ssize_t k = getrandom(q, n, 0);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                q += k;
                n -= (size_t)k;
        }
        return 0;
}

uint32_t random_u32(void)
{
        uint32_t v = 0;

        if (random_bytes(&v, sizeof(v)) < 0)
                v = (uint32_t)now_monotonic_usec();
        return v;
}

int fd_set_nonblock(int fd)
{
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

int fd_set_cloexec(int fd)
{
        int flags = fcntl(fd, F_GETFD);

        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return -errno;
        return 0;
}

int read_full(int fd, void *buf, size_t cap, size_t *ret_len)
{
        size_t len = 0;

        while (len < cap) {
                ssize_t n = read(fd, (char *)buf + len, cap - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret_len = len;
        return 0;
}

int mkdir_p(const char *path, unsigned mode)
{
        char tmp[4096];

        if (str_copy(tmp, sizeof(tmp), path) < 0)
                return -ENAMETOOLONG;
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

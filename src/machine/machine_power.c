/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/machine_power.h"
#include "metald/util.h"

/* tmpl with {mac} and {name} filled in; names are letters, digits and - _ . only, so nothing else is introduced. */
static int expand(const char *tmpl, const char *mac, const char *name, char *buf, size_t cap)
{
        size_t o = 0;

        for (const char *t = tmpl; *t;) {
                const char *v = NULL;
                size_t skip = 1, n;

                if (str_has_prefix(t, "{mac}"))
                        v = mac, skip = 5;
                else if (str_has_prefix(t, "{name}"))
                        v = name, skip = 6;
                n = v ? strlen(v) : 1;
                if (o + n >= cap)
                        return -ENAMETOOLONG;
                memcpy(buf + o, v ? v : t, n);
                o += n;
                t += skip;
        }
        buf[o] = '\0';
        return 0;
}

static bool name_ok(const char *s)
{
        return *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == strlen(s);
}

int machine_power_target(const struct profile_power *pp, const uint8_t mac[6], const char *name,
                         struct power_target *ret, char *why, size_t why_len)
{
        static const enum power_driver drivers[] = {
                [PROFILE_POWER_MANUAL] = POWER_DRIVER_MANUAL, [PROFILE_POWER_QEMU] = POWER_DRIVER_QEMU,
                [PROFILE_POWER_IPMI] = POWER_DRIVER_IPMI,
        };
        struct power_target t = { .port = pp->port, .cipher_suite = pp->cipher_suite };
        char hex[13];

        if ((unsigned)pp->driver >= ARRAY_SIZE(drivers)) {
                snprintf(why, why_len, "unknown power driver %d", (int)pp->driver);
                return -EINVAL;
        }
        if (!name_ok(name) || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
                snprintf(why, why_len, "machine name \"%.64s\" cannot be filled into a power template", name);
                return -EINVAL;
        }
        t.driver = drivers[pp->driver];
        snprintf(hex, sizeof(hex), "%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        if (expand(pp->socket, hex, name, t.socket, sizeof(t.socket)) < 0 ||
            expand(pp->host, hex, name, t.host, sizeof(t.host)) < 0) {
                snprintf(why, why_len, "power: the socket or host of %s is longer than its limit", name);
                return -ENAMETOOLONG;
        }
        str_copy(t.user, sizeof(t.user), pp->user);
        str_copy(t.password_file, sizeof(t.password_file), pp->password_file);
        if (power_target_check(&t, why, why_len) < 0)
                return -EINVAL;
        *ret = t;
        return 0;
}

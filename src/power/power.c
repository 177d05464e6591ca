/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/power.h"
#include "metald/util.h"
#include "power_driver.h"

static const char *const driver_names[] = {
        [POWER_DRIVER_MANUAL] = "manual", [POWER_DRIVER_QEMU] = "qemu", [POWER_DRIVER_IPMI] = "ipmi",
};
static const char *const state_names[] = {
        [POWER_STATE_UNKNOWN] = "unknown", [POWER_STATE_ON] = "on", [POWER_STATE_OFF] = "off",
};
static const char *const op_names[] = {
        [POWER_OP_STATUS] = "status", [POWER_OP_ON] = "on",       [POWER_OP_OFF] = "off",
        [POWER_OP_CYCLE] = "cycle",   [POWER_OP_RESET] = "reset", [POWER_OP_SOFT_OFF] = "soft-off",
};

static int name_index(const char *const *names, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (names[i] && strcmp(names[i], s) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *power_driver_name(enum power_driver d)
{
        return (unsigned)d < ARRAY_SIZE(driver_names) ? driver_names[d] : "?";
}

int power_driver_from_name(const char *s, enum power_driver *ret)
{
        int i = name_index(driver_names, ARRAY_SIZE(driver_names), s);

        if (i < 0)
                return i;
        *ret = (enum power_driver)i;
        return 0;
}

const char *power_state_name(enum power_state s)
{
        return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

const char *power_op_name(enum power_op op)
{
        return (unsigned)op < ARRAY_SIZE(op_names) ? op_names[op] : "?";
}

int power_op_from_name(const char *s, enum power_op *ret)
{
        int i = name_index(op_names, ARRAY_SIZE(op_names), s);

        if (i < 0)
                return i;
        *ret = (enum power_op)i;
        return 0;
}

/* Printable ASCII, no space, not starting with '-': safe as one argument of ipmitool. */
static bool word_ok(const char *s, const char *extra)
{
        return *s && *s != '-' && str_only(s, strlen(s), extra);
}

static int check_ipmi(const struct power_target *t, char *why, size_t why_len)
{
        if (!word_ok(t->host, ".-:_"))
                snprintf(why, why_len, "ipmi: the BMC host \"%.64s\" is not a DNS name or an address", t->host);
        else if (!word_ok(t->user, ".-_@"))
                snprintf(why, why_len, "ipmi %s: the user name must be 1 to %d letters, digits or . - _ @",
                         t->host, POWER_MAX_USER);
        else if (t->password_file[0] != '/')
                snprintf(why, why_len, "ipmi %s: a password file (an absolute path) is required", t->host);
        else if (t->cipher_suite > POWER_MAX_CIPHER_SUITE)
                snprintf(why, why_len, "ipmi %s: cipher suite %u is not 1 to %d", t->host, t->cipher_suite,
                         POWER_MAX_CIPHER_SUITE);
        else
                return 0;
        return -EINVAL;
}

int power_target_check(const struct power_target *t, char *why, size_t why_len)
{
        switch (t->driver) {
        case POWER_DRIVER_MANUAL:
                return 0;
        case POWER_DRIVER_QEMU:
                if (*t->socket)
                        return 0;
                snprintf(why, why_len, "qemu: the QMP socket path is required");
                return -EINVAL;
        case POWER_DRIVER_IPMI:
                return check_ipmi(t, why, why_len);
        }
        snprintf(why, why_len, "unknown power driver %d", (int)t->driver);
        return -EINVAL;
}

int power_run(const struct power_target *t, enum power_op op, enum power_state *ret_state, char *why, size_t why_len)
{
        int r;

        if (why_len)
                why[0] = '\0';
        if ((unsigned)op >= ARRAY_SIZE(op_names)) {
                snprintf(why, why_len, "unknown power operation %d", (int)op);
                return -EINVAL;
        }
        if (t->timeout_ms > POWER_MAX_TIMEOUT_MS) {
                snprintf(why, why_len, "a power operation may take at most %d ms", POWER_MAX_TIMEOUT_MS);
                return -EINVAL;
        }
        if ((r = power_target_check(t, why, why_len)) < 0)
                return r;
        switch (t->driver) {
        case POWER_DRIVER_QEMU:
                return power_qemu_run(t, op, ret_state, why, why_len);
        case POWER_DRIVER_IPMI:
                return power_ipmi_run(t, op, ret_state, why, why_len);
        case POWER_DRIVER_MANUAL:
                break;
        }
        return power_manual_run(t, op, ret_state, why, why_len);
}

int power_status(const struct power_target *t, enum power_state *ret_state, char *why, size_t why_len)
{
        return power_run(t, POWER_OP_STATUS, ret_state, why, why_len);
}

int power_on(const struct power_target *t, char *why, size_t why_len)
{
        return power_run(t, POWER_OP_ON, NULL, why, why_len);
}

int power_off(const struct power_target *t, char *why, size_t why_len)
{
        return power_run(t, POWER_OP_OFF, NULL, why, why_len);
}

int power_cycle(const struct power_target *t, char *why, size_t why_len)
{
        return power_run(t, POWER_OP_CYCLE, NULL, why, why_len);
}

int power_reset(const struct power_target *t, char *why, size_t why_len)
{
        return power_run(t, POWER_OP_RESET, NULL, why, why_len);
}

int power_soft_off(const struct power_target *t, char *why, size_t why_len)
{
        return power_run(t, POWER_OP_SOFT_OFF, NULL, why, why_len);
}

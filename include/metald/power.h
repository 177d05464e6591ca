/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"

/*
 * Power control behind one interface (docs/POWER.md). Every operation returns
 * 0 or a negative errno and then fills why with one line naming what failed;
 * nothing here logs, and no password is ever put into why.
 *
 * -EOPNOTSUPP is the manual driver's answer, and only its: metald cannot act,
 * an operator power-cycles the machine. Callers show "waiting for an operator".
 */

enum power_driver { POWER_DRIVER_MANUAL, POWER_DRIVER_QEMU, POWER_DRIVER_IPMI };
enum power_state { POWER_STATE_UNKNOWN, POWER_STATE_ON, POWER_STATE_OFF };
enum power_op {
        POWER_OP_STATUS,
        POWER_OP_ON,
        POWER_OP_OFF,           /* hard: no chance for the OS to shut down */
        POWER_OP_CYCLE,         /* off, then on */
        POWER_OP_RESET,         /* hard reset, power stays on */
        POWER_OP_SOFT_OFF,      /* ACPI power button: the OS shuts down, if it listens */
};

#define POWER_IPMITOOL_PATH "/usr/bin/ipmitool"

struct power_target {
        enum power_driver driver;
        char socket[POWER_MAX_PATH + 1];        /* qemu: the QMP unix socket */
        char host[POWER_MAX_HOST + 1];          /* ipmi: the BMC, IPMI 2.0 lanplus */
        uint16_t port;                          /* ipmi: 0 = POWER_IPMI_DEFAULT_PORT */
        char user[POWER_MAX_USER + 1];
        char password_file[POWER_MAX_PATH + 1]; /* its first line is the password */
        uint8_t cipher_suite;                   /* ipmi: 1..POWER_MAX_CIPHER_SUITE, 0 = ipmitool's choice */
        char ipmitool[POWER_MAX_PATH + 1];      /* "" = POWER_IPMITOOL_PATH */
        uint32_t timeout_ms;                    /* one operation; 0 = POWER_DEFAULT_TIMEOUT_MS */
};

const char *power_driver_name(enum power_driver d);
int power_driver_from_name(const char *s, enum power_driver *ret);
const char *power_state_name(enum power_state s);
/* "status", "on", "off", "cycle", "reset", "soft-off" */
const char *power_op_name(enum power_op op);
int power_op_from_name(const char *s, enum power_op *ret);

/* The fields t's driver needs are present and well formed: 0, or -EINVAL with why. */
int power_target_check(const struct power_target *t, char *why, size_t why_len);

/* Runs one operation; ret_state (may be NULL) is filled on success of POWER_OP_STATUS. */
int power_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
              char *why, size_t why_len);
int power_status(const struct power_target *t, enum power_state *ret_state, char *why, size_t why_len);
int power_on(const struct power_target *t, char *why, size_t why_len);
int power_off(const struct power_target *t, char *why, size_t why_len);
int power_cycle(const struct power_target *t, char *why, size_t why_len);
int power_reset(const struct power_target *t, char *why, size_t why_len);
int power_soft_off(const struct power_target *t, char *why, size_t why_len);

/*
 * Opens a BMC password file for reading: a regular file, neither writable by
 * its group nor accessible to others, whose first line is 1 to
 * POWER_MAX_PASSWORD bytes. 0 with *ret_fd (O_CLOEXEC, the caller closes it),
 * or -errno with why. The password itself is not kept.
 */
int power_open_password_file(const char *path, int *ret_fd, char *why, size_t why_len);

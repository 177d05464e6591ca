/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"
#include "metald/power.h"

/*
 * Pure parsers of what power drivers read: QMP messages (one JSON object per
 * line) and ipmitool's output. The bytes are untrusted: lengths are given, no
 * NUL is required or accepted, and every result is bounded.
 */

enum power_qmp_kind { POWER_QMP_GREETING, POWER_QMP_RETURN, POWER_QMP_ERROR, POWER_QMP_EVENT };

struct power_qmp_msg {
        enum power_qmp_kind kind;
        bool has_id;
        int64_t id;                                     /* RETURN, ERROR: the id of the command */
        char status[POWER_QMP_MAX_STATUS + 1];          /* RETURN of query-status; "" otherwise */
        char event[64];                                 /* EVENT: its name, e.g. "RESET" */
        char error[256];                                /* ERROR: "class: description", escaped */
};

/*
 * One QMP message of len bytes (its line ending may be included): 0 with
 * *ret, -EMSGSIZE past POWER_QMP_MAX_MESSAGE, -EBADMSG for anything that is
 * not a JSON object with exactly one of "QMP", "return", "error", "event".
 */
int power_qmp_parse(const char *line, size_t len, struct power_qmp_msg *ret);

/* A query-status "status": running -> on, stopped states -> off; -EINVAL for one metald does not know. */
int power_qmp_state(const char *status, enum power_state *ret);

/* ipmitool's stdout of "chassis power status": one "Chassis Power is on|off" line; -EBADMSG otherwise. */
int power_ipmi_parse_status(const char *out, size_t len, enum power_state *ret);

/* ipmitool's stdout of "chassis power on|off|cycle|reset|soft": its "Chassis Power Control: ..." line. */
int power_ipmi_parse_control(const char *out, size_t len, enum power_op op);

/* The ipmitool subcommand word of an operation ("status", "on", "off", "cycle", "reset", "soft"). */
const char *power_ipmi_word(enum power_op op);

/* Non-empty lines of a child's stderr, escaped and joined with "; " into buf (always terminated). */
void power_summarize(const char *err, size_t len, char *buf, size_t cap);

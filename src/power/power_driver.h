/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

#include "metald/power.h"

/* One entry point per driver; power_run() has checked the target already. */
int power_qemu_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
                   char *why, size_t why_len);
int power_ipmi_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
                   char *why, size_t why_len);
int power_manual_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
                     char *why, size_t why_len);

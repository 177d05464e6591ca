/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manual driver: metald has no way to reach the machine's power, an
 * operator presses the buttons. Every operation, status included, answers
 * -EOPNOTSUPP, a code no other driver returns, so that callers can tell
 * "waiting for an operator" from a failure.
 */
#include <errno.h>
#include <stdio.h>

#include "power_driver.h"

int power_manual_run(const struct power_target *t, enum power_op op, enum power_state *ret_state,
                     char *why, size_t why_len)
{
        snprintf(why, why_len, "manual power control: %s",
                 op == POWER_OP_STATUS ? "metald cannot see the power state; an operator power-cycles the machine"
                                       : "power-cycle the machine by hand");
        return -EOPNOTSUPP;
}

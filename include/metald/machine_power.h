/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metald/config.h"
#include "metald/power.h"

/*
 * The power target of one machine: its profile's power settings with {mac}
 * (12 lower-case hex digits, as in hostname templates) and {name} (the
 * machine's name) filled in. 0 with *ret, or -EINVAL / -ENAMETOOLONG with why.
 */
int machine_power_target(const struct profile_power *pp, const uint8_t mac[6], const char *name,
                         struct power_target *ret, char *why, size_t why_len);

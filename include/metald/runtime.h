/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "metald/config.h"

/*
 * What the composition root (src/daemon/) hands every service it starts: the
 * configuration, the machine registry and the facts found at start-up.
 */
struct registry;

struct runtime {
        const struct config *cfg;
        struct registry *registry;      /* machines; shared by HTTP, the control socket and the main loop */
        uint32_t server_ip;             /* host order: advertised address (siaddr, option 54) */
        char db_path[CONFIG_MAX_PATH_BYTES];
        char enroll_initrd[CONFIG_MAX_PATH_BYTES];      /* the initramfs metald built, or "" */
};

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "metald/config.h"

/*
 * Runs `metald serve` until SIGTERM/SIGINT. Returns an exit code: EXIT_OK,
 * EXIT_FAILED, or EXIT_USAGE when a file the configuration needs is missing
 * or unusable (metald/preflight.h).
 */
int daemon_run(const struct config *cfg);

/* The address machines reach us at: server.address, else the interface's first IPv4 address. */
int daemon_resolve_server_ip(const struct config *cfg, uint32_t *ret);

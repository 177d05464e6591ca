/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "metald/config.h"

/*
 * The network services. Each runs its own thread with its own event loop,
 * started and stopped by the daemon. start() returns only after the service's
 * sockets are bound, so errors (port in use, missing root) reach the caller.
 * stop() wakes the thread, joins it and frees everything. heartbeat() is the
 * monotonic time of the thread's last loop iteration, for the watchdog.
 */
struct registry;

struct runtime {
        const struct config *cfg;
        struct registry *registry;      /* machines; shared by HTTP, the control socket and the main loop */
        uint32_t server_ip;             /* host order: advertised address (siaddr, option 54) */
        char db_path[CONFIG_MAX_PATH_BYTES];
        char enroll_initrd[CONFIG_MAX_PATH_BYTES];      /* the initramfs metald built, or "" */
};

struct dhcp_service;
int dhcp_service_start(const struct runtime *rt, struct dhcp_service **ret);
void dhcp_service_stop(struct dhcp_service *s);
uint64_t dhcp_service_heartbeat(const struct dhcp_service *s);

struct tftp_service;
int tftp_service_start(const struct runtime *rt, struct tftp_service **ret);
void tftp_service_stop(struct tftp_service *s);
uint64_t tftp_service_heartbeat(const struct tftp_service *s);

struct http_service;
int http_service_start(const struct runtime *rt, struct http_service **ret);
void http_service_stop(struct http_service *s);
uint64_t http_service_heartbeat(const struct http_service *s);

/* The operator socket (control.socket). */
struct control_service;
int control_service_start(const struct runtime *rt, struct control_service **ret);
void control_service_stop(struct control_service *s);

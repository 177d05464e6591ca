/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "metald/runtime.h"

/* The HTTP service (src/http/); see metald/dhcp_server.h for how services start and stop. */
struct http_service;
int http_service_start(const struct runtime *rt, struct http_service **ret);
void http_service_stop(struct http_service *s);
uint64_t http_service_heartbeat(const struct http_service *s);

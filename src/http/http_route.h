/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "http_conn.h"

/* Answers one request: MHD's access handler after the connection's slot is taken (http_route.c). */
enum MHD_Result http_route_request(struct http_request *req, const char *method, const char *upload_data,
                                   size_t *upload_size);
/* Whether the router sends path to http_static_serve(); the acceptor asks the same. */
bool http_is_static_path(const struct http_service *s, const char *path);

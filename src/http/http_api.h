/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "http_conn.h"

/* /v1/agent/ and /v1/admin/ (http_api.c). */
bool http_api_path(const char *path);
enum MHD_Result http_api_serve(struct http_request *req);
enum MHD_Result http_api_error(struct http_request *req, int status, const char *msg);
/* Reads the admin token file named in the configuration; -errno when unusable. */
int http_admin_token_load(struct http_service *s);

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "http_conn.h"

/* Artifacts below http.root and the built enrollment initramfs (http_static.c). */
enum MHD_Result http_static_serve(struct http_request *req);
/* Whether path names a servable file of at least min_bytes (the acceptor's question). */
bool http_static_is_large(const struct http_service *s, const char *path, uint64_t min_bytes);

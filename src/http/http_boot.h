/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "http_conn.h"

/* The iPXE boot script route (http_boot.c). */
enum MHD_Result http_boot_serve(struct http_request *req);

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "http_conn.h"

/* The acceptor thread: the listening socket, connection limits, hand-over to a daemon (http_accept.c). */
int http_acceptor_start(struct http_service *s);
void http_acceptor_stop(struct http_service *s);
void http_acceptor_free(struct http_service *s);
/* Whether the acceptor loop has turned recently enough at monotonic time now. */
bool http_acceptor_turning(const struct http_service *s, uint64_t now);
/* MHD_OPTION_NOTIFY_CONNECTION for both daemons; cls is the service. */
void http_on_connection(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_ConnectionNotificationCode code);

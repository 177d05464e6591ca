/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/registry.h"

/*
 * The JSON APIs as socket-free handlers: the HTTP layer collects a request
 * (already bounded by its limits) and sends back whatever these produce.
 * /v1/agent/ serves metald-agent; /v1/admin/ serves operators (the control
 * socket, and HTTP when a token is configured).
 */
struct api_request {
        const char *method;
        const char *path;               /* without the query */
        const char *authorization;      /* header value or NULL */
        const char *content_type;       /* header value or NULL */
        const char *body;
        size_t body_len;
        uint32_t peer_ip;               /* host order; 0 on the control socket */
};

struct api_response {
        int status;
        struct buf body;                /* JSON, capped at API_MAX_RESPONSE; or raw bytes when content_type is set */
        uint32_t retry_after_s;         /* 503: when to come back; 0 = no header */
        const char *content_type;       /* NULL: application/json */
};

void api_response_init(struct api_response *r);
void api_response_free(struct api_response *r);

int agent_api_handle(struct registry *reg, const struct api_request *req, int64_t now, struct api_response *resp);
int admin_api_handle(struct registry *reg, const struct api_request *req, int64_t now, struct api_response *resp);

/* --- parsing, exposed for tests and fuzzing --- */

struct agent_register_req {
        char nonce[SECRET_MAX_TEXT];
        uint8_t boot_mac[6];
        struct agent_identity id;
        struct buf inventory;           /* normalized JSON of the validated inventory */
};

/* 0, or -EINVAL with a sentence in why (cap bytes) for a 400 reply. */
int agent_parse_register(const char *body, size_t len, struct agent_register_req *ret, char *why, size_t cap);
int agent_parse_heartbeat(const char *body, size_t len, int *ret_progress, char *status, size_t status_cap,
                          char *why, size_t cap);
int agent_parse_event(const char *body, size_t len, char *event, size_t event_cap, char *detail, size_t detail_cap,
                      int *ret_progress, char *why, size_t cap);

/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdio.h>

#include "metald/api.h"
#include "metald/log.h"
#include "metald/secret.h"
#include "metald/util.h"

#include "http_api.h"

#define ADMIN_TOKEN_MIN_BYTES 32        /* a shorter token is too easy to guess */

bool http_api_path(const char *path)
{
        return str_has_prefix(path, "/v1/agent/") || str_has_prefix(path, "/v1/admin/");
}

int http_admin_token_load(struct http_service *s)
{
        const char *path = s->cfg->control.admin_token_file;
        _cleanup_close_ int fd = -1;
        char token[257];
        ssize_t n;

        if (!*path)
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return log_error_errno(-errno, "http: cannot read control.admin_token_file %s: %m", path);
        n = read(fd, token, sizeof(token) - 1);
        if (n < 0)
                return log_error_errno(-errno, "http: cannot read control.admin_token_file %s: %m", path);
        token[n] = '\0';
        token[strcspn(token, "\r\n")] = '\0';
        if (strlen(token) < ADMIN_TOKEN_MIN_BYTES || strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                                    "0123456789-_.~+/=") != strlen(token)) {
                explicit_bzero(token, sizeof(token));
                return log_error_errno(-EINVAL, "http: control.admin_token_file %s must hold one token of at least %d "
                                                "printable characters", path, ADMIN_TOKEN_MIN_BYTES);
        }
        secret_hash(token, s->admin_token_hash);
        explicit_bzero(token, sizeof(token));
        s->admin_enabled = true;
        log_info("http: /v1/admin/ enabled with a bearer token");
        return 0;
}

static bool admin_authorized(const struct http_service *s, const char *auth)
{
        uint8_t h[32];

        if (!s->admin_enabled || !auth || strncmp(auth, "Bearer ", 7) != 0)
                return false;
        secret_hash(auth + 7, h);
        return secret_hash_equal(h, s->admin_token_hash);
}

static enum MHD_Result send_json(struct http_request *req, struct api_response *resp)
{
        size_t len = resp->body.len;
        char *data = buf_steal(&resp->body);
        struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
        char retry[16];

        if (!r) {
                free(data);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type : "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (resp->retry_after_s) {
                snprintf(retry, sizeof(retry), "%u", resp->retry_after_s);
                MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry);
        }
        return http_queue(req, (unsigned)resp->status, r, len);
}

enum MHD_Result http_api_error(struct http_request *req, int status, const char *msg)
{
        struct api_response resp;
        enum MHD_Result r;

        api_response_init(&resp);
        resp.status = status;
        buf_printf(&resp.body, "{\"error\":\"%s\"}", msg);     /* msg: fixed text, nothing to escape */
        r = send_json(req, &resp);
        api_response_free(&resp);
        return r;
}

enum MHD_Result http_api_serve(struct http_request *req)
{
        struct http_service *s = req->svc;
        bool admin = str_has_prefix(req->target.path, "/v1/admin/");
        struct api_request ar = {
                .method = req->method,
                .path = req->target.path,
                .authorization = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                .content_type = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                .body = req->body.data ? req->body.data : "",
                .body_len = req->body.len,
                .peer_ip = req->peer_ip,
        };
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        struct api_response resp;
        enum MHD_Result r;

        req->route = admin ? HTTP_ROUTE_ADMIN : HTTP_ROUTE_AGENT;
        if (req->body_too_large)
                return http_api_error(req, 413, "the body is larger than 64 KiB");
        if (admin && !s->admin_enabled)
                return http_api_error(req, 404, "the admin API is not enabled over HTTP");
        if (admin && !admin_authorized(s, ar.authorization))
                return http_api_error(req, 401, "missing or wrong admin token");
        api_response_init(&resp);
        if (admin)
                admin_api_handle(s->registry, &ar, now, &resp);
        else
                agent_api_handle(s->registry, &ar, now, &resp);
        r = send_json(req, &resp);
        api_response_free(&resp);
        return r;
}

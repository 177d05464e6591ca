/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The router: what each request target is, the checks made before a body is
 * read, and the handler that answers. It depends on its handlers; they know
 * nothing of it.
 */
#include "metald/util.h"

#include "http_api.h"
#include "http_boot.h"
#include "http_conn.h"
#include "http_route.h"
#include "http_static.h"

static enum MHD_Result serve_metrics(struct http_request *req)
{
        struct buf out = BUF_INIT(HTTP_MAX_GENERATED_BYTES);
        size_t len;

        if (metrics_render(&out) < 0) {
                buf_free(&out);
                return http_respond_text(req, 503, "metrics unavailable\n");
        }
        len = out.len;
        return http_respond_buffer(req, 200, buf_steal(&out), len, "text/plain; version=0.0.4; charset=utf-8");
}

/* Whether route() sends path to http_static_serve(); the acceptor asks the same. */
bool http_is_static_path(const struct http_service *s, const char *path)
{
        return strcmp(path, "/healthz") != 0 && strcmp(path, "/metrics") != 0 && strcmp(path, s->script_path) != 0 &&
               !http_api_path(path);
}

static enum MHD_Result route(struct http_request *req)
{
        const char *p = req->target.path;

        if (http_is_static_path(req->svc, p)) {
                req->route = HTTP_ROUTE_STATIC;
                return http_static_serve(req);
        }
        if (strcmp(p, "/healthz") == 0) {
                req->route = HTTP_ROUTE_HEALTHZ;
                return http_respond_text(req, 200, "ok\n");
        }
        if (strcmp(p, "/metrics") == 0) {
                req->route = HTTP_ROUTE_METRICS;
                return serve_metrics(req);
        }
        if (strcmp(p, req->svc->script_path) == 0) {
                req->route = HTTP_ROUTE_SCRIPT;
                return http_boot_serve(req);
        }
        return http_api_serve(req);     /* /v1/agent/ or /v1/admin/: all that is left */
}

/* A body announced on a request no route takes one for. */
static bool has_body(struct http_request *req)
{
        const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);

        return te || (cl && strspn(cl, "0") != strlen(cl));
}

/*
 * The first call comes with the headers, before any body: refusals made here
 * make MHD close the connection instead of reading what the client sends.
 */
static enum MHD_Result first_call(struct http_request *req, const char *method)
{
        const char *cl;
        int r;

        str_copy(req->method, sizeof(req->method), method);
        req->is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        if (req->uri_too_long)
                return http_respond_text(req, 414, "URI too long\n");
        r = http_target_parse(req->uri, req->uri_len, &req->target);
        if (r == -E2BIG)
                return http_respond_text(req, 414, "URI too long\n");
        if (r < 0)
                return http_respond_text(req, 400, "bad request target\n");
        req->api = http_api_path(req->target.path);
        if (req->api) {
                /* the JSON APIs take bodies, bounded before a byte of it is read */
                cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl && (strlen(cl) > 9 || strtoull(cl, NULL, 10) > API_MAX_BODY))
                        return http_api_error(req, 413, "the body is larger than 64 KiB");
                req->body = BUF_INIT(API_MAX_BODY);
                return MHD_YES;
        }
        if (!req->is_head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
                return http_respond_text(req, 405, "method not allowed\n");
        if (has_body(req))
                return http_respond_text(req, 413, "no request body expected\n");
        return MHD_YES;
}

enum MHD_Result http_route_request(struct http_request *req, const char *method, const char *upload_data,
                                   size_t *upload_size)
{
        if (!req->headers_seen) {
                req->headers_seen = true;
                return first_call(req, method);
        }
        if (*upload_size) {
                /* API bodies are kept up to their cap; any other body is zero-length chunked */
                if (req->api && buf_append(&req->body, upload_data, *upload_size) < 0)
                        req->body_too_large = true;
                *upload_size = 0;
                return MHD_YES;
        }
        /* answered on the final call, so that keep-alive connections stay open */
        return route(req);
}

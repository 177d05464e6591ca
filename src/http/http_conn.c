/* SPDX-License-Identifier: Apache-2.0 */
/* What every route answers with: queueing a response and recording its status and size. */
#include "metald/util.h"

#include "http_conn.h"

#define HTTP_RETRY_AFTER "5"            /* seconds, sent with 503 */

bool http_conn_is_stream(const struct http_service *s, struct MHD_Connection *conn)
{
        const union MHD_ConnectionInfo *di = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);

        return s->stream_mhd && di && di->daemon == s->stream_mhd;
}

enum MHD_Result http_queue(struct http_request *req, unsigned status, struct MHD_Response *resp,
                           uint64_t body_bytes)
{
        enum MHD_Result r;

        if (!resp)
                return MHD_NO;          /* MHD closes the connection */
        r = MHD_queue_response(req->conn, status, resp);
        MHD_destroy_response(resp);
        if (r == MHD_YES) {
                req->status = status;
                req->body_bytes = req->is_head ? 0 : body_bytes;
        }
        return r;
}

enum MHD_Result http_respond_text(struct http_request *req, unsigned status, const char *text)
{
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

        if (!resp)
                return MHD_NO;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") != MHD_YES ||
            (status == 405 && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) ||
            (status == 503 &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, HTTP_RETRY_AFTER) != MHD_YES)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_queue(req, status, resp, strlen(text));
}

enum MHD_Result http_respond_buffer(struct http_request *req, unsigned status, char *data, size_t len,
                                    const char *content_type)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);

        if (!resp) {
                free(data);
                return MHD_NO;
        }
        /* generated per request: never to be reused from a cache */
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_queue(req, status, resp, len);
}

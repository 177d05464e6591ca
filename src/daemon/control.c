/* SPDX-License-Identifier: Apache-2.0 */
#include <microhttpd.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "metald/api.h"
#include "metald/log.h"
#include "metald/runtime.h"
#include "metald/util.h"

#include "control.h"

/*
 * The operator interface: the admin API on a unix socket. Who may connect is
 * decided by the socket's file mode and owner; there is no other
 * authentication here. One thread: operators are few.
 */
struct control_service {
        const struct runtime *rt;
        struct MHD_Daemon *mhd;
        int fd;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct control_request {
        struct buf body;
        bool too_large;
};

static enum MHD_Result send_json(struct MHD_Connection *conn, const struct api_response *r)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(r->body.len, r->body.data ? r->body.data : "",
                                                                    MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        ret = MHD_queue_response(conn, (unsigned)r->status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result dispatch(struct control_service *s, struct MHD_Connection *conn, const char *url,
                                const char *method, struct control_request *cr)
{
        struct api_request req = {
                .method = method, .path = url, .body = cr->body.data ? cr->body.data : "", .body_len = cr->body.len,
                .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        };
        struct api_response resp;
        enum MHD_Result r;

        api_response_init(&resp);
        if (cr->too_large)
                resp.status = 413, buf_puts(&resp.body, "{\"error\":\"the body is larger than 64 KiB\"}");
        else
                admin_api_handle(s->rt->registry, &req, (int64_t)(now_realtime_usec() / USEC_PER_SEC), &resp);
        r = send_json(conn, &resp);
        api_response_free(&resp);
        return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
        struct control_request *cr = *req_cls;

        (void)version;
        if (!cr) {
                cr = calloc(1, sizeof(*cr));
                if (!cr)
                        return MHD_NO;
                cr->body = BUF_INIT(API_MAX_BODY);
                *req_cls = cr;
                return MHD_YES;
        }
        if (*upload_size) {
                if (buf_append(&cr->body, upload_data, *upload_size) < 0)
                        cr->too_large = true;
                *upload_size = 0;
                return MHD_YES;
        }
        return dispatch(cls, conn, url, method, cr);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode t)
{
        struct control_request *cr = *req_cls;

        (void)cls, (void)conn, (void)t;
        if (cr) {
                buf_free(&cr->body);
                free(cr);
        }
        *req_cls = NULL;
}

/* Outside systemd nothing creates /run/metald: make the socket's directory. */
static int make_parent(const char *path)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        char *slash;

        if (str_copy(dir, sizeof(dir), path) < 0)
                return -ENAMETOOLONG;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = '\0';
        return mkdir_p(dir, 0755);
}

/* A stale socket file from a crashed run is replaced; a live one means another metald. */
static int bind_unix(const char *path, mode_t mode, int *ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int e;

        if (fd < 0)
                return -errno;
        if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) < 0)
                return -ENAMETOOLONG;
        if ((e = make_parent(path)) < 0)
                return e;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return -EADDRINUSE;
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 || listen(fd, 16) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

int control_service_start(const struct runtime *rt, struct control_service **ret)
{
        const struct control_config *c = &rt->cfg->control;
        struct control_service *s = calloc(1, sizeof(*s));
        int e;

        if (!s)
                return -ENOMEM;
        s->rt = rt;
        s->fd = -1;
        str_copy(s->path, sizeof(s->path), c->socket);
        if ((e = bind_unix(c->socket, c->socket_mode, &s->fd)) < 0) {
                log_error("control: cannot listen on %s: %s", c->socket,
                          e == -EADDRINUSE ? "another metald is using it" : strerror(-e));
                free(s);
                return e;
        }
        s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
                                  MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                  MHD_OPTION_END);
        if (!s->mhd) {
                log_error("control: cannot start the control socket server on %s", c->socket);
                control_service_stop(s);
                return -EIO;
        }
        log_info("control: listening on %s (mode %04o)", c->socket, c->socket_mode);
        *ret = s;
        return 0;
}

void control_service_stop(struct control_service *s)
{
        if (!s)
                return;
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        if (s->fd >= 0)
                close(s->fd);
        (void)unlink(s->path);
        free(s);
}

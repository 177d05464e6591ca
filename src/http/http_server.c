/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "metald/http_service.h"
#include "metald/log.h"
#include "metald/registry.h"
#include "metald/util.h"

#include "http_accept.h"
#include "http_api.h"
#include "http_conn.h"
#include "http_route.h"

/*
 * Threading: two libmicrohttpd daemons behind one acceptor (http_accept.c),
 * which owns the listening socket and hands each connection to one of them.
 *
 * Most connections go to an internal thread pool (MHD_OPTION_THREAD_POOL_SIZE),
 * two threads per CPU by default: a request costs a worker a few non-blocking
 * syscalls and a slow client only holds its own connection. On 2 CPUs, with
 * 256 connections asking for a small file, 4 threads served 38,600 requests/s
 * where 2 served 36,500 (tests/bench/bench-http.sh, median of 5). The pool's
 * threads run poll(2) loops: with connections handed over from another thread,
 * libmicrohttpd 0.9.75's epoll loops served 256 connections in bursts, now
 * and then only 100-2,500 small requests/s instead of ~33,000; the poll loops
 * served every run at full speed.
 *
 * A connection whose first request is for a large file goes to the second
 * daemon, a thread per connection, up to http.stream_connections of them:
 * there MHD sends 2 MiB per sendfile(2) call instead of 128 KiB per event-loop
 * turn, which is what a single connection needs to keep up with nginx. MHD
 * cannot suspend a request in that mode, so a stream thread waiting for a
 * digest blocks, holding only its own connection.
 */
#define HTTP_POOL_FLAGS (MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET | \
                         MHD_USE_ITC | MHD_USE_ERROR_LOG)
#define HTTP_STREAM_FLAGS (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET | \
                           MHD_USE_ITC | MHD_USE_ERROR_LOG)

static _Thread_local struct http_worker_slot *tls_slot;
static _Thread_local const struct http_service *tls_owner;

/*
 * Each pool thread claims a slot on its first callback; the heartbeat scans
 * the claimed ones. Stream threads come and go with their connections and
 * hold only their own: they get a slot nobody watches.
 */
static struct http_worker_slot *worker_slot(struct http_service *s, struct MHD_Connection *conn)
{
        static _Thread_local struct http_worker_slot unwatched;

        if (tls_owner != s) {
                if (http_conn_is_stream(s, conn)) {
                        tls_slot = &unwatched;
                } else {
                        unsigned i = atomic_fetch_add(&s->n_slots, 1);

                        tls_slot = &s->slots[MIN(i, (unsigned)HTTP_MAX_THREADS)];
                }
                tls_owner = s;
        }
        return tls_slot;
}

static void slot_enter(struct http_worker_slot *slot)
{
        atomic_store_explicit(&slot->busy_since, now_monotonic_usec(), memory_order_relaxed);
}

static void slot_leave(struct http_worker_slot *slot)
{
        atomic_store_explicit(&slot->busy_since, 0, memory_order_relaxed);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
        struct http_worker_slot *slot = worker_slot(cls, conn);
        struct http_request *req = *req_cls;
        enum MHD_Result r;

        slot_enter(slot);
        r = req ? http_route_request(req, method, upload_data, upload_size) : MHD_NO;
        slot_leave(slot);
        return r;
}

static void format_peer(struct MHD_Connection *conn, char *buf, size_t cap, uint32_t *ret_ip)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        char ip[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (sa && sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
                port = ntohs(in->sin_port);
                if (ret_ip)
                        *ret_ip = ntohl(in->sin_addr.s_addr);
        } else if (sa && sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
                port = ntohs(in6->sin6_port);
        }
        snprintf(buf, cap, "%s:%u", ip, port);
}

/* The request line has arrived: the raw target (query included) is only available here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
        struct http_service *s = cls;
        struct http_worker_slot *slot = worker_slot(s, conn);
        struct http_request *req;
        size_t n;

        slot_enter(slot);
        req = calloc(1, sizeof(*req));
        if (req) {
                req->svc = s;
                req->conn = conn;
                req->stream = http_conn_is_stream(s, conn);
                req->start_usec = now_monotonic_usec();
                req->fd = -1;
                req->route = HTTP_ROUTE_OTHER;
                n = strnlen(uri, HTTP_MAX_URL_BYTES + 1);
                req->uri_too_long = n > HTTP_MAX_URL_BYTES;
                req->uri_len = MIN(n, (size_t)HTTP_MAX_URL_BYTES);
                memcpy(req->uri, uri, req->uri_len);
                format_peer(conn, req->peer, sizeof(req->peer), &req->peer_ip);
        }
        slot_leave(slot);
        return req;
}

static void access_log(const struct http_request *req, unsigned status, bool complete, uint64_t usec)
{
        char path[512], method[48], st[8], bytes[24], dur[24];
        struct log_field f[] = {
                { "HTTP_METHOD", method }, { "HTTP_PATH", path }, { "HTTP_STATUS", st }, { "HTTP_BYTES", bytes },
                { "DURATION_USEC", dur }, { "PEER", req->peer }, { "MAC", req->mac },
        };

        log_escape(method, sizeof(method), req->method, strlen(req->method));
        log_escape(path, sizeof(path), req->uri, req->uri_len);
        snprintf(st, sizeof(st), "%u", status);
        snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)req->body_bytes);
        snprintf(dur, sizeof(dur), "%llu", (unsigned long long)usec);
        log_fields(LOG_INFO, f, *req->mac ? ARRAY_SIZE(f) : ARRAY_SIZE(f) - 1,
                   "http: %s \"%s %s\" %u %s bytes %.1f ms%s%s%s", req->peer, *method ? method : "-", path, status,
                   bytes, (double)usec / 1000.0, complete ? "" : " (aborted)", *req->note ? " " : "", req->note);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct http_worker_slot *slot = worker_slot(cls, conn);
        struct http_request *req = *req_cls;
        const union MHD_ConnectionInfo *ci;
        bool complete = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
        unsigned status;
        uint64_t usec;

        if (!req)
                return;
        slot_enter(slot);
        *req_cls = NULL;
        status = req->status;
        if (!status && (ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS)))
                status = ci->http_status;       /* an answer MHD gave by itself, e.g. 431 */
        usec = now_monotonic_usec() - req->start_usec;
        if (status >= 100 && status < 600)
                METRIC_INC(http_requests[req->route][status / 100 - 1]);
        if (complete)
                METRIC_ADD(http_bytes, req->body_bytes);
        else
                req->body_bytes = 0;    /* unknown: MHD does not say how far it got */
        metrics_observe(&metrics.http_duration, usec);
        if (log_enabled(LOG_INFO))
                access_log(req, status, complete, usec);
        closep(&req->fd);
        buf_free(&req->body);
        free(req);
        slot_leave(slot);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        static const char key[] = "libmicrohttpd";
        char msg[256], esc[512];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
                n--;
        /* its messages may quote client bytes, and a flood of clients makes many */
        if (log_ratelimit_ok(key, sizeof(key)))
                log_info("http: libmicrohttpd: %s", log_escape(esc, sizeof(esc), msg, n));
}

/*
 * Healthy: no pool thread stuck inside a callback, the digest worker moving,
 * the acceptor turning, the socket listening.
 */
static bool service_healthy(struct http_service *s, uint64_t now, const char **ret_why)
{
        unsigned n = MIN(atomic_load(&s->n_slots), (unsigned)HTTP_MAX_THREADS + 1);
        uint64_t t;
        int on = 0;
        socklen_t len = sizeof(on);

        for (unsigned i = 0; i < n; i++) {
                t = atomic_load_explicit(&s->slots[i].busy_since, memory_order_relaxed);
                if (t && now > t && now - t > HTTP_STUCK_USEC) {
                        *ret_why = "a server thread is stuck in a request";
                        return false;
                }
        }
        t = http_digests_busy_since(s->digests);
        if (t && now > t && now - t > HTTP_STUCK_USEC) {
                *ret_why = "the digest worker is stuck reading a file";
                return false;
        }
        if (!http_acceptor_turning(s, now)) {
                *ret_why = "the acceptor thread is stuck";
                return false;
        }
        if (getsockopt(s->listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on) {
                *ret_why = "the listening socket is gone";
                return false;
        }
        return true;
}

/*
 * The heartbeat. MHD runs its own threads, so there is no loop of ours to
 * time. Instead this thread checks, every HTTP_HEARTBEAT_USEC, what could
 * actually hang the service: metald's callbacks are the only place a pool
 * thread does blocking work (opening files, reading templates, hashing small
 * files, taking the digest lock), so a pool thread that has been inside one
 * for longer than HTTP_STUCK_USEC is hung; the digest worker must finish each
 * read within the same bound; the acceptor loop must turn; the listening
 * socket must still be listening. The heartbeat advances only while all of
 * that holds. It does not prove that MHD's own event loops turn: MHD never
 * gets blocking work from metald, so they can only stall inside the callbacks
 * checked here. Stream threads may wait for a digest; each holds only its
 * own connection, so they are not watched.
 */
static void *timer_thread(void *arg)
{
        struct http_service *s = arg;
        const char *why = NULL;

        pthread_mutex_lock(&s->timer_lock);
        while (!s->stopping) {
                uint64_t now = now_monotonic_usec(), next = now + HTTP_HEARTBEAT_USEC;
                struct timespec ts = { (time_t)(next / USEC_PER_SEC), (long)(next % USEC_PER_SEC) * 1000 };
                bool ok = service_healthy(s, now, &why);

                if (ok)
                        atomic_store(&s->heartbeat, now);
                if (ok == s->unhealthy) {
                        if (ok)
                                log_notice("http: the service is healthy again");
                        else
                                log_warning("http: %s; heartbeat withheld", why);
                        s->unhealthy = !ok;
                }
                pthread_cond_timedwait(&s->timer_cond, &s->timer_lock, &ts);
        }
        pthread_mutex_unlock(&s->timer_lock);
        return NULL;
}

static int timer_start(struct http_service *s)
{
        pthread_condattr_t attr;
        int r;

        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->timer_cond, &attr);
        pthread_condattr_destroy(&attr);
        pthread_mutex_init(&s->timer_lock, NULL);
        atomic_store(&s->heartbeat, now_monotonic_usec());
        r = -pthread_create(&s->timer, NULL, timer_thread, s);
        if (r == 0)
                s->timer_started = true;
        return r;
}

static void timer_stop(struct http_service *s)
{
        if (!s->timer_started)
                return;
        pthread_mutex_lock(&s->timer_lock);
        s->stopping = true;
        pthread_cond_signal(&s->timer_cond);
        pthread_mutex_unlock(&s->timer_lock);
        pthread_join(s->timer, NULL);
        pthread_cond_destroy(&s->timer_cond);
        pthread_mutex_destroy(&s->timer_lock);
        s->timer_started = false;
}

static unsigned default_threads(void)
{
        cpu_set_t set;
        int n = 0;

        if (sched_getaffinity(0, sizeof(set), &set) == 0)
                n = CPU_COUNT(&set);
        if (n <= 0)
                n = (int)sysconf(_SC_NPROCESSORS_ONLN);
        return (unsigned)MAX(1, MIN(2 * n, HTTP_MAX_THREADS));
}

static int open_listener(const struct http_config *c)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(c->port), .sin_addr = c->listen };
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;

        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static struct MHD_Daemon *start_mhd(struct http_service *s, bool stream)
{
        const struct http_config *c = &s->cfg->http;
        struct MHD_OptionItem opts[16] = {
                /* first, so that MHD reports problems with the options after it through it */
                { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s },
                /* the acceptor keeps both daemons together under these; each alone is a backstop */
                { MHD_OPTION_CONNECTION_LIMIT, c->max_connections, NULL },
                { MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_per_client, NULL },
                { MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout_s, NULL },
                { MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_header_bytes, NULL },
                { MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s },
                { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s },
                { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_on_connection, s },
        };
        size_t n = 8;

        if (stream)
                opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_STACK_SIZE, HTTP_STREAM_STACK_BYTES, NULL };
        else if (s->threads > 1)        /* a pool of one is no pool: MHD then runs its single internal thread */
                opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, s->threads, NULL };
        opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
        return MHD_start_daemon(stream ? HTTP_STREAM_FLAGS : HTTP_POOL_FLAGS, 0, NULL, NULL, on_request, s,
                                MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

/* The script URL is exactly what DHCP hands to iPXE; the base is that URL minus "/<boot.script>". */
static int set_urls(struct http_service *s, uint32_t server_ip)
{
        const char *script = s->cfg->boot.script;
        size_t n, tail;
        int r = config_script_url(s->cfg, server_ip, s->script_url, sizeof(s->script_url));

        if (r < 0)
                return r;
        n = strlen(s->script_url);
        tail = strlen(script) + 1;
        if (n < tail || s->script_url[n - tail] != '/' || strcmp(s->script_url + n - tail + 1, script) != 0)
                return -EINVAL;
        memcpy(s->base_url, s->script_url, n - tail);
        s->base_url[n - tail] = '\0';
        while (*script == '/')
                script++;
        if ((size_t)snprintf(s->script_path, sizeof(s->script_path), "/%s", script) >= sizeof(s->script_path))
                return -ENAMETOOLONG;
        return 0;
}

void http_service_stop(struct http_service *s)
{
        if (!s)
                return;
        http_acceptor_stop(s);
        timer_stop(s);
        /* every suspended request must be resumed, every blocked stream woken, before MHD may stop */
        http_digests_stop(s->digests);
        if (s->stream_mhd)
                MHD_stop_daemon(s->stream_mhd);
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        closep(&s->listen_fd);
        http_acceptor_free(s);
        http_digests_free(s->digests);
        closep(&s->root_fd);
        closep(&s->enroll_fd);
        closep(&s->state_fd);
        free(s);
}

static void service_freep(struct http_service **s)
{
        http_service_stop(*s);
}

/* The built enrollment initramfs is served from its own directory, the only file exposed there. */
static int open_enroll_dir(struct http_service *s, const char *path)
{
        char dir[CONFIG_MAX_PATH_BYTES];
        const char *name = strrchr(path, '/');

        if (!name || str_copy(dir, sizeof(dir), path) < 0)
                return log_error_errno(-EINVAL, "http: unusable enrollment initramfs path %s", path);
        dir[name - path] = '\0';
        s->enroll_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->enroll_fd < 0)
                return log_error_errno(-errno, "http: cannot open %s: %m", dir);
        if ((size_t)snprintf(s->enroll_initrd, sizeof(s->enroll_initrd), "%s%s", &HTTP_ENROLL_PREFIX[1], name + 1) >=
            sizeof(s->enroll_initrd))
                return log_error_errno(-ENAMETOOLONG, "http: enrollment initramfs name %s is too long", name + 1);
        return 0;
}

static int service_init(const struct runtime *rt, struct http_service *s)
{
        const struct http_config *c = &rt->cfg->http;
        const char *initrd;
        int r;

        s->registry = rt->registry;
        if ((r = http_admin_token_load(s)) < 0)
                return r;
        s->root_fd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0)
                return log_error_errno(-errno, "http: cannot open root directory %s: %m", c->root);
        if (*rt->enroll_initrd && (r = open_enroll_dir(s, rt->enroll_initrd)) < 0)
                return r;
        /* the image catalog (IMAGE_HTTP_PREFIX) is opened beneath it per request */
        if (*rt->cfg->state_dir && (s->state_fd = open(rt->cfg->state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                log_warning("http: cannot open state_dir %s: %m; images are not served", rt->cfg->state_dir);
        r = set_urls(s, rt->server_ip);
        if (r < 0)
                return log_error_errno(r, "http: cannot derive the boot script URL from boot.http_url '%.64s' "
                                          "and boot.script '%.64s'", rt->cfg->boot.http_url, rt->cfg->boot.script);
        /* what the boot scripts carry, so that `machine show` renders the same command line */
        initrd = *s->enroll_initrd ? s->enroll_initrd : rt->cfg->boot.enroll.initrd;
        if (s->registry && (r = registry_set_enroll_boot(s->registry, s->base_url, initrd)) < 0)
                return log_error_errno(r, "http: the boot URL or the enrollment initrd path is too long");
        r = http_digests_new(&s->digests);
        if (r < 0)
                return log_error_errno(r, "http: cannot start the digest worker: %s", strerror(-r));
        return 0;
}

int http_service_start(const struct runtime *rt, struct http_service **ret)
{
        _cleanup_(service_freep) struct http_service *s = calloc(1, sizeof(*s));
        const struct http_config *c = &rt->cfg->http;
        char addr[16];
        int r;

        if (!s)
                return log_error_errno(-ENOMEM, "http: cannot allocate the service");
        s->cfg = rt->cfg;
        s->root_fd = s->listen_fd = s->enroll_fd = s->state_fd = -1;
        s->acceptor.epoll_fd = s->acceptor.stop_fd = -1;
        s->threads = c->threads ? c->threads : default_threads();
        r = service_init(rt, s);
        if (r < 0)
                return r;
        format_ipv4(addr, c->listen);
        s->listen_fd = open_listener(c);
        if (s->listen_fd < 0)
                return log_error_errno(s->listen_fd, "http: cannot listen on %s:%u: %s", addr, c->port,
                                       strerror(-s->listen_fd));
        s->mhd = start_mhd(s, false);
        if (!s->mhd)
                return log_error_errno(-EIO, "http: libmicrohttpd failed to start on %s:%u", addr, c->port);
        if (c->stream_min_bytes && c->stream_connections) {
                s->stream_mhd = start_mhd(s, true);
                if (!s->stream_mhd)
                        return log_error_errno(-EIO, "http: libmicrohttpd failed to start its stream threads");
        }
        r = http_acceptor_start(s);
        if (r < 0)
                return log_error_errno(r, "http: cannot start the acceptor thread: %s", strerror(-r));
        r = timer_start(s);
        if (r < 0)
                return log_error_errno(r, "http: cannot start the heartbeat thread: %s", strerror(-r));
        log_info("http: serving %s on %s:%u (%u threads)", c->root, addr, c->port, s->threads);
        *ret = TAKE_PTR(s);
        return 0;
}

uint64_t http_service_heartbeat(const struct http_service *s)
{
        return atomic_load_explicit(&((struct http_service *)s)->heartbeat, memory_order_relaxed);
}

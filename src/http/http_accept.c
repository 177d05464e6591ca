/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "metald/log.h"
#include "metald/util.h"

#include "http_accept.h"
#include "http_conn.h"
#include "http_route.h"
#include "http_static.h"

/*
 * The acceptor: one thread owns the listening socket. It accepts, applies the
 * total and per-client connection limits across both MHD daemons, waits for
 * the client's first bytes, reads the request line without consuming it, and
 * hands the socket to one daemon with MHD_add_connection():
 *
 *  - stream_mhd (thread per connection) when the first request is GET or
 *    HEAD of a static file of at least http.stream_min_bytes and fewer than
 *    http.stream_connections streams run;
 *  - mhd (the worker pool) for everything else.
 *
 * The connection stays with that daemon for its life; both serve every route.
 * Why two: libmicrohttpd 0.9.75 sends a file in 128 KiB sendfile(2) calls,
 * each a turn of its event loop, in pool mode, but in 2 MiB calls from a
 * thread of its own; the pool serves many small requests best.
 */

struct http_pending {
        int fd;
        struct sockaddr_in addr;
        uint64_t deadline;
        struct http_pending *prev, *next;
};

#define ACCEPT_BATCH 64                 /* accept(2) calls per turn, so that pending clients get a turn too */
#define ACCEPT_BACKOFF_USEC (100 * USEC_PER_MSEC)       /* after EMFILE and the like */
#define PEEK_BYTES (HTTP_MAX_URL_BYTES + 16)            /* "HEAD " + target + " " */

/* Gives back what admit() or a daemon's start counted for ip. */
static void release(struct http_acceptor *a, uint32_t ip, bool stream)
{
        pthread_mutex_lock(&a->lock);
        if (http_client_count(&a->clients, ip) > 0) {
                http_client_counts_del(&a->clients, ip);
                a->total--;
        }
        a->streams -= stream;
        pthread_mutex_unlock(&a->lock);
}

static bool admit(struct http_service *s, uint32_t ip)
{
        struct http_acceptor *a = &s->acceptor;
        bool ok;

        pthread_mutex_lock(&a->lock);
        ok = a->total < s->cfg->http.max_connections &&
             http_client_count(&a->clients, ip) < s->cfg->http.max_per_client &&
             http_client_counts_add(&a->clients, ip) == 0;
        if (ok)
                a->total++;
        pthread_mutex_unlock(&a->lock);
        return ok;
}

/* Both daemons report each connection they serve here: the counts include them until they close. */
void http_on_connection(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_ConnectionNotificationCode code)
{
        struct http_service *s = cls;
        struct http_acceptor *a = &s->acceptor;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        bool stream = http_conn_is_stream(s, conn);
        uint32_t ip;

        if (!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
                return;
        ip = ((const struct sockaddr_in *)ci->client_addr)->sin_addr.s_addr;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                pthread_mutex_lock(&a->lock);
                if (http_client_counts_add(&a->clients, ip) == 0) {
                        a->total++;
                        a->streams += stream;
                        *ctx = a;       /* counted: the close gives it back */
                }
                pthread_mutex_unlock(&a->lock);
                METRIC_INC(http_connections[stream]);
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *ctx == a) {
                release(a, ip, stream);
                *ctx = NULL;
        }
}

/* Takes p off the pending list and out of the acceptor's epoll set. */
static void pending_unlink(struct http_acceptor *a, struct http_pending *p)
{
        epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
        *(p->prev ? &p->prev->next : &a->head) = p->next;
        *(p->next ? &p->next->prev : &a->tail) = p->prev;
        p->prev = p->next = NULL;
}

/* Closes a connection that never reached a daemon. */
static void pending_drop(struct http_acceptor *a, struct http_pending *p)
{
        pending_unlink(a, p);
        release(a, p->addr.sin_addr.s_addr, false);
        close(p->fd);
        free(p);
}

static void refuse(const struct sockaddr_in *sa, const char *why)
{
        static const char key[] = "http-refuse";
        char ip[INET_ADDRSTRLEN];

        METRIC_INC(http_refused_connections);
        if (log_ratelimit_ok(key, sizeof(key)))
                log_info("http: connection from %s refused: %s", inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip)),
                         why);
}

static void add_pending(struct http_service *s, int fd, const struct sockaddr_in *sa, uint64_t now)
{
        struct http_acceptor *a = &s->acceptor;
        struct http_pending *p;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

        if (!admit(s, sa->sin_addr.s_addr)) {
                refuse(sa, "over the connection limit (total or per client)");
                close(fd);
                return;
        }
        p = calloc(1, sizeof(*p));
        ev.data.ptr = p;
        if (!p || epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                refuse(sa, "out of memory");
                release(a, sa->sin_addr.s_addr, false);
                close(fd);
                free(p);
                return;
        }
        *p = (struct http_pending){ .fd = fd, .addr = *sa, .prev = a->tail,
                                    .deadline = now + s->cfg->http.idle_timeout_s * USEC_PER_SEC };
        *(a->tail ? &a->tail->next : &a->head) = p;
        a->tail = p;
}

static void listen_arm(struct http_service *s, bool on)
{
        struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &s->listen_fd };

        epoll_ctl(s->acceptor.epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
}

static void accept_batch(struct http_service *s, uint64_t now)
{
        static const char key[] = "http-accept";

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                struct sockaddr_in sa;
                socklen_t len = sizeof(sa);
                int fd = accept4(s->listen_fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (fd >= 0) {
                        add_pending(s, fd, &sa, now);
                        continue;
                }
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        int err = errno;

                        /* out of descriptors or memory: a level-triggered listener would spin */
                        if (log_ratelimit_ok(key, sizeof(key)))
                                log_warning("http: accept: %s; pausing for %llu ms", strerror(err),
                                            (unsigned long long)(ACCEPT_BACKOFF_USEC / USEC_PER_MSEC));
                        s->acceptor.paused_until = now + ACCEPT_BACKOFF_USEC;
                        listen_arm(s, false);
                }
                return;
        }
}

/* Which daemon serves a connection whose first bytes are buf. */
static struct MHD_Daemon *daemon_for(struct http_service *s, const char *buf, size_t n)
{
        struct http_acceptor *a = &s->acceptor;
        struct http_target t;
        const char *raw;
        size_t len;
        bool room;

        if (!s->stream_mhd || http_request_line_target(buf, n, &raw, &len) < 0 ||
            http_target_parse(raw, len, &t) < 0 || !http_is_static_path(s, t.path) ||
            !http_static_is_large(s, t.path, s->cfg->http.stream_min_bytes))
                return s->mhd;
        pthread_mutex_lock(&a->lock);
        room = a->streams < s->cfg->http.stream_connections;
        pthread_mutex_unlock(&a->lock);
        return room ? s->stream_mhd : s->mhd;
}

/* The client has sent something (or gone): route it by what it sent. */
static void pending_ready(struct http_service *s, struct http_pending *p)
{
        static const char key[] = "http-handover";
        struct http_acceptor *a = &s->acceptor;
        char buf[PEEK_BYTES];
        struct MHD_Daemon *d;
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_PEEK);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                pending_drop(a, p);     /* closed (or reset) before a request */
                return;
        }
        d = daemon_for(s, buf, (size_t)n);
        pending_unlink(a, p);
        /* from here the daemon counts it, once it has started the connection */
        release(a, p->addr.sin_addr.s_addr, false);
        if (MHD_add_connection(d, p->fd, (const struct sockaddr *)&p->addr, sizeof(p->addr)) != MHD_YES) {
                int err = errno;        /* MHD has closed the socket */

                if (log_ratelimit_ok(key, sizeof(key)))
                        log_warning("http: libmicrohttpd did not take a connection: %s", strerror(err));
        }
        free(p);
}

/* Connections that sent nothing within the idle timeout; the list is in deadline order. */
static void expire(struct http_acceptor *a, uint64_t now)
{
        while (a->head && a->head->deadline <= now)
                pending_drop(a, a->head);
}

static int next_timeout_ms(const struct http_acceptor *a, uint64_t now)
{
        uint64_t wait = USEC_PER_SEC;   /* the heartbeat wants a turn at least this often */

        if (a->head)
                wait = MIN(wait, a->head->deadline - now);
        if (a->paused_until)
                wait = MIN(wait, a->paused_until > now ? a->paused_until - now : 0);
        return (int)((wait + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static void *acceptor_main(void *arg)
{
        struct http_service *s = arg;
        struct http_acceptor *a = &s->acceptor;
        struct epoll_event ev[64];

        for (;;) {
                uint64_t now = now_monotonic_usec();
                int n;

                atomic_store_explicit(&a->turned_at, now, memory_order_relaxed);
                expire(a, now);
                if (a->paused_until && now >= a->paused_until) {
                        a->paused_until = 0;
                        listen_arm(s, true);
                }
                n = epoll_wait(a->epoll_fd, ev, ARRAY_SIZE(ev), next_timeout_ms(a, now));
                now = now_monotonic_usec();
                for (int i = 0; i < n; i++) {
                        if (ev[i].data.ptr == &a->stop_fd)
                                return NULL;
                        if (ev[i].data.ptr == &s->listen_fd)
                                accept_batch(s, now);
                        else
                                pending_ready(s, ev[i].data.ptr);
                }
        }
}

int http_acceptor_start(struct http_service *s)
{
        struct http_acceptor *a = &s->acceptor;
        struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &s->listen_fd };
        struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &a->stop_fd };
        /* MHD's own limits are a backstop per daemon; both together stay under max_connections */
        int r = http_client_counts_init(&a->clients, 2 * (size_t)s->cfg->http.max_connections);

        if (r < 0)
                return r;
        pthread_mutex_init(&a->lock, NULL);
        a->lock_init = true;
        a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->epoll_fd < 0 || a->stop_fd < 0 || epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &lev) < 0 ||
            epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->stop_fd, &sev) < 0)
                return -errno;
        atomic_store(&a->turned_at, now_monotonic_usec());
        r = -pthread_create(&a->thread, NULL, acceptor_main, s);
        if (r == 0)
                a->started = true;
        return r;
}

/* Stops accepting; connections already handed over stay with their daemon. */
void http_acceptor_stop(struct http_service *s)
{
        struct http_acceptor *a = &s->acceptor;
        uint64_t one = 1;

        if (a->started) {
                if (write(a->stop_fd, &one, sizeof(one)) < 0)
                        log_warning("http: cannot wake the acceptor: %m");
                pthread_join(a->thread, NULL);
                a->started = false;
        }
        while (a->head)
                pending_drop(a, a->head);
        closep(&a->epoll_fd);
        closep(&a->stop_fd);
}

void http_acceptor_free(struct http_service *s)
{
        struct http_acceptor *a = &s->acceptor;

        http_client_counts_free(&a->clients);
        if (a->lock_init)
                pthread_mutex_destroy(&a->lock);
        a->lock_init = false;
}

bool http_acceptor_turning(const struct http_service *s, uint64_t now)
{
        uint64_t t = atomic_load_explicit(&s->acceptor.turned_at, memory_order_relaxed);

        return now <= t || now - t <= HTTP_STUCK_USEC;
}

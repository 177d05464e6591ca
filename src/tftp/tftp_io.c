/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "metald/fs.h"
#include "metald/log.h"
#include "metald/metrics.h"
#include "metald/tftp.h"
#include "metald/util.h"

/* Where a request came from and where it arrived. */
struct tftp_origin {
        struct sockaddr_in peer;
        struct in_addr local;           /* our address the request was sent to */
        int ifindex;                    /* arrival interface */
};

struct tftp_session {
        struct tftp_service *svc;
        int fd;                         /* this transfer's socket: its port is our TID */
        size_t index;                   /* in svc->sessions */
        struct sockaddr_in peer;
        struct tftp_xfer x;
        const uint8_t *map;             /* the whole file, only ever read by the kernel while sending */
        size_t map_len;
        uint64_t tx_next, tx_end;       /* DATA blocks still to send; the rest waits for EPOLLOUT */
        bool want_out;
        unsigned gso_blocks;            /* > 1: the socket cuts one send into that many DATA (UDP_SEGMENT) */
        uint64_t started_usec;
        uint64_t resent;                /* DATA blocks sent more than once */
        size_t oack_len;
        uint8_t oack[TFTP_MAX_OACK];
        char name[TFTP_MAX_FILENAME + 1];
};

struct tftp_service {
        const struct config *cfg;
        char ifname[IF_NAMESIZE];       /* SO_BINDTODEVICE, "" for none */
        int root_fd, listen_fd, epoll_fd, stop_fd;
        pthread_t thread;
        bool thread_started;
        _Atomic uint64_t heartbeat;
        struct tftp_session **sessions;
        size_t n_sessions, max_sessions;
        const struct tftp_xfer **candidates;    /* max_sessions long: the table tftp_reclaim_pick chooses from */
        uint64_t next_timer;            /* no deadline expires before this */
        uint8_t rx[TFTP_MAX_REQUEST];
        struct mmsghdr msgs[TFTP_SEND_BATCH];
        struct iovec iov[2 * TFTP_SEND_BATCH];          /* header, payload; header, payload; ... */
        uint8_t hdr[TFTP_SEND_BATCH][TFTP_HEADER_BYTES];
};

enum tftp_end { TFTP_END_COMPLETED, TFTP_END_PROBE, TFTP_END_FAILED, TFTP_END_RECLAIMED };

static void format_peer(char buf[32], const struct sockaddr_in *sa)
{
        char a[16];

        format_ipv4(a, sa->sin_addr);
        snprintf(buf, 32, "%s:%u", a, ntohs(sa->sin_port));
}

static bool warn_ok(const struct sockaddr_in *peer)
{
        return log_enabled(LOG_WARNING) && log_ratelimit_ok(&peer->sin_addr, sizeof(peer->sin_addr));
}

static void escape_name(char *buf, size_t cap, const char *name)
{
        log_escape(buf, cap, name, strnlen(name, TFTP_MAX_FILENAME));
}

/* --- sessions --- */

static void session_free(struct tftp_session *t)
{
        if (!t)
                return;
        if (t->map)
                munmap((void *)t->map, t->map_len);
        if (t->fd >= 0)
                close(t->fd);
        free(t);
}

static void session_freep(struct tftp_session **t) { session_free(*t); }

static void log_finished(const struct tftp_session *t, uint64_t duration_usec)
{
        char peer[32], file[LOG_MAX_FIELD], bytes[24], blksize[12], window[12], resent[24], ms[24];
        const struct log_field f[] = {
                { "PEER", peer }, { "FILE", t->name }, { "BYTES", bytes }, { "BLKSIZE", blksize },
                { "WINDOWSIZE", window }, { "RESENT", resent }, { "DURATION_MS", ms },
        };

        if (!log_enabled(LOG_INFO))
                return;
        format_peer(peer, &t->peer);
        escape_name(file, sizeof(file), t->name);
        snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)t->x.size);
        snprintf(blksize, sizeof(blksize), "%u", t->x.blksize);
        snprintf(window, sizeof(window), "%u", t->x.windowsize);
        snprintf(resent, sizeof(resent), "%llu", (unsigned long long)t->resent);
        snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(duration_usec / USEC_PER_MSEC));
        log_fields(LOG_INFO, f, ARRAY_SIZE(f),
                   "tftp: sent \"%s\" to %s: %s bytes, blksize %s, windowsize %s, %s ms, %s blocks resent", file,
                   peer, bytes, blksize, window, ms, resent);
}

/*
 * Ends a transfer and frees it. A client that answers our OACK with an
 * ERROR only wanted the options (edk2 asks for tsize this way, then sends
 * the real request): that counts as completed, but not in the duration
 * histogram, and is not worth a warning. A reclaimed transfer was logged
 * by session_reclaim.
 */
static void session_end(struct tftp_session *t, enum tftp_end how, const char *reason, uint64_t now)
{
        struct tftp_service *s = t->svc;
        char peer[32], file[LOG_MAX_FIELD];

        if (how == TFTP_END_COMPLETED) {
                METRIC_INC(tftp_completed);
                metrics_observe(&metrics.tftp_duration, now - t->started_usec);
                log_finished(t, now - t->started_usec);
        } else if (how == TFTP_END_PROBE) {
                METRIC_INC(tftp_completed);
        } else if (how == TFTP_END_RECLAIMED) {
                METRIC_INC(tftp_failed);
                METRIC_INC(tftp_reclaimed);
        } else {
                METRIC_INC(tftp_failed);
                if (warn_ok(&t->peer)) {
                        format_peer(peer, &t->peer);
                        escape_name(file, sizeof(file), t->name);
                        log_warning("tftp: transfer of \"%s\" to %s failed: %s", file, peer, reason);
                }
        }
        METRIC_ADD(tftp_active, -1);
        s->sessions[t->index] = s->sessions[--s->n_sessions];
        s->sessions[t->index]->index = t->index;
        session_free(t);
}

static void session_send_error(const struct tftp_session *t, const struct sockaddr_in *to, uint16_t code,
                               const char *msg, enum tftp_error_metric kind)
{
        uint8_t pkt[TFTP_MAX_ERROR_PACKET];
        size_t len;

        if (tftp_build_error(pkt, sizeof(pkt), code, msg, &len) < 0)
                return;
        METRIC_INC(tftp_errors[kind]);
        /* best effort: the transfer ends or goes on whether or not this arrives */
        (void)sendto(t->fd, pkt, len, 0, (const struct sockaddr *)to, sizeof(*to));
}

static void session_want_out(struct tftp_session *t, bool on)
{
        struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = t };

        if (t->want_out == on)
                return;
        if (epoll_ctl(t->svc->epoll_fd, EPOLL_CTL_MOD, t->fd, &ev) == 0)
                t->want_out = on;
}

/* Points the service's message array at count DATA blocks from first. */
static void prepare_blocks(struct tftp_session *t, uint64_t first, unsigned count)
{
        struct tftp_service *s = t->svc;

        for (unsigned i = 0; i < count; i++) {
                uint64_t block = first + i;
                size_t len = tftp_block_len(&t->x, block);

                tftp_data_header(s->hdr[i], block);
                s->iov[2 * i] = (struct iovec){ s->hdr[i], TFTP_HEADER_BYTES };
                s->iov[2 * i + 1] = (struct iovec){ (void *)(t->map + tftp_block_offset(&t->x, block)), len };
                s->msgs[i].msg_hdr = (struct msghdr){
                        .msg_name = &t->peer, .msg_namelen = sizeof(t->peer),
                        .msg_iov = &s->iov[2 * i], .msg_iovlen = len ? 2 : 1,
                };
        }
}

static bool gso_unusable(int error)
{
        return error == EINVAL || error == EIO || error == EMSGSIZE || error == ENOPROTOOPT || error == EOPNOTSUPP;
}

/*
 * Sends n prepared blocks, or the first of them: as one UDP GSO send that the
 * kernel cuts into one datagram per block (the final, short block can only
 * come last), else with one sendmmsg. Returns the blocks sent or -errno.
 */
static int send_blocks(struct tftp_session *t, unsigned n)
{
        struct tftp_service *s = t->svc;
        int k, off = 0;

        if (t->gso_blocks > 1 && n > 1) {
                struct msghdr mh = {
                        .msg_name = &t->peer, .msg_namelen = sizeof(t->peer), .msg_iov = s->iov,
                        .msg_iovlen = 2 * MIN(n, t->gso_blocks),
                };

                if (sendmsg(t->fd, &mh, 0) >= 0)
                        return (int)(mh.msg_iovlen / 2);
                if (!gso_unusable(errno))
                        return -errno;
                /* the path's MTU is below the block size, or the kernel lacks UDP GSO */
                t->gso_blocks = 0;
                (void)setsockopt(t->fd, SOL_UDP, UDP_SEGMENT, &off, sizeof(off));
        }
        k = sendmmsg(t->fd, s->msgs, n, 0);
        return k < 0 ? -errno : k;
}

/*
 * Sends queued DATA blocks until the socket is full. The file is only read
 * by the kernel here: if it shrinks under the mapping, sendmmsg fails with
 * EFAULT instead of the daemon taking SIGBUS.
 */
static int session_flush(struct tftp_session *t)
{
        struct tftp_service *s = t->svc;

        while (t->tx_next < t->tx_end) {
                unsigned n = (unsigned)MIN(t->tx_end - t->tx_next, (uint64_t)TFTP_SEND_BATCH);
                uint64_t bytes = 0;
                int k;

                prepare_blocks(t, t->tx_next, n);
                k = send_blocks(t, n);
                if (k == -EAGAIN || k == -EWOULDBLOCK || k == -ENOBUFS) {
                        session_want_out(t, true);
                        return 0;
                }
                if (k < 0)
                        return k;
                for (int i = 0; i < k; i++)
                        bytes += s->iov[2 * i + 1].iov_len;
                METRIC_ADD(tftp_bytes, bytes);
                t->tx_next += (uint64_t)k;
        }
        session_want_out(t, false);
        return 0;
}

static int session_send(struct tftp_session *t, const struct tftp_send *send)
{
        struct tftp_service *s = t->svc;

        s->next_timer = MIN(s->next_timer, t->x.deadline);
        if (send->resent) {
                t->resent += send->resent;
                METRIC_ADD(tftp_retransmits, send->resent);
        }
        if (send->oack) {
                if (sendto(t->fd, t->oack, t->oack_len, 0, (const struct sockaddr *)&t->peer,
                           sizeof(t->peer)) < 0 && errno != EAGAIN && errno != ENOBUFS)
                        return -errno;
                return 0;
        }
        t->tx_next = send->first;
        t->tx_end = send->first + send->count;
        return session_flush(t);
}

static void session_send_failed(struct tftp_session *t, int r, uint64_t now)
{
        session_send_error(t, &t->peer, TFTP_EUNDEF, "server error", TFTP_ERR_OTHER);
        session_end(t, TFTP_END_FAILED, r == -EFAULT ? "file changed during transfer" : strerror(-r), now);
}

/* Carries out a state machine step; false once the session is gone. */
static bool session_apply(struct tftp_session *t, enum tftp_step step, const struct tftp_send *send, uint64_t now)
{
        int r;

        switch (step) {
        case TFTP_STEP_NONE:
                return true;
        case TFTP_STEP_SEND:
                r = session_send(t, send);
                if (r == 0)
                        return true;
                session_send_failed(t, r, now);
                return false;
        case TFTP_STEP_DONE:
                session_end(t, TFTP_END_COMPLETED, NULL, now);
                return false;
        case TFTP_STEP_GIVE_UP:
                session_send_error(t, &t->peer, TFTP_EUNDEF, "transfer timed out", TFTP_ERR_TIMEOUT);
                session_end(t, TFTP_END_FAILED, "timed out", now);
                return false;
        }
        return true;
}

static void session_client_error(struct tftp_session *t, const struct tftp_client_packet *p, uint64_t now)
{
        char msg[LOG_MAX_FIELD], why[LOG_MAX_FIELD + 32];

        if (t->x.state == TFTP_XFER_OACK_SENT) {
                session_end(t, TFTP_END_PROBE, NULL, now);
                return;
        }
        log_escape(msg, sizeof(msg), p->error_msg, p->error_msg_len);
        snprintf(why, sizeof(why), "client sent error %u \"%s\"", p->error_code, msg);
        session_end(t, TFTP_END_FAILED, why, now);
}

static bool same_peer(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
        return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static void session_stranger(struct tftp_session *t, const struct sockaddr_in *from)
{
        char peer[32];

        session_send_error(t, from, TFTP_EBADID, "unknown transfer ID", TFTP_ERR_OTHER);
        if (warn_ok(from)) {
                format_peer(peer, from);
                log_warning("tftp: datagram from %s on another client's transfer", peer);
        }
}

/* One datagram per call: the socket is level-triggered, so epoll reports the rest. */
static void session_read(struct tftp_session *t, uint64_t now)
{
        struct tftp_service *s = t->svc;
        struct sockaddr_in from;
        socklen_t from_len = sizeof(from);
        struct tftp_client_packet p;
        struct tftp_send send;
        ssize_t n = recvfrom(t->fd, s->rx, sizeof(s->rx), 0, (struct sockaddr *)&from, &from_len);

        if (n < 0)
                return;         /* EAGAIN, or an ICMP error the next timeout deals with */
        if (from_len != sizeof(from) || !same_peer(&from, &t->peer)) {
                session_stranger(t, &from);
                return;
        }
        if (tftp_parse_client_packet(s->rx, (size_t)n, &p) < 0)
                return;         /* too short to mean anything; a timeout resends */
        switch (p.opcode) {
        case TFTP_ACK:
                session_apply(t, tftp_xfer_on_ack(&t->x, p.block, now, &send), &send, now);
                return;
        case TFTP_ERROR:
                session_client_error(t, &p, now);
                return;
        default:
                session_send_error(t, &t->peer, TFTP_EBADOP, "illegal TFTP operation", TFTP_ERR_ILLEGAL);
                session_end(t, TFTP_END_FAILED, "illegal operation from client", now);
                return;
        }
}

static void session_event(struct tftp_session *t, uint32_t events, uint64_t now)
{
        int r;

        if (events & EPOLLOUT) {
                r = session_flush(t);
                if (r < 0) {
                        session_send_failed(t, r, now);
                        return;
                }
        }
        if (events & (EPOLLIN | EPOLLERR))
                session_read(t, now);
}

/* Checks deadlines; runs at most every TFTP_TIMER_TICK_USEC, not on every packet. */
static void run_timers(struct tftp_service *s, uint64_t now)
{
        uint64_t next = now + TFTP_HEARTBEAT_USEC;

        for (size_t i = 0; i < s->n_sessions;) {
                struct tftp_session *t = s->sessions[i];
                struct tftp_send send;

                /* an ended session's slot now holds the last one: look at index i again */
                if (!session_apply(t, tftp_xfer_on_timeout(&t->x, now, &send), &send, now))
                        continue;
                next = MIN(next, t->x.deadline);
                i++;
        }
        s->next_timer = MAX(next, now + TFTP_TIMER_TICK_USEC);
}

/* --- new transfers --- */

static int session_open_file(struct tftp_service *s, struct tftp_session *t)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        void *map;
        int r = fs_open_beneath(s->root_fd, t->name, O_RDONLY, &fd);

        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t)st.st_size > SIZE_MAX)
                return -EFBIG;
        t->map_len = (size_t)st.st_size;
        if (t->map_len == 0)
                return 0;
        map = mmap(NULL, t->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        (void)madvise(map, t->map_len, MADV_SEQUENTIAL);
        t->map = map;
        return 0;
}

static uint32_t interface_mtu(const struct tftp_service *s, int ifindex)
{
        struct ifreq ifr = {};

        if (ifindex <= 0 || !if_indextoname((unsigned)ifindex, ifr.ifr_name))
                return 0;
        if (ioctl(s->listen_fd, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= 0)
                return 0;
        return (uint32_t)ifr.ifr_mtu;
}

static int bind_device(int fd, const char *ifname)
{
        if (!*ifname)
                return 0;
        if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0)
                return -errno;
        return 0;
}

/* Windows go out as UDP GSO sends when the kernel takes them: one pass down the stack per window. */
static void session_enable_gso(struct tftp_session *t)
{
        int size = (int)(t->x.blksize + TFTP_HEADER_BYTES);
        unsigned n = (unsigned)MIN((uint32_t)TFTP_SEND_BATCH, TFTP_MAX_UDP_PAYLOAD / (uint32_t)size);

        if (t->x.windowsize < 2 || n < 2)
                return;
        if (setsockopt(t->fd, SOL_UDP, UDP_SEGMENT, &size, sizeof(size)) == 0)
                t->gso_blocks = n;
}

/* A fresh socket on an ephemeral port of the address the request was sent to, in the epoll set. */
static int session_socket(struct tftp_service *s, struct tftp_session *t, const struct tftp_origin *o)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = o->local };
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int sndbuf = TFTP_SNDBUF_BYTES, r;

        if (fd < 0)
                return -errno;
        /* SO_SNDBUFFORCE passes net.core.wmem_max when we may; else take what the sysctl allows */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        r = bind_device(fd, s->ifname);
        if (r < 0)
                return r;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        t->fd = TAKE_FD(fd);
        session_enable_gso(t);
        return 0;
}

static void session_negotiate(struct tftp_service *s, struct tftp_session *t, const struct tftp_request *req,
                              const struct tftp_origin *o)
{
        const struct tftp_config *c = &s->cfg->tftp;
        const struct tftp_limits lim = {
                .max_blksize = c->max_blksize, .mtu = interface_mtu(s, o->ifindex),
                .max_windowsize = c->max_windowsize, .default_rto_usec = c->timeout_ms * USEC_PER_MSEC,
        };
        struct tftp_negotiation n;

        tftp_negotiate(req, &lim, t->map_len, &n);
        tftp_xfer_init(&t->x, &n, t->map_len, c->retries);
        if (n.oack && tftp_build_oack(t->oack, sizeof(t->oack), &n, &t->oack_len) < 0)
                abort();        /* four options always fit in TFTP_MAX_OACK */
}

/* Opens the file and the transfer socket; on failure the refusal to send. */
static int session_create(struct tftp_service *s, const struct tftp_request *req, const struct tftp_origin *o,
                          struct tftp_session **ret, struct tftp_refusal *why)
{
        _cleanup_(session_freep) struct tftp_session *t = calloc(1, sizeof(*t));
        int r = t ? 0 : -ENOMEM;

        if (t) {
                *t = (struct tftp_session){ .svc = s, .fd = -1, .peer = o->peer };
                r = tftp_map_filename(req->filename, req->filename_len, t->name, sizeof(t->name));
        }
        if (r == 0)
                r = session_open_file(s, t);
        if (r == 0) {
                session_negotiate(s, t, req, o);
                r = session_socket(s, t, o);
        }
        if (r < 0) {
                tftp_open_refusal(r, why);
                return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* --- the listening socket --- */

/* Sends an ERROR from the server port, with the source address the request was sent to. */
static void send_refusal(struct tftp_service *s, const struct tftp_origin *o, const struct tftp_refusal *why)
{
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        } ctl = {};
        uint8_t pkt[TFTP_MAX_ERROR_PACKET];
        struct iovec iov = { pkt, 0 };
        struct msghdr mh = {
                .msg_name = (void *)&o->peer, .msg_namelen = sizeof(o->peer), .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
        };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        struct in_pktinfo pi = { .ipi_spec_dst = o->local };

        if (tftp_build_error(pkt, sizeof(pkt), why->code, why->message, &iov.iov_len) < 0)
                return;
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
        METRIC_INC(tftp_errors[why->metric]);
        (void)sendmsg(s->listen_fd, &mh, 0);
}

static void refuse(struct tftp_service *s, const struct tftp_origin *o, const struct tftp_request *req,
                   const struct tftp_refusal *why)
{
        char peer[32], file[LOG_MAX_FIELD];
        int prio = why->metric == TFTP_ERR_NOT_FOUND ? LOG_DEBUG : LOG_WARNING;

        send_refusal(s, o, why);
        if (!log_enabled(prio) || !log_ratelimit_ok(&o->peer.sin_addr, sizeof(o->peer.sin_addr)))
                return;
        format_peer(peer, &o->peer);
        log_escape(file, sizeof(file), req->filename, req->filename_len);
        log_full(prio, "tftp: refused \"%s\" to %s: %s", file, peer, why->message);
}

/* Transfers already running for this client address; *ret_same_tid when one has its very port. */
static size_t client_transfers(const struct tftp_service *s, const struct sockaddr_in *peer, bool *ret_same_tid)
{
        size_t n = 0;

        *ret_same_tid = false;
        for (size_t i = 0; i < s->n_sessions; i++) {
                const struct tftp_session *t = s->sessions[i];

                if (t->peer.sin_addr.s_addr != peer->sin_addr.s_addr)
                        continue;
                n++;
                *ret_same_tid |= t->peer.sin_port == peer->sin_port;
        }
        return n;
}

/* The session a transfer's state is embedded in. */
static struct tftp_session *session_of(const struct tftp_xfer *x)
{
        return (struct tftp_session *)((uintptr_t)x - offsetof(struct tftp_session, x));
}

/* The stalled transfer to end for a new request: only the client's own when own, else anyone's. */
static struct tftp_session *reclaim_pick(struct tftp_service *s, const struct sockaddr_in *peer, bool own)
{
        size_t n = 0, at;

        for (size_t i = 0; i < s->n_sessions; i++) {
                const struct tftp_session *t = s->sessions[i];

                if (!own || t->peer.sin_addr.s_addr == peer->sin_addr.s_addr)
                        s->candidates[n++] = &t->x;
        }
        if (tftp_reclaim_pick(s->candidates, n, &at) < 0)
                return NULL;
        return session_of(s->candidates[at]);
}

/*
 * Whether a request fits, or else the stalled transfer it replaces in
 * *ret_victim. A client at max_per_client can only take the place of one of
 * its own transfers; when only the server is full, the most stale of all.
 */
static bool admit(struct tftp_service *s, const struct sockaddr_in *peer, size_t mine,
                  struct tftp_session **ret_victim, struct tftp_refusal *why)
{
        size_t per_client = s->cfg->tftp.max_per_client;

        *ret_victim = NULL;
        if (tftp_admit(s->n_sessions, s->max_sessions, mine, per_client, why) == TFTP_REQ_ACCEPT)
                return true;
        *ret_victim = reclaim_pick(s, peer, mine >= per_client);
        return *ret_victim != NULL;
}

static void log_reclaimed(const struct tftp_session *t, const struct sockaddr_in *by, uint64_t now)
{
        char peer[32], other[32], file[LOG_MAX_FIELD], ms[24];
        const struct log_field f[] = { { "PEER", peer }, { "FILE", t->name }, { "STALLED_MS", ms } };

        format_peer(peer, &t->peer);
        format_peer(other, by);
        escape_name(file, sizeof(file), t->name);
        /* monotonic, but never print a wrapped difference */
        snprintf(ms, sizeof(ms), "%llu",
                 (unsigned long long)(now > t->x.progress_at ? (now - t->x.progress_at) / USEC_PER_MSEC : 0));
        log_fields(LOG_WARNING, f, ARRAY_SIZE(f),
                   "tftp: ended stalled transfer of \"%s\" to %s (no progress for %s ms, %u timeouts) "
                   "to make room for a request from %s", file, peer, ms, t->x.tries, other);
}

/* Ends a stalled transfer for a new request: an ERROR on its TID tells the client, if it is still there. */
static void session_reclaim(struct tftp_session *t, const struct sockaddr_in *by, uint64_t now)
{
        session_send_error(t, &t->peer, TFTP_EUNDEF, "transfer stalled", TFTP_ERR_TIMEOUT);
        if (warn_ok(&t->peer))
                log_reclaimed(t, by, now);
        session_end(t, TFTP_END_RECLAIMED, NULL, now);
}

static void start_transfer(struct tftp_service *s, const struct tftp_request *req, const struct tftp_origin *o,
                           uint64_t now)
{
        struct tftp_session *t, *victim;
        struct tftp_refusal why;
        struct tftp_send send;
        bool same_tid;
        size_t mine = client_transfers(s, &o->peer, &same_tid);

        /* a retransmitted request: the running transfer's own timer answers it */
        if (same_tid)
                return;
        /* the file is opened before anything is reclaimed: a request for a missing one ends nothing */
        if (!admit(s, &o->peer, mine, &victim, &why) || session_create(s, req, o, &t, &why) < 0) {
                refuse(s, o, req, &why);
                return;
        }
        if (victim)
                session_reclaim(victim, &o->peer, now);
        t->index = s->n_sessions;
        s->sessions[s->n_sessions++] = t;
        t->started_usec = now;
        METRIC_INC(tftp_started);
        METRIC_ADD(tftp_active, 1);
        session_apply(t, tftp_xfer_start(&t->x, now, &send), &send, now);
}

static void handle_request(struct tftp_service *s, size_t len, bool truncated, const struct tftp_origin *o,
                           uint64_t now)
{
        struct tftp_request req = {};
        struct tftp_refusal why;
        int r = truncated ? -EBADMSG : tftp_parse_request(s->rx, len, &req);

        switch (tftp_request_check(r, &req, &why)) {
        case TFTP_REQ_IGNORE:
                return;
        case TFTP_REQ_REFUSE:
                refuse(s, o, &req, &why);
                return;
        case TFTP_REQ_ACCEPT:
                start_transfer(s, &req, o, now);
                return;
        }
}

static int listener_recv(struct tftp_service *s, struct tftp_origin *o, size_t *ret_len, bool *ret_truncated)
{
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        } ctl;
        struct iovec iov = { s->rx, sizeof(s->rx) };
        struct msghdr mh = {
                .msg_name = &o->peer, .msg_namelen = sizeof(o->peer), .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
        };
        ssize_t n = recvmsg(s->listen_fd, &mh, 0);

        if (n < 0)
                return -errno;
        if (mh.msg_namelen != sizeof(o->peer) || o->peer.sin_port == 0)
                return -EDESTADDRREQ;   /* nowhere to answer */
        o->local = (struct in_addr){ 0 };
        o->ifindex = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                struct in_pktinfo pi;

                if (cm->cmsg_level != IPPROTO_IP || cm->cmsg_type != IP_PKTINFO)
                        continue;
                memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
                o->local = pi.ipi_spec_dst;
                o->ifindex = pi.ipi_ifindex;
        }
        *ret_len = (size_t)n;
        *ret_truncated = mh.msg_flags & MSG_TRUNC;
        return 0;
}

/*
 * One request per wakeup: the socket is level-triggered, and whatever reached
 * the transfer sockets meanwhile (an ERROR ending a probe) is handled before
 * the next request is read.
 */
static void listener_read(struct tftp_service *s, uint64_t now)
{
        struct tftp_origin o;
        size_t len = 0;
        bool truncated = false;

        if (listener_recv(s, &o, &len, &truncated) == 0)
                handle_request(s, len, truncated, &o, now);
}

/* --- the service thread --- */

static int wait_msec(const struct tftp_service *s, uint64_t now)
{
        uint64_t until = MIN(s->next_timer, now + TFTP_HEARTBEAT_USEC);

        if (until <= now)
                return 0;
        return (int)((until - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
}

static void *service_thread(void *arg)
{
        struct tftp_service *s = arg;
        struct epoll_event ev[TFTP_EPOLL_BATCH];

        for (;;) {
                uint64_t now = now_monotonic_usec();
                int n = epoll_wait(s->epoll_fd, ev, TFTP_EPOLL_BATCH, wait_msec(s, now));
                bool requests = false;

                if (n < 0 && errno != EINTR) {
                        log_error("tftp: epoll_wait failed, service stopped: %m");
                        return NULL;
                }
                now = now_monotonic_usec();
                atomic_store_explicit(&s->heartbeat, now, memory_order_relaxed);
                for (int i = 0; i < n; i++) {
                        if (ev[i].data.ptr == &s->stop_fd)
                                return NULL;
                        if (ev[i].data.ptr == &s->listen_fd)
                                requests = true;
                        else
                                session_event(ev[i].data.ptr, ev[i].events, now);
                }
                /*
                 * Requests last: a client that ends a transfer (edk2 after its tsize
                 * probe) and asks again from the same port must not look like a repeat.
                 */
                if (requests)
                        listener_read(s, now);
                if (now >= s->next_timer)
                        run_timers(s, now);
        }
}

/* --- start and stop --- */

static void service_free(struct tftp_service *s)
{
        if (!s)
                return;
        while (s->n_sessions > 0)
                session_end(s->sessions[s->n_sessions - 1], TFTP_END_FAILED, "service stopping",
                            now_monotonic_usec());
        free(s->sessions);
        free(s->candidates);
        closep(&s->root_fd);
        closep(&s->listen_fd);
        closep(&s->epoll_fd);
        closep(&s->stop_fd);
        free(s);
}

static void service_freep(struct tftp_service **s) { service_free(*s); }

static int service_alloc(const struct config *cfg, struct tftp_service **ret)
{
        struct tftp_service *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        *s = (struct tftp_service){
                .cfg = cfg, .root_fd = -1, .listen_fd = -1, .epoll_fd = -1, .stop_fd = -1,
                .max_sessions = cfg->tftp.max_transfers,
        };
        str_copy(s->ifname, sizeof(s->ifname), *cfg->tftp.interface ? cfg->tftp.interface : cfg->interface);
        s->sessions = calloc(s->max_sessions, sizeof(*s->sessions));
        s->candidates = calloc(s->max_sessions, sizeof(*s->candidates));
        if (!s->sessions || !s->candidates) {
                free(s->sessions);
                free(s->candidates);
                free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

static int open_listener(struct tftp_service *s)
{
        const struct tftp_config *c = &s->cfg->tftp;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(c->port), .sin_addr = c->listen };
        int one = 1, r;

        s->listen_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->listen_fd < 0)
                return -errno;
        /* no SO_REUSEADDR: on UDP it would let a second daemon share the port silently */
        if (setsockopt(s->listen_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0)
                return -errno;
        r = bind_device(s->listen_fd, s->ifname);
        if (r < 0)
                return r;
        if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return 0;
}

static int epoll_watch(struct tftp_service *s, int fd, void *tag)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

        return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int open_loop(struct tftp_service *s)
{
        int r;

        s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (s->epoll_fd < 0)
                return -errno;
        s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->stop_fd < 0)
                return -errno;
        r = epoll_watch(s, s->listen_fd, &s->listen_fd);
        return r < 0 ? r : epoll_watch(s, s->stop_fd, &s->stop_fd);
}

int tftp_service_start(const struct runtime *rt, struct tftp_service **ret)
{
        _cleanup_(service_freep) struct tftp_service *s = NULL;
        const struct tftp_config *c = &rt->cfg->tftp;
        char addr[16];
        int r = service_alloc(rt->cfg, &s);

        if (r < 0)
                return log_error_errno(r, "tftp: cannot allocate the service: %s", strerror(-r));
        s->root_fd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0)
                return log_error_errno(-errno, "tftp: cannot open root directory %s: %m", c->root);
        r = open_listener(s);
        if (r < 0) {
                format_ipv4(addr, c->listen);
                return log_error_errno(r, "tftp: cannot bind %s:%u%s%s: %s", addr, c->port, *s->ifname ? " on " : "",
                                       s->ifname, strerror(-r));
        }
        r = open_loop(s);
        if (r < 0)
                return log_error_errno(r, "tftp: cannot set up the event loop: %s", strerror(-r));
        s->next_timer = now_monotonic_usec() + TFTP_HEARTBEAT_USEC;
        atomic_store(&s->heartbeat, now_monotonic_usec());
        r = -pthread_create(&s->thread, NULL, service_thread, s);
        if (r < 0)
                return log_error_errno(r, "tftp: cannot start the service thread: %s", strerror(-r));
        s->thread_started = true;
        format_ipv4(addr, c->listen);
        log_info("tftp: serving %s on %s:%u", c->root, addr, c->port);
        *ret = TAKE_PTR(s);
        return 0;
}

void tftp_service_stop(struct tftp_service *s)
{
        uint64_t one = 1;

        if (!s)
                return;
        if (s->thread_started) {
                /* the eventfd cannot be full: it only ever receives this one write */
                (void)!write(s->stop_fd, &one, sizeof(one));
                pthread_join(s->thread, NULL);
        }
        service_free(s);
}

uint64_t tftp_service_heartbeat(const struct tftp_service *s)
{
        return atomic_load_explicit(&s->heartbeat, memory_order_relaxed);
}

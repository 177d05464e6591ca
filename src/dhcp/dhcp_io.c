/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/sock_diag.h>

#include "metald/dhcp_server.h"
#include "metald/log.h"
#include "metald/metrics.h"
#include "metald/store.h"
#include "metald/util.h"

_Static_assert(_DHCP_MSG_MAX == METRICS_DHCP_TYPES, "metrics count every DHCP message type");

/* One received datagram and what we decided about it. */
struct dhcp_slot {
        uint8_t buf[DHCP_MAX_PACKET + 1];
        struct sockaddr_in src;
        uint8_t control[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct iovec iov;
        int ifindex;
        uint32_t local_ip;
        uint64_t rx_usec;
        int type;
        bool parsed;
        struct dhcp_packet pkt;
        struct dhcp_verdict verdict;
};

struct dhcp_service {
        const struct runtime *rt;
        struct dhcp_server srv;
        struct store *store;
        int fd_server, fd_proxy, stop_fd, epfd;
        pthread_t thread;
        bool thread_started;
        _Atomic uint64_t heartbeat;
        struct dhcp_slot slots[DHCP_RX_BATCH];
        struct mmsghdr msgs[DHCP_RX_BATCH];
        struct store_lease_change changes[DHCP_RX_BATCH];
};

static int restore_one(const struct store_lease *l, void *u)
{
        struct dhcp_service *s = u;

        (void)lease_pool_restore(s->srv.pool, l);
        return 0;
}

/*
 * In proxy mode the server port is shared with the site's DHCP server on this
 * host: bound to 255.255.255.255 the socket gets every broadcast DISCOVER and
 * never a datagram unicast to the host (renewals, relays), which stays the
 * other server's. A full server, the boot-server port and a proxy on a
 * listen_address of its own keep their port to themselves.
 */
static bool shares_port(const struct dhcp_config *d, uint16_t port)
{
        return d->mode == DHCP_MODE_PROXY && port == d->port && d->listen.s_addr == htonl(INADDR_ANY);
}

/* The inode of a UDP socket bound to port in this network namespace, or 0. */
static unsigned long long udp_port_inode(uint16_t port)
{
        FILE *f = fopen("/proc/self/net/udp", "re");
        unsigned long long inode = 0;
        char line[256];

        if (!f)
                return 0;
        /* "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ..." */
        while (!inode && fgets(line, sizeof(line), f)) {
                char *field[10], *save = NULL, *colon;
                size_t n = 0;

                for (char *t = strtok_r(line, " \n", &save); t && n < ARRAY_SIZE(field);
                     t = strtok_r(NULL, " \n", &save))
                        field[n++] = t;
                colon = n == ARRAY_SIZE(field) ? strchr(field[1], ':') : NULL;
                if (colon && strtoul(colon + 1, NULL, 16) == port)
                        inode = strtoull(field[9], NULL, 10);
        }
        fclose(f);
        return inode;
}

static bool fd_dir_has(uint64_t pid, const char *want)
{
        char path[40], link[64];
        struct dirent *e;
        bool found = false;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%llu/fd", (unsigned long long)pid);
        if (!(d = opendir(path)))
                return false;           /* gone, or not ours to look into */
        while (!found && (e = readdir(d))) {
                ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);

                if (n > 0) {
                        link[n] = '\0';
                        found = strcmp(link, want) == 0;
                }
        }
        closedir(d);
        return found;
}

/* Who holds a UDP port here, for an error line: "dnsmasq (pid 812)", or how to find out. */
static void port_holder(uint16_t port, char *buf, size_t cap)
{
        unsigned long long inode = udp_port_inode(port);
        char want[48], path[64], comm[17] = "", name[72];
        _cleanup_close_ int fd = -1;
        struct dirent *p;
        uint64_t pid = 0;
        size_t len = 0;
        DIR *proc;

        snprintf(buf, cap, "another process (ss -ulpn 'sport = :%u' names it)", port);
        if (!inode || !(proc = opendir("/proc")))
                return;
        snprintf(want, sizeof(want), "socket:[%llu]", inode);
        while (!pid && (p = readdir(proc)))
                if (parse_u64(p->d_name, 1, INT32_MAX, &pid) < 0 || !fd_dir_has(pid, want))
                        pid = 0;
        closedir(proc);
        snprintf(path, sizeof(path), "/proc/%llu/comm", (unsigned long long)pid);
        if (!pid || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || read_full(fd, comm, sizeof(comm) - 1, &len) < 0)
                return;
        while (len > 0 && comm[len - 1] == '\n')
                len--;
        log_escape(name, sizeof(name), comm, len);
        snprintf(buf, cap, "%s (pid %llu)", name, (unsigned long long)pid);
}

/* What to do about a port another process holds, in the words of the error line. */
static const char *bind_advice(const struct dhcp_config *d, uint16_t port, bool has_ifname)
{
        if (port != d->port)
                return "is a PXE boot server here already; turn its PXE service off (dnsmasq: pxe-service, "
                       "pxe-prompt) or stop it";
        if (d->mode == DHCP_MODE_FULL)
                return "is a DHCP server here already; stop it, or set dhcp.mode: proxy to boot machines beside it";
        if (!shares_port(d, port))
                return "holds the port, and a proxy on a listen_address of its own does not share it; set "
                       "dhcp.listen_address: 0.0.0.0 to share it";
        if (has_ifname)
                return "holds the port and does not share it; run dnsmasq with --bind-interfaces or --bind-dynamic "
                       "(any other server: SO_REUSEADDR, or bound to its own address)";
        return "holds the port and does not share it; run dnsmasq with --bind-interfaces or --bind-dynamic "
               "(any other server: SO_REUSEADDR, or bound to its own address), or set dhcp.interface";
}

/* One error line for a failed bind: what failed, and when the port is taken, by whom and what to do. */
static int bind_error(const struct dhcp_config *d, const struct sockaddr_in *sa, const char *ifname, int err)
{
        uint16_t port = ntohs(sa->sin_port);
        char addr[16], on[IF_NAMESIZE + 4] = "", who[128];

        format_ipv4(addr, sa->sin_addr);
        if (*ifname)
                snprintf(on, sizeof(on), " on %s", ifname);
        if (err != -EADDRINUSE)
                return log_error_errno(err, "dhcp: cannot bind %s:%u%s: %s", addr, port, on, strerror(-err));
        port_holder(port, who, sizeof(who));
        return log_error_errno(err, "dhcp: cannot bind %s:%u%s: %s: %s %s", addr, port, on, strerror(-err), who,
                               bind_advice(d, port, *ifname));
}

static int open_socket(const struct runtime *rt, uint16_t port, int *ret)
{
        const struct dhcp_config *d = &rt->cfg->dhcp;
        const char *ifname = *d->interface ? d->interface : rt->cfg->interface;
        bool shared = shares_port(d, port);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = d->listen };
        int one = 1, rcvbuf = (int)d->rcvbuf_bytes;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -errno;
        if (shared)
                sa.sin_addr.s_addr = htonl(INADDR_BROADCAST);
        /* SO_REUSEADDR only where the port is meant to be shared: elsewhere a second server must fail */
        if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
            (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0))
                return -errno;
        /* a burst of a few thousand DISCOVERs must not overflow the queue */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        if (*ifname && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0)
                return log_error_errno(-errno, "dhcp: cannot bind to interface %s: %m", ifname);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return bind_error(d, &sa, ifname, -errno);
        *ret = TAKE_FD(fd);
        return 0;
}

static void read_pktinfo(struct dhcp_slot *sl, const struct msghdr *mh)
{
        sl->ifindex = 0;
        sl->local_ip = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c)) {
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                        struct in_pktinfo pi;

                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        sl->ifindex = pi.ipi_ifindex;
                        sl->local_ip = ntohl(pi.ipi_spec_dst.s_addr);
                }
        }
}

/* Teaches the kernel chaddr for yiaddr so a unicast reply needs no ARP from a client without an address. */
static int set_arp(int fd, int ifindex, uint32_t ip, const uint8_t chaddr[6])
{
        struct arpreq req = { .arp_flags = ATF_COM };
        struct sockaddr_in *pa = (struct sockaddr_in *)&req.arp_pa;

        pa->sin_family = AF_INET;
        pa->sin_addr.s_addr = htonl(ip);
        req.arp_ha.sa_family = ARPHRD_ETHER;
        memcpy(req.arp_ha.sa_data, chaddr, 6);
        if (!if_indextoname((unsigned)ifindex, req.arp_dev))
                return -errno;
        return ioctl(fd, SIOCSARP, &req) < 0 ? -errno : 0;
}

/*
 * A reply to a relay leaves by the routing table, not by the arrival
 * interface: without a route back to the relay's subnet it cannot be sent
 * (bound to an interface, the kernel ARPs for giaddr there instead).
 */
static void log_relay_send_error(const struct dhcp_slot *sl, int e)
{
        char mac[18], relay[16];
        struct log_field f[2] = { { "MAC", mac }, { "RELAY", relay } };
        const char *name = strerrorname_np(e);

        if (!log_enabled(LOG_WARNING))
                return;
        format_mac(mac, sl->pkt.chaddr);
        format_ipv4(relay, (struct in_addr){ htonl(sl->pkt.giaddr) });
        log_fields(LOG_WARNING, f, 2,
                   "dhcp: cannot send %s for %s to relay %s: %s (%s); add a route on this host to the relay's "
                   "subnet (the network of %s)", dhcp_msg_type_name(sl->verdict.reply_type), mac, relay, strerror(e),
                   name ? name : "unknown errno", relay);
}

static void send_reply(int fd, struct dhcp_slot *sl)
{
        struct dhcp_verdict *v = &sl->verdict;
        uint8_t control[CMSG_SPACE(sizeof(struct in_pktinfo))] = { 0 };
        struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(v->dst_port) };
        struct iovec iov = { v->reply, v->len };
        struct msghdr mh = { .msg_name = &dst, .msg_namelen = sizeof(dst), .msg_iov = &iov, .msg_iovlen = 1 };
        struct cmsghdr *c;
        struct in_pktinfo pi = { .ipi_ifindex = sl->ifindex };

        dst.sin_addr.s_addr = htonl(v->dst_ip);
        if (v->dst_needs_arp && set_arp(fd, sl->ifindex, v->dst_ip, sl->pkt.chaddr) < 0)
                dst.sin_addr.s_addr = htonl(INADDR_BROADCAST);  /* no CAP_NET_ADMIN: broadcast works too */
        if (sl->ifindex > 0 && !sl->pkt.giaddr) {
                /* out of the interface the request came in on, whatever the routing table says */
                mh.msg_control = control;
                mh.msg_controllen = sizeof(control);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = IPPROTO_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(pi));
                memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        }
        if (sendmsg(fd, &mh, 0) < 0) {
                int e = errno;  /* before the rate limiter, which may log */

                if (!log_ratelimit_ok(&dst.sin_addr, sizeof(dst.sin_addr)))
                        return;
                if (sl->pkt.giaddr && v->dst_ip == sl->pkt.giaddr)
                        log_relay_send_error(sl, e);
                else
                        log_warning("dhcp: cannot send %s: %s", dhcp_msg_type_name(v->reply_type), strerror(e));
                return;
        }
        METRIC_INC(dhcp_tx[v->reply_type]);
        metrics_observe(&metrics.dhcp_latency, now_monotonic_usec() - sl->rx_usec);
}

/* The PXE client UUID (option 97), recorded with the exchange: "" when absent, malformed or no identity. */
static void client_uuid(const struct dhcp_packet *p, char buf[UUID_TEXT_BYTES])
{
        const struct dhcp_option *o = &p->opt[DHCP_OPT_CLIENT_UUID];

        buf[0] = '\0';
        if (!o->present || o->len != 17 || o->data[0] != 0)
                return;
        uuid_format(buf, o->data + 1);
}

static void log_verdict(const struct dhcp_slot *sl)
{
        const struct dhcp_verdict *v = &sl->verdict;
        char mac[18], ip[16], xid[12], uuid[UUID_TEXT_BYTES];
        struct log_field f[4];
        size_t n = 3;
        int prio;

        /* lease offers are noise next to their ACK; a proxy offer (no address) is the boot answer */
        prio = (v->reply_type == DHCP_OFFER && v->yiaddr) || v->action == DHCP_ACTION_DROP ? LOG_DEBUG : LOG_INFO;
        if (!log_enabled(prio))
                return;
        format_mac(mac, sl->pkt.chaddr);
        format_ipv4(ip, (struct in_addr){ htonl(v->yiaddr) });
        snprintf(xid, sizeof(xid), "0x%08x", sl->pkt.xid);
        client_uuid(&sl->pkt, uuid);
        f[0] = (struct log_field){ "MAC", mac };
        f[1] = (struct log_field){ "XID", xid };
        f[2] = (struct log_field){ "IP", ip };
        if (*uuid)
                f[n++] = (struct log_field){ "UUID", uuid };
        if (v->action == DHCP_ACTION_REPLY)
                log_fields(prio, f, n, "dhcp: %s %s -> %s %s%s%s%s%s", dhcp_msg_type_name(sl->type), mac,
                           dhcp_msg_type_name(v->reply_type), ip, *uuid ? " uuid " : "", uuid,
                           v->reason ? ": " : "", v->reason ? v->reason : "");
        else if (v->yiaddr)
                log_fields(prio, f, n, "dhcp: %s %s %s: %s", dhcp_msg_type_name(sl->type), mac, ip,
                           v->reason ? v->reason : "ignored");
        else
                log_fields(prio, f, 2, "dhcp: %s %s: %s", dhcp_msg_type_name(sl->type), mac,
                           v->reason ? v->reason : "ignored");
}

static void decide_slot(struct dhcp_service *s, struct dhcp_slot *sl, uint16_t port, int64_t now)
{
        const struct runtime *rt = s->rt;
        struct dhcp_link link = {
                .server_ip = rt->cfg->server_address.s_addr ? rt->server_ip : sl->local_ip,
                .local_port = port,
                .src_ip = ntohl(sl->src.sin_addr.s_addr),
                .src_port = ntohs(sl->src.sin_port),
        };

        if (!link.server_ip)
                link.server_ip = rt->server_ip;
        dhcp_decide(&s->srv, &sl->pkt, &link, now, &sl->verdict);
}

/* Parses every datagram of a batch; returns how many are DISCOVERs. */
static unsigned parse_batch(struct dhcp_service *s, unsigned n)
{
        unsigned discovers = 0;

        for (unsigned i = 0; i < n; i++) {
                struct dhcp_slot *sl = &s->slots[i];
                size_t len = s->msgs[i].msg_len;

                read_pktinfo(sl, &s->msgs[i].msg_hdr);
                sl->parsed = len <= DHCP_MAX_PACKET && dhcp_parse(sl->buf, len, &sl->pkt) == 0;
                sl->type = sl->parsed ? dhcp_msg_type(&sl->pkt) : 0;
                sl->verdict.action = DHCP_ACTION_DROP;
                sl->verdict.has_change = false;
                sl->verdict.reason = "malformed";
                if (!sl->parsed) {
                        METRIC_INC(dhcp_rx[0][DHCP_V_MALFORMED]);
                        if (log_ratelimit_ok(&sl->src.sin_addr, sizeof(sl->src.sin_addr)))
                                log_warning("dhcp: dropped a malformed datagram of %zu bytes from %s", len,
                                            inet_ntoa(sl->src.sin_addr));
                }
                discovers += sl->type == DHCP_DISCOVER;
        }
        return discovers;
}

/*
 * True when the socket's receive queue is filling: we are falling behind, not
 * just seeing a burst. SO_MEMINFO reports the queued bytes against the buffer.
 */
static bool falling_behind(int fd)
{
        uint32_t mem[SK_MEMINFO_VARS] = { 0 };
        socklen_t len = sizeof(mem);

        if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 || len < sizeof(uint32_t) * 2)
                return false;
        return mem[SK_MEMINFO_RMEM_ALLOC] > mem[SK_MEMINFO_RCVBUF] / DHCP_SHED_QUEUE_FRACTION;
}

/*
 * When falling behind, REQUESTs are served first and only a share of
 * DISCOVERs is answered: an OFFER whose REQUEST we could not serve is wasted
 * work, so this keeps completed exchanges flat when offered load exceeds capacity.
 */
static void decide_batch(struct dhcp_service *s, unsigned n, uint16_t port, bool backlog)
{
        int64_t now = (int64_t)(now_realtime_usec() / USEC_PER_SEC);
        unsigned offers = 0;

        for (int pass = 0; pass < 2; pass++)
                for (unsigned i = 0; i < n; i++) {
                        struct dhcp_slot *sl = &s->slots[i];
                        bool discover = sl->type == DHCP_DISCOVER;

                        if (!sl->parsed || discover != (pass == 1))
                                continue;
                        if (discover && backlog && offers >= DHCP_MAX_OFFERS_PER_BATCH) {
                                sl->verdict.reason = "overload: DISCOVER shed";
                                continue;
                        }
                        decide_slot(s, sl, port, now);
                        offers += discover && sl->verdict.action == DHCP_ACTION_REPLY;
                }
}

/* One transaction for the batch; nothing is answered unless it is durable. */
static int commit_batch(struct dhcp_service *s, unsigned n)
{
        size_t k = 0;
        int r;

        for (unsigned i = 0; i < n; i++)
                if (s->slots[i].verdict.has_change)
                        s->changes[k++] = s->slots[i].verdict.change;
        if (k == 0)
                return 0;
        r = store_lease_apply(s->store, s->changes, k);
        if (r < 0) {
                log_error("dhcp: cannot store %zu lease changes, not answering: %s", k, strerror(-r));
                return r;
        }
        METRIC_INC(dhcp_store_commits);
        return 0;
}

static enum dhcp_verdict_kind verdict_kind(const struct dhcp_slot *sl, bool store_failed)
{
        if (!sl->parsed)
                return DHCP_V_MALFORMED;
        if (store_failed && sl->verdict.has_change)
                return DHCP_V_STORE_ERROR;
        switch (sl->verdict.action) {
        case DHCP_ACTION_REPLY:  return DHCP_V_REPLY;
        case DHCP_ACTION_SILENT: return DHCP_V_SILENT;
        default:                 return DHCP_V_DROP;
        }
}

static void process(struct dhcp_service *s, int fd, uint16_t port)
{
        unsigned n, discovers;
        int got;
        bool store_failed;

        for (unsigned i = 0; i < DHCP_RX_BATCH; i++) {
                struct dhcp_slot *sl = &s->slots[i];

                sl->iov = (struct iovec){ sl->buf, sizeof(sl->buf) };
                s->msgs[i].msg_hdr = (struct msghdr){
                        .msg_name = &sl->src, .msg_namelen = sizeof(sl->src), .msg_iov = &sl->iov,
                        .msg_iovlen = 1, .msg_control = sl->control, .msg_controllen = sizeof(sl->control),
                };
        }
        got = recvmmsg(fd, s->msgs, DHCP_RX_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
                return;
        n = (unsigned)got;
        uint64_t t = now_monotonic_usec();
        for (unsigned i = 0; i < n; i++)
                s->slots[i].rx_usec = t;
        discovers = parse_batch(s, n);
        decide_batch(s, n, port, n == DHCP_RX_BATCH && discovers > 0 && falling_behind(fd));
        store_failed = commit_batch(s, n) < 0;
        for (unsigned i = 0; i < n; i++) {
                struct dhcp_slot *sl = &s->slots[i];
                enum dhcp_verdict_kind k = verdict_kind(sl, store_failed);

                if (sl->parsed)
                        METRIC_INC(dhcp_rx[sl->type][k]);
                if (k == DHCP_V_MALFORMED || k == DHCP_V_STORE_ERROR)
                        continue;
                log_verdict(sl);
                if (sl->verdict.action == DHCP_ACTION_REPLY)
                        send_reply(fd, sl);
        }
}

static void *dhcp_thread(void *arg)
{
        struct dhcp_service *s = arg;

        for (;;) {
                struct epoll_event ev[4];
                int n = epoll_wait(s->epfd, ev, 4, 500);

                atomic_store(&s->heartbeat, now_monotonic_usec());
                for (int i = 0; i < n; i++) {
                        int fd = ev[i].data.fd;

                        if (fd == s->stop_fd)
                                return NULL;
                        process(s, fd, fd == s->fd_proxy ? s->rt->cfg->dhcp.proxy_port : s->rt->cfg->dhcp.port);
                }
        }
}

static int add_epoll(struct dhcp_service *s, int fd)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

        return fd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int load_leases(struct dhcp_service *s)
{
        const struct config *cfg = s->rt->cfg;
        struct lease_stats st;
        int r;

        if (cfg->dhcp.mode != DHCP_MODE_FULL)
                return 0;
        if ((r = lease_pool_new(&cfg->dhcp, &s->srv.pool)) < 0)
                return log_error_errno(r, "dhcp: cannot allocate the address pools: %s", strerror(-r));
        if ((r = store_open(s->rt->db_path, &s->store)) < 0)
                return log_error_errno(r, "dhcp: cannot open the state database %s: %s", s->rt->db_path,
                                       strerror(-r));
        if ((r = store_lease_foreach(s->store, restore_one, s)) < 0)
                return log_error_errno(r, "dhcp: cannot load leases from %s: %s", s->rt->db_path, strerror(-r));
        lease_pool_stats(s->srv.pool, (int64_t)(now_realtime_usec() / USEC_PER_SEC), &st);
        log_info("dhcp: %llu addresses in %zu subnets, %llu bound leases restored",
                 (unsigned long long)st.total, cfg->dhcp.n_subnets, (unsigned long long)st.bound);
        return 0;
}

int dhcp_service_start(const struct runtime *rt, struct dhcp_service **ret)
{
        struct dhcp_service *s = calloc(1, sizeof(*s));
        const char *shared;
        int r;

        if (!s)
                return -ENOMEM;
        s->rt = rt;
        s->srv.cfg = rt->cfg;
        s->fd_server = s->fd_proxy = s->stop_fd = s->epfd = -1;
        if ((r = load_leases(s)) < 0)
                goto fail;
        if ((r = open_socket(rt, rt->cfg->dhcp.port, &s->fd_server)) < 0)
                goto fail;
        if (rt->cfg->dhcp.proxy_port && (r = open_socket(rt, rt->cfg->dhcp.proxy_port, &s->fd_proxy)) < 0)
                goto fail;
        s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s->stop_fd < 0 || s->epfd < 0) {
                r = -errno;
                goto fail;
        }
        if ((r = add_epoll(s, s->fd_server)) < 0 || (r = add_epoll(s, s->fd_proxy)) < 0 ||
            (r = add_epoll(s, s->stop_fd)) < 0)
                goto fail;
        atomic_store(&s->heartbeat, now_monotonic_usec());
        if ((r = -pthread_create(&s->thread, NULL, dhcp_thread, s)) < 0)
                goto fail;
        s->thread_started = true;
        shared = shares_port(&rt->cfg->dhcp, rt->cfg->dhcp.port) ? " (broadcasts only, shareable)" : "";
        if (rt->cfg->dhcp.proxy_port)
                log_info("dhcp: %s mode, listening on ports %u%s and %u", dhcp_mode_name(rt->cfg->dhcp.mode),
                         rt->cfg->dhcp.port, shared, rt->cfg->dhcp.proxy_port);
        else
                log_info("dhcp: %s mode, listening on port %u%s", dhcp_mode_name(rt->cfg->dhcp.mode),
                         rt->cfg->dhcp.port, shared);
        *ret = s;
        return 0;
fail:
        dhcp_service_stop(s);
        return r;
}

void dhcp_service_stop(struct dhcp_service *s)
{
        uint64_t one = 1;

        if (!s)
                return;
        if (s->thread_started) {
                if (write(s->stop_fd, &one, sizeof(one)) < 0)
                        log_warning("dhcp: cannot wake the service thread: %m");
                pthread_join(s->thread, NULL);
        }
        int fds[] = { s->fd_server, s->fd_proxy, s->stop_fd, s->epfd };
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        store_close(s->store);
        lease_pool_free(s->srv.pool);
        free(s);
}

uint64_t dhcp_service_heartbeat(const struct dhcp_service *s)
{
        return atomic_load(&((struct dhcp_service *)s)->heartbeat);
}

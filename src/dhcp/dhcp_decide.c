/* SPDX-License-Identifier: Apache-2.0 */
#include <netinet/in.h>

#include "metald/cursor.h"
#include "metald/dhcp_server.h"
#include "metald/util.h"

/* Options sent when a client gives no parameter request list. */
static const uint8_t default_params[] = {
        DHCP_OPT_SUBNET_MASK, DHCP_OPT_ROUTER, DHCP_OPT_DNS, DHCP_OPT_DOMAIN, DHCP_OPT_HOSTNAME,
};

static bool wants(const struct dhcp_client_info *ci, uint8_t code)
{
        if (ci->has_prl)
                return ci->prl[code];
        for (size_t i = 0; i < ARRAY_SIZE(default_params); i++)
                if (default_params[i] == code)
                        return true;
        return false;
}

static int drop(struct dhcp_verdict *v, const char *reason)
{
        v->action = DHCP_ACTION_DROP;
        v->reason = reason;
        return 0;
}

static uint32_t lease_time_for(const struct dhcp_config *d, const struct dhcp_subnet *s)
{
        return s && s->lease_time_s ? s->lease_time_s : d->lease_time_s;
}

/* The subnet a request belongs to: the relay's, else the one of the arrival link. */
static int subnet_for(const struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_link *link)
{
        return lease_pool_subnet_of(srv->pool, p->giaddr ? p->giaddr : link->server_ip);
}

static void header_for(const struct dhcp_packet *p, struct dhcp_reply_header *h)
{
        *h = (struct dhcp_reply_header){
                .op = DHCP_OP_REPLY, .htype = p->htype, .hlen = p->hlen, .xid = p->xid,
                .flags = p->flags, .giaddr = p->giaddr,
        };
        memcpy(h->chaddr, p->chaddr, 16);
}

/* RFC 2131 4.1: relay, then ciaddr, then broadcast flag, then unicast to the new address. */
static void destination(const struct dhcp_server *srv, const struct dhcp_packet *p, int type, uint32_t yiaddr,
                        struct dhcp_verdict *v)
{
        const struct dhcp_config *d = &srv->cfg->dhcp;

        v->dst_port = d->client_port;
        v->dst_needs_arp = false;
        if (p->giaddr) {
                v->dst_ip = p->giaddr;
                v->dst_port = d->port;
        } else if (type == DHCP_NAK || (p->flags & DHCP_FLAG_BROADCAST) || (!p->ciaddr && !yiaddr)) {
                v->dst_ip = INADDR_BROADCAST;
        } else if (p->ciaddr) {
                v->dst_ip = p->ciaddr;
        } else {
                v->dst_ip = yiaddr;
                v->dst_needs_arp = true;
        }
}

static int add_lease_opts(struct dhcp_optlist *l, uint32_t lease_s)
{
        if (dhcp_opt_add_u32(l, DHCP_OPT_LEASE_TIME, lease_s) < 0 ||
            dhcp_opt_add_u32(l, DHCP_OPT_T1, lease_s / 2) < 0 ||
            dhcp_opt_add_u32(l, DHCP_OPT_T2, (uint32_t)((uint64_t)lease_s * 7 / 8)) < 0)
                return -E2BIG;
        return 0;
}

static int add_addr_list(struct dhcp_optlist *l, uint8_t code, const uint32_t *addrs, size_t n)
{
        uint8_t b[4 * CONFIG_MAX_DNS_SERVERS];

        for (size_t i = 0; i < n; i++) {
                b[4 * i] = (uint8_t)(addrs[i] >> 24), b[4 * i + 1] = (uint8_t)(addrs[i] >> 16);
                b[4 * i + 2] = (uint8_t)(addrs[i] >> 8), b[4 * i + 3] = (uint8_t)addrs[i];
        }
        return dhcp_opt_add(l, code, b, 4 * n);
}

static int add_net_opts(struct dhcp_optlist *l, const struct dhcp_client_info *ci, const struct dhcp_subnet *s,
                        const char *hostname)
{
        int r = 0;

        if (wants(ci, DHCP_OPT_SUBNET_MASK))
                r |= dhcp_opt_add_u32(l, DHCP_OPT_SUBNET_MASK, s->mask);
        if (s->router && wants(ci, DHCP_OPT_ROUTER))
                r |= dhcp_opt_add_u32(l, DHCP_OPT_ROUTER, s->router);
        if (s->n_dns && wants(ci, DHCP_OPT_DNS))
                r |= add_addr_list(l, DHCP_OPT_DNS, s->dns, s->n_dns);
        if (*s->domain && wants(ci, DHCP_OPT_DOMAIN))
                r |= dhcp_opt_add_str(l, DHCP_OPT_DOMAIN, s->domain);
        if (hostname && *hostname && wants(ci, DHCP_OPT_HOSTNAME))
                r |= dhcp_opt_add_str(l, DHCP_OPT_HOSTNAME, hostname);
        if (wants(ci, DHCP_OPT_BROADCAST))
                r |= dhcp_opt_add_u32(l, DHCP_OPT_BROADCAST, s->network | ~s->mask);
        return r < 0 ? -E2BIG : 0;
}

/* Option 43 for PXE firmware: discovery control 8 = boot the file in this offer. */
static int add_pxe_vendor(struct dhcp_optlist *l, const uint8_t *boot_item, size_t item_len)
{
        uint8_t b[16];
        size_t n = 0;

        if (boot_item) {
                b[n++] = 71;
                b[n++] = (uint8_t)item_len;
                memcpy(b + n, boot_item, item_len);
                n += item_len;
        } else {
                b[n++] = 6, b[n++] = 1, b[n++] = 8;
        }
        b[n++] = 255;
        return dhcp_opt_add(l, DHCP_OPT_VENDOR, b, n);
}

static int add_boot_opts(struct dhcp_optlist *l, const struct dhcp_client_info *ci, const struct dhcp_boot *b,
                         uint32_t server_ip, bool full_mode, const uint8_t *boot_item, size_t item_len)
{
        char ip[16];
        int r = 0;

        if (!b->vendor_class)
                return 0;
        r |= dhcp_opt_add_str(l, DHCP_OPT_VENDOR_CLASS, b->vendor_class);
        if (ci->has_uuid)
                r |= dhcp_opt_add(l, DHCP_OPT_CLIENT_UUID, ci->uuid, 17);
        if (b->vendor_opts || boot_item)
                r |= add_pxe_vendor(l, boot_item, item_len);
        if (ci->ipxe && full_mode) {
                /* 175.176 = 1: we are the only DHCP server, do not wait for proxy offers */
                static const uint8_t no_pxedhcp[] = { 176, 1, 1 };
                r |= dhcp_opt_add(l, DHCP_OPT_IPXE, no_pxedhcp, sizeof(no_pxedhcp));
        }
        if (b->present && wants(ci, DHCP_OPT_TFTP_SERVER) && !str_has_prefix(b->file, "http://")) {
                format_ipv4(ip, (struct in_addr){ htonl(server_ip) });
                r |= dhcp_opt_add_str(l, DHCP_OPT_TFTP_SERVER, ip);
        }
        if (b->present && (wants(ci, DHCP_OPT_BOOTFILE) || strlen(b->file) > 127))
                r |= dhcp_opt_add_str(l, DHCP_OPT_BOOTFILE, b->file);
        return r < 0 ? -E2BIG : 0;
}

/* Echoes 61 (RFC 6842) and, to relays only and last, 82 (RFC 3046); then encodes. */
static int finish(const struct dhcp_packet *p, const struct dhcp_client_info *ci, const struct dhcp_reply_header *h,
                  struct dhcp_optlist *l, struct dhcp_verdict *v)
{
        const struct dhcp_option *cid = &p->opt[DHCP_OPT_CLIENT_ID], *rai = &p->opt[DHCP_OPT_RELAY_AGENT];

        if (cid->present && dhcp_opt_add(l, DHCP_OPT_CLIENT_ID, cid->data, cid->len) < 0)
                return drop(v, "reply too large");
        if (p->giaddr && rai->present && dhcp_opt_add(l, DHCP_OPT_RELAY_AGENT, rai->data, rai->len) < 0)
                return drop(v, "reply too large");
        if (dhcp_build(h, l, ci->max_size, v->reply, sizeof(v->reply), &v->len) < 0)
                return drop(v, "reply too large");
        v->action = DHCP_ACTION_REPLY;
        v->yiaddr = h->yiaddr;
        return 0;
}

static int begin(struct dhcp_optlist *l, int type, uint32_t server_ip)
{
        l->n = l->used = 0;
        if (dhcp_opt_add_u8(l, DHCP_OPT_MSG_TYPE, (uint8_t)type) < 0 ||
            dhcp_opt_add_u32(l, DHCP_OPT_SERVER_ID, server_ip) < 0)
                return -E2BIG;
        return 0;
}

static int nak(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
               const struct dhcp_link *link, const char *why, struct dhcp_verdict *v)
{
        struct dhcp_reply_header h;
        struct dhcp_optlist l;

        header_for(p, &h);
        if (p->giaddr)
                h.flags |= DHCP_FLAG_BROADCAST;
        if (begin(&l, DHCP_NAK, link->server_ip) < 0 || dhcp_opt_add_str(&l, DHCP_OPT_MESSAGE, why) < 0)
                return drop(v, "reply too large");
        v->reply_type = DHCP_NAK;
        v->reason = why;
        destination(srv, p, DHCP_NAK, 0, v);
        return finish(p, ci, &h, &l, v);
}

/* OFFER or ACK carrying a lease on addr in subnet s. */
static int lease_reply(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                       const struct dhcp_link *link, int type, uint32_t addr, int subnet, struct dhcp_verdict *v)
{
        const struct dhcp_subnet *s = &srv->cfg->dhcp.subnets[subnet];
        const struct dhcp_reservation *res = lease_reservation(srv->pool, (uint32_t)subnet, ci->mac);
        struct dhcp_reply_header h;
        struct dhcp_optlist l;
        struct dhcp_boot b;

        dhcp_boot_select(srv->cfg, ci, link->server_ip, false, &b);
        header_for(p, &h);
        h.yiaddr = addr;
        h.ciaddr = type == DHCP_ACK ? p->ciaddr : 0;
        h.siaddr = b.present ? link->server_ip : 0;
        h.file = b.present ? b.file : NULL;
        if (begin(&l, type, link->server_ip) < 0 || add_lease_opts(&l, lease_time_for(&srv->cfg->dhcp, s)) < 0 ||
            add_net_opts(&l, ci, s, res && *res->hostname ? res->hostname : NULL) < 0 ||
            add_boot_opts(&l, ci, &b, link->server_ip, true, NULL, 0) < 0)
                return drop(v, "reply too large");
        v->reply_type = type;
        destination(srv, p, type, addr, v);
        return finish(p, ci, &h, &l, v);
}

static int on_discover(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                       const struct dhcp_link *link, int64_t now, struct dhcp_verdict *v)
{
        int subnet = subnet_for(srv, p, link);
        uint32_t addr;

        if (subnet < 0)
                return drop(v, "no subnet for this link");
        if (lease_offer(srv->pool, (uint32_t)subnet, &ci->key, ci->mac, ci->requested, now,
                        srv->cfg->dhcp.offer_hold_s, &addr) < 0)
                return drop(v, "pool exhausted");
        return lease_reply(srv, p, ci, link, DHCP_OFFER, addr, subnet, v);
}

static int bind_and_ack(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                        const struct dhcp_link *link, int subnet, uint32_t addr, int64_t now, struct dhcp_verdict *v)
{
        const struct dhcp_subnet *s = &srv->cfg->dhcp.subnets[subnet];
        const struct dhcp_reservation *res = lease_reservation(srv->pool, (uint32_t)subnet, ci->mac);
        const char *host = res && *res->hostname ? res->hostname : ci->hostname;
        int r;

        r = lease_bind(srv->pool, (uint32_t)subnet, &ci->key, ci->mac, addr, now,
                       lease_time_for(&srv->cfg->dhcp, s), host, &v->change.lease);
        if (r == -EADDRINUSE)
                return nak(srv, p, ci, link, "address in use by another client", v);
        if (r == -EPERM)
                return nak(srv, p, ci, link, "address is reserved for another client", v);
        if (r < 0)
                return nak(srv, p, ci, link, "address is not available here", v);
        v->change.op = STORE_PUT;
        v->has_change = true;
        return lease_reply(srv, p, ci, link, DHCP_ACK, addr, subnet, v);
}

/* INIT-REBOOT and REBINDING: the client asks to keep an address it believes it has. */
static int confirm(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                   const struct dhcp_link *link, int subnet, uint32_t addr, int64_t now, struct dhcp_verdict *v)
{
        const struct lease *mine = lease_find_client(srv->pool, (uint32_t)subnet, &ci->key);
        const struct dhcp_reservation *res = lease_reservation(srv->pool, (uint32_t)subnet, ci->mac);

        if (res && res->addr != addr)
                return nak(srv, p, ci, link, "a different address is reserved for this client", v);
        if (mine && mine->addr == addr)
                return bind_and_ack(srv, p, ci, link, subnet, addr, now, v);
        if (mine && mine->state == LEASE_BOUND && mine->expires > now)
                return nak(srv, p, ci, link, "client holds a different address", v);
        if (!srv->cfg->dhcp.authoritative)
                return drop(v, "unknown client, not authoritative");
        /* authoritative: grant the address if it is free, as after a lost lease database */
        return bind_and_ack(srv, p, ci, link, subnet, addr, now, v);
}

static int on_request(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                      const struct dhcp_link *link, int64_t now, struct dhcp_verdict *v)
{
        int subnet = subnet_for(srv, p, link);
        uint32_t addr;

        if (ci->server_id) {
                /* SELECTING */
                if (ci->server_id != link->server_ip) {
                        if (subnet >= 0)
                                lease_forget_offer(srv->pool, (uint32_t)subnet, &ci->key);
                        return drop(v, "client selected another server");
                }
                addr = ci->requested ? ci->requested : p->ciaddr;
                if (!addr)
                        return drop(v, "REQUEST without an address");
                if (subnet < 0 || lease_pool_subnet_of(srv->pool, addr) != subnet)
                        return nak(srv, p, ci, link, "address is not on this network", v);
                return bind_and_ack(srv, p, ci, link, subnet, addr, now, v);
        }
        addr = p->ciaddr ? p->ciaddr : ci->requested;      /* RENEWING/REBINDING, else INIT-REBOOT */
        if (!addr)
                return drop(v, "REQUEST without an address");
        if (subnet < 0 && p->ciaddr)
                subnet = lease_pool_subnet_of(srv->pool, p->ciaddr);
        if (subnet < 0)
                return drop(v, "no subnet for this link");
        if (lease_pool_subnet_of(srv->pool, addr) != subnet)
                return srv->cfg->dhcp.authoritative ? nak(srv, p, ci, link, "wrong network", v)
                                                     : drop(v, "wrong network, not authoritative");
        return confirm(srv, p, ci, link, subnet, addr, now, v);
}

static int on_decline(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                      const struct dhcp_link *link, int64_t now, struct dhcp_verdict *v)
{
        if (ci->server_id && ci->server_id != link->server_ip)
                return drop(v, "DECLINE for another server");
        if (lease_decline(srv->pool, &ci->key, ci->requested, now, srv->cfg->dhcp.decline_hold_s,
                          &v->change.lease) < 0)
                return drop(v, "DECLINE of an address the client does not hold");
        v->change.op = STORE_PUT;
        v->has_change = true;
        v->action = DHCP_ACTION_SILENT;
        v->reason = "address declined, quarantined";
        v->yiaddr = ci->requested;
        return 0;
}

static int on_release(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                      const struct dhcp_link *link, int64_t now, struct dhcp_verdict *v)
{
        if (ci->server_id && ci->server_id != link->server_ip)
                return drop(v, "RELEASE for another server");
        if (lease_release(srv->pool, &ci->key, p->ciaddr, now, &v->change.lease) < 0)
                return drop(v, "RELEASE of an address the client does not hold");
        v->change.op = STORE_PUT;
        v->has_change = true;
        v->action = DHCP_ACTION_SILENT;
        v->reason = "released";
        v->yiaddr = p->ciaddr;
        return 0;
}

static int on_inform(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                     const struct dhcp_link *link, struct dhcp_verdict *v)
{
        int subnet = lease_pool_subnet_of(srv->pool, p->ciaddr);
        struct dhcp_reply_header h;
        struct dhcp_optlist l;
        struct dhcp_boot b;

        if (!p->ciaddr || subnet < 0)
                return drop(v, "INFORM from an address outside our subnets");
        dhcp_boot_select(srv->cfg, ci, link->server_ip, false, &b);
        header_for(p, &h);
        h.ciaddr = p->ciaddr;
        h.siaddr = b.present ? link->server_ip : 0;
        h.file = b.present ? b.file : NULL;
        /* no lease time and no yiaddr in an ACK to INFORM */
        if (begin(&l, DHCP_ACK, link->server_ip) < 0 ||
            add_net_opts(&l, ci, &srv->cfg->dhcp.subnets[subnet], NULL) < 0 ||
            add_boot_opts(&l, ci, &b, link->server_ip, true, NULL, 0) < 0)
                return drop(v, "reply too large");
        v->reply_type = DHCP_ACK;
        destination(srv, p, DHCP_ACK, 0, v);
        return finish(p, ci, &h, &l, v);
}

/* The PXE boot item (43.71) a client asks a boot server for, if any. */
static const uint8_t *boot_item(const struct dhcp_packet *p, size_t *ret_len)
{
        const struct dhcp_option *o = &p->opt[DHCP_OPT_VENDOR];
        struct cursor c = cur_init(o->data, o->present ? o->len : 0);
        uint8_t code, len;
        const uint8_t *data;

        while (cur_u8(&c, &code) == 0 && code != 255) {
                if (code == 0)
                        continue;
                if (cur_u8(&c, &len) < 0 || cur_bytes(&c, len, &data) < 0)
                        return NULL;
                if (code == 71 && len == 4) {
                        *ret_len = len;
                        return data;
                }
        }
        return NULL;
}

/* proxyDHCP: boot information only, never an address. */
static int on_proxy(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_client_info *ci,
                    const struct dhcp_link *link, struct dhcp_verdict *v)
{
        bool bootsrv = link->local_port == srv->cfg->dhcp.proxy_port;
        const uint8_t *item = NULL;
        size_t item_len = 0;
        struct dhcp_reply_header h;
        struct dhcp_optlist l;
        struct dhcp_boot b;
        int type;

        if (!ci->pxe && !ci->http_boot)
                return drop(v, "not a PXE client");
        if (bootsrv ? ci->type != DHCP_REQUEST && ci->type != DHCP_INFORM : ci->type != DHCP_DISCOVER)
                return drop(v, "message type is not served by proxyDHCP");
        dhcp_boot_select(srv->cfg, ci, link->server_ip, true, &b);
        if (!b.present)
                return drop(v, "no boot file for this client architecture");
        if (bootsrv)
                item = boot_item(p, &item_len);
        type = bootsrv ? DHCP_ACK : DHCP_OFFER;
        header_for(p, &h);
        h.ciaddr = bootsrv ? p->ciaddr : 0;
        h.siaddr = link->server_ip;
        h.file = b.file;
        if (begin(&l, type, link->server_ip) < 0 ||
            add_boot_opts(&l, ci, &b, link->server_ip, false, item, item_len) < 0)
                return drop(v, "reply too large");
        v->reply_type = type;
        if (bootsrv) {
                v->dst_ip = link->src_ip;
                v->dst_port = link->src_port;
                v->dst_needs_arp = false;
        } else {
                destination(srv, p, type, 0, v);
        }
        return finish(p, ci, &h, &l, v);
}

static int sanity_check(const struct dhcp_packet *p, const struct dhcp_client_info *ci, struct dhcp_verdict *v)
{
        static const uint8_t zero[6];

        if (p->op != DHCP_OP_REQUEST)
                return drop(v, "not a BOOTREQUEST");
        if (p->hlen == 0 || p->hlen > 16)
                return drop(v, "bad hardware address length");
        if (p->htype == 1 && (p->hlen != 6 || memcmp(p->chaddr, zero, 6) == 0))
                return drop(v, "bad Ethernet client address");
        if (ci->key.len == 0)
                return drop(v, "empty client identifier");
        return 1;
}

int dhcp_decide(struct dhcp_server *srv, const struct dhcp_packet *p, const struct dhcp_link *link,
                int64_t now, struct dhcp_verdict *v)
{
        struct dhcp_client_info ci;
        int r;

        v->action = DHCP_ACTION_DROP;
        v->reason = NULL;
        v->reply_type = 0;
        v->has_change = false;
        v->yiaddr = 0;
        v->len = 0;
        if (dhcp_client_info_from(p, &ci) < 0)
                return drop(v, "no DHCP message type (BOOTP is not served)");
        if ((r = sanity_check(p, &ci, v)) <= 0)
                return r;
        if (srv->cfg->dhcp.mode == DHCP_MODE_PROXY || link->local_port == srv->cfg->dhcp.proxy_port)
                return on_proxy(srv, p, &ci, link, v);
        switch (ci.type) {
        case DHCP_DISCOVER: return on_discover(srv, p, &ci, link, now, v);
        case DHCP_REQUEST:  return on_request(srv, p, &ci, link, now, v);
        case DHCP_DECLINE:  return on_decline(srv, p, &ci, link, now, v);
        case DHCP_RELEASE:  return on_release(srv, p, &ci, link, now, v);
        case DHCP_INFORM:   return on_inform(srv, p, &ci, link, v);
        default:            return drop(v, "message type is not for a server");
        }
}

/* SPDX-License-Identifier: Apache-2.0 */
#include <netinet/in.h>

#include "dhcp_client.h"
#include "metald/config.h"
#include "metald/dhcp_server.h"
#include "metald/util.h"
#include "test.h"

static const char base_yaml[] =
        "server: { address: 10.0.0.1 }\n"
        "dhcp:\n"
        "  lease_time: 1h\n"
        "  offer_hold: 30s\n"
        "  decline_hold: 10m\n"
        "  authoritative: %s\n"
        "  mode: %s\n"
        "  subnets:\n"
        "    - network: 10.0.0.0/24\n"
        "      ranges: [10.0.0.100-10.0.0.102]\n"
        "      router: 10.0.0.1\n"
        "      dns: [10.0.0.1, 10.0.0.2]\n"
        "      domain: lab.example\n"
        "      reservations:\n"
        "        - { mac: \"52:54:00:00:00:99\", address: 10.0.0.50, hostname: node-99 }\n"
        "    - network: 10.1.0.0/24\n"
        "      ranges: [10.1.0.10-10.1.0.20]\n"
        "boot:\n"
        "  efi_x64: %s\n";

struct fixture {
        struct config *cfg;
        struct dhcp_server srv;
        struct dhcp_link link;
        struct dhcp_verdict v;
        struct dhcp_packet req, rep;
};

static struct fixture F;
static const int64_t T0 = 1700000000;
#define SERVER IP4(10, 0, 0, 1)

static int setup_with(const char *auth, const char *mode, const char *efi)
{
        char yaml[2048], err[512];

        memset(&F, 0, sizeof(F));
        snprintf(yaml, sizeof(yaml), base_yaml, auth, mode, efi);
        if (config_load_string(yaml, "test.yaml", &F.cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "%s\n", err);
                return -1;
        }
        F.srv.cfg = F.cfg;
        if (F.cfg->dhcp.mode == DHCP_MODE_FULL && lease_pool_new(&F.cfg->dhcp, &F.srv.pool) < 0)
                return -1;
        F.link = (struct dhcp_link){ .server_ip = SERVER, .local_port = 67, .src_port = 68 };
        return 0;
}

static int setup(void) { return setup_with("true", "full", "ipxe.efi"); }

static void teardown(void)
{
        lease_pool_free(F.srv.pool);
        config_free(F.cfg);
        F.cfg = NULL;
        F.srv.pool = NULL;
}

/* Parses and decides c; on a reply, parses it into F.rep. */
static int run(struct client_pkt *c, int64_t now)
{
        cp_end(c);
        if (dhcp_parse(c->b, c->len, &F.req) < 0)
                return -1;
        if (dhcp_decide(&F.srv, &F.req, &F.link, now, &F.v) < 0)
                return -1;
        if (F.v.action == DHCP_ACTION_REPLY && dhcp_parse(F.v.reply, F.v.len, &F.rep) < 0)
                return -1;
        return 0;
}

static uint32_t opt_u32(const struct dhcp_packet *p, int code)
{
        const uint8_t *d = p->opt[code].data;

        return p->opt[code].len == 4 ? (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3] : 0;
}

static bool opt_is(const struct dhcp_packet *p, int code, const char *s)
{
        return p->opt[code].present && p->opt[code].len == strlen(s) && memcmp(p->opt[code].data, s, strlen(s)) == 0;
}

static void mac_n(uint8_t mac[6], int n)
{
        const uint8_t m[6] = { 0x52, 0x54, 0x00, 0x01, 0x00, (uint8_t)n };

        memcpy(mac, m, 6);
}

/* A full DISCOVER/OFFER/REQUEST/ACK; returns the bound address or 0. */
static uint32_t dora(int n, int64_t now)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        mac_n(mac, n);
        cp_init(&c, DHCP_DISCOVER, mac, (uint32_t)n);
        if (run(&c, now) < 0 || F.v.action != DHCP_ACTION_REPLY || F.v.reply_type != DHCP_OFFER)
                return 0;
        a = F.rep.yiaddr;
        cp_init(&c, DHCP_REQUEST, mac, (uint32_t)n);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, SERVER);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, a);
        if (run(&c, now) < 0 || F.v.reply_type != DHCP_ACK || F.rep.yiaddr != a || !F.v.has_change)
                return 0;
        return a;
}

TEST(decide_discover_offers_from_pool)
{
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 42);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_REPLY);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        CHECK(F.rep.yiaddr >= IP4(10, 0, 0, 100) && F.rep.yiaddr <= IP4(10, 0, 0, 102));
        CHECK_EQ(F.rep.op, DHCP_OP_REPLY);
        CHECK_EQ(F.rep.xid, 42);
        CHECK_EQ(F.rep.hops, 0);
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_SERVER_ID), SERVER);
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_LEASE_TIME), 3600);
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_T1), 1800);
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_T2), 3150);
        /* no parameter request list: the default set */
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_SUBNET_MASK), 0xffffff00u);
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_ROUTER), SERVER);
        CHECK_EQ(F.rep.opt[DHCP_OPT_DNS].len, 8);
        CHECK(opt_is(&F.rep, DHCP_OPT_DOMAIN, "lab.example"));
        CHECK(F.v.len >= DHCP_MIN_REPLY);
        CHECK(!F.v.has_change);         /* offers are not persisted */
        /* no broadcast flag, no ciaddr: unicast to the offered address */
        CHECK_EQ(F.v.dst_ip, F.rep.yiaddr);
        CHECK(F.v.dst_needs_arp);
        CHECK_EQ(F.v.dst_port, 68);
        teardown();
}

TEST(decide_broadcast_flag_honoured)
{
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_flags(&c, DHCP_FLAG_BROADCAST);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.dst_ip, INADDR_BROADCAST);
        CHECK(!F.v.dst_needs_arp);
        CHECK_EQ(F.rep.flags, DHCP_FLAG_BROADCAST);
        teardown();
}

TEST(decide_dora_binds_and_persists)
{
        uint32_t a, b;

        CHECK(setup() == 0);
        a = dora(1, T0);
        CHECK(a != 0);
        CHECK_EQ(F.v.change.op, STORE_PUT);
        CHECK_EQ(F.v.change.lease.addr, a);
        CHECK_EQ(F.v.change.lease.state, STORE_LEASE_BOUND);
        CHECK_EQ(F.v.change.lease.expires, T0 + 3600);
        b = dora(2, T0);
        CHECK(b != 0 && b != a);
        /* the same client asking again gets the same address */
        CHECK_EQ(dora(1, T0 + 10), a);
        teardown();
}

TEST(decide_never_offers_one_address_twice)
{
        uint32_t seen[3] = { 0 };
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        for (int i = 0; i < 3; i++) {
                mac_n(mac, 10 + i);
                cp_init(&c, DHCP_DISCOVER, mac, 1);
                CHECK(run(&c, T0) == 0);
                CHECK_EQ(F.v.reply_type, DHCP_OFFER);
                seen[i] = F.rep.yiaddr;
                for (int j = 0; j < i; j++)
                        CHECK(seen[j] != seen[i]);
        }
        /* pool of three is now held by offers: a fourth client gets nothing */
        mac_n(mac, 20);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        CHECK_STREQ(F.v.reason, "pool exhausted");
        /* once the offers expire the address is reclaimed */
        CHECK(run(&c, T0 + 31) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        teardown();
}

TEST(decide_selecting_other_server_frees_offer)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        for (int i = 0; i < 3; i++) {
                mac_n(mac, i);
                cp_init(&c, DHCP_DISCOVER, mac, 1);
                CHECK(run(&c, T0) == 0);
        }
        a = F.rep.yiaddr;
        cp_init(&c, DHCP_REQUEST, mac, 1);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, IP4(10, 0, 0, 254));
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, a);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        mac_n(mac, 9);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        CHECK_EQ(F.rep.yiaddr, a);
        teardown();
}

TEST(decide_request_for_taken_address_naks)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        a = dora(1, T0);
        mac_n(mac, 2);
        cp_init(&c, DHCP_REQUEST, mac, 1);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, SERVER);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, a);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_NAK);
        CHECK_EQ(F.rep.yiaddr, 0);
        CHECK_EQ(F.v.dst_ip, INADDR_BROADCAST);
        CHECK(!F.rep.opt[DHCP_OPT_LEASE_TIME].present);
        teardown();
}

TEST(decide_reservation_by_mac)
{
        const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x99 };
        struct client_pkt c;

        CHECK(setup() == 0);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.rep.yiaddr, IP4(10, 0, 0, 50));
        CHECK(opt_is(&F.rep, DHCP_OPT_HOSTNAME, "node-99"));
        cp_init(&c, DHCP_REQUEST, mac, 1);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, SERVER);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, IP4(10, 0, 0, 50));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_ACK);
        CHECK_STREQ(F.v.change.lease.hostname, "node-99");
        teardown();
}

TEST(decide_reserved_address_refused_to_others)
{
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 3);
        cp_init(&c, DHCP_REQUEST, mac, 1);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, SERVER);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, IP4(10, 0, 0, 50));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_NAK);
        teardown();
}

TEST(decide_init_reboot_paths)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        a = dora(1, T0);
        mac_n(mac, 1);
        /* known client, its address: ACK */
        cp_init(&c, DHCP_REQUEST, mac, 2);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, a);
        CHECK(run(&c, T0 + 100) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_ACK);
        CHECK_EQ(F.v.change.lease.expires, T0 + 100 + 3600);
        /* an address from another network: NAK */
        cp_init(&c, DHCP_REQUEST, mac, 3);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, IP4(192, 168, 1, 5));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_NAK);
        /* a known client asking for an address it does not hold: NAK */
        cp_init(&c, DHCP_REQUEST, mac, 4);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, a == IP4(10, 0, 0, 100) ? IP4(10, 0, 0, 101) : IP4(10, 0, 0, 100));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_NAK);
        /* unknown client, free address, authoritative: granted (lost lease database) */
        mac_n(mac, 7);
        cp_init(&c, DHCP_REQUEST, mac, 5);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, IP4(10, 0, 0, 102));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_ACK);
        teardown();
}

TEST(decide_init_reboot_unknown_client_silent_when_not_authoritative)
{
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup_with("false", "full", "ipxe.efi") == 0);
        mac_n(mac, 7);
        cp_init(&c, DHCP_REQUEST, mac, 5);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, IP4(10, 0, 0, 102));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        teardown();
}

TEST(decide_renewing_unicasts_to_ciaddr)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        a = dora(1, T0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_REQUEST, mac, 9);
        cp_ciaddr(&c, a);
        CHECK(run(&c, T0 + 1800) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_ACK);
        CHECK_EQ(F.rep.ciaddr, a);
        CHECK_EQ(F.v.dst_ip, a);
        CHECK_EQ(F.v.dst_port, 68);
        CHECK(!F.v.dst_needs_arp);
        CHECK_EQ(F.v.change.lease.expires, T0 + 1800 + 3600);
        /* another client rebinding to that address is refused */
        mac_n(mac, 2);
        cp_init(&c, DHCP_REQUEST, mac, 9);
        cp_ciaddr(&c, a);
        CHECK(run(&c, T0 + 1800) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_NAK);
        teardown();
}

TEST(decide_release_then_reuse)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        a = dora(1, T0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_RELEASE, mac, 1);
        cp_ciaddr(&c, a);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, SERVER);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_SILENT);
        CHECK(F.v.has_change);
        CHECK_EQ(F.v.change.lease.state, STORE_LEASE_RELEASED);
        /* a release from a client that does not hold it changes nothing */
        mac_n(mac, 2);
        cp_init(&c, DHCP_RELEASE, mac, 1);
        cp_ciaddr(&c, a);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        CHECK(!F.v.has_change);
        teardown();
}

TEST(decide_decline_quarantines)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        a = dora(1, T0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DECLINE, mac, 1);
        cp_opt_u32(&c, DHCP_OPT_SERVER_ID, SERVER);
        cp_opt_u32(&c, DHCP_OPT_REQUESTED_IP, a);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_SILENT);
        CHECK_EQ(F.v.change.lease.state, STORE_LEASE_DECLINED);
        CHECK_EQ(F.v.change.lease.expires, T0 + 600);
        /* the declining client and every other get a different address meanwhile */
        for (int i = 0; i < 2; i++) {
                mac_n(mac, i ? 5 : 1);
                cp_init(&c, DHCP_DISCOVER, mac, 2);
                CHECK(run(&c, T0 + 1) == 0);
                CHECK_EQ(F.v.reply_type, DHCP_OFFER);
                CHECK(F.rep.yiaddr != a);
        }
        teardown();
}

TEST(decide_inform_has_no_lease)
{
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_INFORM, mac, 1);
        cp_ciaddr(&c, IP4(10, 0, 0, 7));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_ACK);
        CHECK_EQ(F.rep.yiaddr, 0);
        CHECK(!F.rep.opt[DHCP_OPT_LEASE_TIME].present);
        CHECK_EQ(F.v.dst_ip, IP4(10, 0, 0, 7));
        CHECK(!F.v.has_change);
        teardown();
}

TEST(decide_relay_uses_relay_subnet_and_echoes_82)
{
        const uint8_t rai[] = { 1, 4, 'p', 'o', 'r', 't' };
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_giaddr(&c, IP4(10, 1, 0, 1));
        cp_opt(&c, DHCP_OPT_RELAY_AGENT, rai, sizeof(rai));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        CHECK(F.rep.yiaddr >= IP4(10, 1, 0, 10) && F.rep.yiaddr <= IP4(10, 1, 0, 20));
        CHECK_EQ(F.v.dst_ip, IP4(10, 1, 0, 1));
        CHECK_EQ(F.v.dst_port, 67);
        CHECK_EQ(F.rep.giaddr, IP4(10, 1, 0, 1));
        CHECK_EQ(F.rep.opt[DHCP_OPT_RELAY_AGENT].len, sizeof(rai));
        CHECK(memcmp(F.rep.opt[DHCP_OPT_RELAY_AGENT].data, rai, sizeof(rai)) == 0);
        /* 82 is the last option before END */
        {
                size_t i = DHCP_HEADER_LEN, last = 0;

                while (i < F.v.len && F.v.reply[i] != DHCP_OPT_END) {
                        last = i;
                        i += 2u + F.v.reply[i + 1];
                }
                CHECK_EQ(F.v.reply[last], DHCP_OPT_RELAY_AGENT);
        }
        /* a relay we have no subnet for */
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_giaddr(&c, IP4(10, 9, 0, 1));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        teardown();
}

TEST(decide_82_not_echoed_without_relay)
{
        const uint8_t rai[] = { 1, 1, 'x' };
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_opt(&c, DHCP_OPT_RELAY_AGENT, rai, sizeof(rai));
        CHECK(run(&c, T0) == 0);
        CHECK(!F.rep.opt[DHCP_OPT_RELAY_AGENT].present);
        teardown();
}

TEST(decide_client_id_identifies_client)
{
        struct client_pkt c;
        uint8_t mac[6];
        uint32_t a;

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_opt_str(&c, DHCP_OPT_CLIENT_ID, "\x01" "client-a");
        CHECK(run(&c, T0) == 0);
        a = F.rep.yiaddr;
        CHECK(opt_is(&F.rep, DHCP_OPT_CLIENT_ID, "\x01" "client-a"));
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_opt_str(&c, DHCP_OPT_CLIENT_ID, "\x01" "client-b");
        CHECK(run(&c, T0) == 0);
        CHECK(F.rep.yiaddr != a);
        teardown();
}

TEST(decide_parameter_request_list_limits_options)
{
        const uint8_t prl[] = { DHCP_OPT_SUBNET_MASK };
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_opt(&c, DHCP_OPT_PARAM_LIST, prl, sizeof(prl));
        CHECK(run(&c, T0) == 0);
        CHECK(F.rep.opt[DHCP_OPT_SUBNET_MASK].present);
        CHECK(!F.rep.opt[DHCP_OPT_ROUTER].present);
        CHECK(!F.rep.opt[DHCP_OPT_DNS].present);
        CHECK(!F.rep.opt[DHCP_OPT_DOMAIN].present);
        CHECK(F.rep.opt[DHCP_OPT_LEASE_TIME].present);
        CHECK(F.rep.opt[DHCP_OPT_SERVER_ID].present);
        teardown();
}

static void pxe_discover(struct client_pkt *c, uint16_t arch, const char *vci, bool ipxe)
{
        uint8_t mac[6], a[2] = { (uint8_t)(arch >> 8), (uint8_t)arch }, uuid[17] = { 0 };

        mac_n(mac, 1);
        memset(uuid + 1, 0xab, 16);
        cp_init(c, DHCP_DISCOVER, mac, 1);
        cp_opt_str(c, DHCP_OPT_VENDOR_CLASS, vci);
        cp_opt(c, DHCP_OPT_CLIENT_ARCH, a, 2);
        cp_opt(c, DHCP_OPT_CLIENT_UUID, uuid, 17);
        if (ipxe)
                cp_opt_str(c, DHCP_OPT_USER_CLASS, "iPXE");
}

TEST(decide_pxe_bios_gets_undionly)
{
        struct client_pkt c;

        CHECK(setup() == 0);
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", false);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "undionly.kpxe");
        CHECK_EQ(F.rep.siaddr, SERVER);
        CHECK(opt_is(&F.rep, DHCP_OPT_VENDOR_CLASS, "PXEClient"));
        CHECK_EQ(F.rep.opt[DHCP_OPT_CLIENT_UUID].len, 17);
        CHECK(F.rep.opt[DHCP_OPT_VENDOR].present);
        CHECK(memcmp(F.rep.opt[DHCP_OPT_VENDOR].data, "\x06\x01\x08\xff", 4) == 0);
        teardown();
}

TEST(decide_ipxe_gets_script_url_not_a_binary)
{
        struct client_pkt c;

        CHECK(setup() == 0);
        /* the ROM iPXE (BIOS) and chainloaded ipxe.efi (arch 7) both get the script */
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", true);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "http://10.0.0.1:8080/boot.ipxe");
        CHECK(F.rep.opt[DHCP_OPT_IPXE].present);
        pxe_discover(&c, 7, "PXEClient:Arch:00007:UNDI:003010", true);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "http://10.0.0.1:8080/boot.ipxe");
        CHECK(!F.rep.opt[DHCP_OPT_VENDOR].present);
        teardown();
}

TEST(decide_ipxe_rfc3004_user_class_form)
{
        struct client_pkt c;

        CHECK(setup() == 0);
        pxe_discover(&c, 7, "PXEClient:Arch:00007:UNDI:003010", false);
        cp_opt(&c, DHCP_OPT_USER_CLASS, "\x04iPXE", 5);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "http://10.0.0.1:8080/boot.ipxe");
        teardown();
}

TEST(decide_uefi_arch_map)
{
        struct client_pkt c;

        CHECK(setup() == 0);
        pxe_discover(&c, 7, "PXEClient:Arch:00007:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "ipxe.efi");
        pxe_discover(&c, 9, "PXEClient:Arch:00009:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "ipxe.efi");
        pxe_discover(&c, 11, "PXEClient:Arch:00011:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "ipxe-arm64.efi");
        /* an architecture with no file: an address, but no boot answer */
        pxe_discover(&c, 500, "PXEClient:Arch:00500:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        CHECK_EQ(F.rep.file[0], 0);
        teardown();
        CHECK(setup_with("true", "full", "snponly.efi") == 0);
        pxe_discover(&c, 7, "PXEClient:Arch:00007:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "snponly.efi");
        teardown();
}

TEST(decide_uefi_http_boot)
{
        struct client_pkt c;

        CHECK(setup() == 0);
        pxe_discover(&c, 16, "HTTPClient:Arch:00016:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_STREQ((const char *)F.rep.file, "http://10.0.0.1:8080/ipxe.efi");
        CHECK(opt_is(&F.rep, DHCP_OPT_VENDOR_CLASS, "HTTPClient"));
        teardown();
}

TEST(decide_bootfile_option_when_asked)
{
        const uint8_t prl[] = { DHCP_OPT_TFTP_SERVER, DHCP_OPT_BOOTFILE };
        struct client_pkt c;

        CHECK(setup() == 0);
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", false);
        cp_opt(&c, DHCP_OPT_PARAM_LIST, prl, sizeof(prl));
        CHECK(run(&c, T0) == 0);
        CHECK(opt_is(&F.rep, DHCP_OPT_TFTP_SERVER, "10.0.0.1"));
        CHECK(opt_is(&F.rep, DHCP_OPT_BOOTFILE, "undionly.kpxe"));
        teardown();
}

TEST(decide_proxy_mode_offers_boot_only)
{
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup_with("true", "proxy", "ipxe.efi") == 0);
        CHECK(F.srv.pool == NULL);
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", false);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        CHECK_EQ(F.rep.yiaddr, 0);
        CHECK_EQ(F.rep.siaddr, SERVER);
        CHECK_STREQ((const char *)F.rep.file, "undionly.kpxe");
        CHECK(!F.rep.opt[DHCP_OPT_LEASE_TIME].present);
        CHECK(!F.rep.opt[DHCP_OPT_ROUTER].present);
        CHECK(!F.rep.opt[DHCP_OPT_SUBNET_MASK].present);
        CHECK_EQ(opt_u32(&F.rep, DHCP_OPT_SERVER_ID), SERVER);
        CHECK_EQ(F.v.dst_ip, INADDR_BROADCAST);
        CHECK(F.rep.opt[DHCP_OPT_VENDOR].present);
        /* UEFI firmware: no discovery control, so it asks on port 4011 */
        pxe_discover(&c, 7, "PXEClient:Arch:00007:UNDI:003000", false);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_OFFER);
        CHECK(!F.rep.opt[DHCP_OPT_VENDOR].present);
        /* plain DHCP clients and REQUESTs on port 67 are not ours to answer */
        mac_n(mac, 3);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", false);
        c.b[DHCP_HEADER_LEN + 2] = DHCP_REQUEST;
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        teardown();
}

TEST(decide_proxy_port_4011_acks_unicast)
{
        const uint8_t vendor[] = { 71, 4, 0x80, 0x00, 0x00, 0x00, 255 };
        struct client_pkt c;

        CHECK(setup_with("true", "proxy", "ipxe.efi") == 0);
        F.link.local_port = 4011;
        F.link.src_ip = IP4(10, 0, 0, 77);
        F.link.src_port = 4011;
        pxe_discover(&c, 7, "PXEClient:Arch:00007:UNDI:003000", false);
        c.b[DHCP_HEADER_LEN + 2] = DHCP_REQUEST;
        cp_ciaddr(&c, IP4(10, 0, 0, 77));
        cp_opt(&c, DHCP_OPT_VENDOR, vendor, sizeof(vendor));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.reply_type, DHCP_ACK);
        CHECK_EQ(F.rep.yiaddr, 0);
        CHECK_EQ(F.rep.ciaddr, IP4(10, 0, 0, 77));
        CHECK_STREQ((const char *)F.rep.file, "ipxe.efi");
        CHECK_EQ(F.v.dst_ip, IP4(10, 0, 0, 77));
        CHECK_EQ(F.v.dst_port, 4011);
        CHECK(F.rep.opt[DHCP_OPT_VENDOR].present);
        CHECK_EQ(F.rep.opt[DHCP_OPT_VENDOR].data[0], 71);
        CHECK(memcmp(F.rep.opt[DHCP_OPT_VENDOR].data + 2, "\x80\x00\x00\x00", 4) == 0);
        teardown();
}

/*
 * Beside the site's DHCP server a proxy sees every broadcast of the link: it
 * must stay silent to anything but a PXE or HTTP-boot client, whatever the
 * message, the port, or how close the vendor class comes to PXEClient.
 */
TEST(decide_proxy_never_answers_plain_clients)
{
        static const struct {
                const char *vci;        /* NULL: no option 60 */
                bool ipxe;
        } clients[] = {
                { NULL, false }, { NULL, true }, { "MSFT 5.0", false }, { "udhcp 1.35.0", false },
                { "PXEClien", false }, { "pxeclient:Arch:00000", false }, { "XPXEClient:Arch:00000", false },
                { "HTTPClien", false }, { "", false }, { "PXE", true },
        };
        static const int types[] = { DHCP_DISCOVER, DHCP_REQUEST, DHCP_DECLINE, DHCP_RELEASE, DHCP_INFORM };
        static const uint16_t ports[] = { 67, 4011 };
        static const uint8_t arch_bios[2] = { 0, 0 };
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup_with("true", "proxy", "ipxe.efi") == 0);
        mac_n(mac, 7);
        for (size_t i = 0; i < ARRAY_SIZE(clients); i++)
                for (size_t t = 0; t < ARRAY_SIZE(types); t++)
                        for (size_t p = 0; p < ARRAY_SIZE(ports); p++) {
                                cp_init(&c, types[t], mac, (uint32_t)(i * 100 + t * 10 + p));
                                if (clients[i].vci)
                                        cp_opt_str(&c, DHCP_OPT_VENDOR_CLASS, clients[i].vci);
                                cp_opt(&c, DHCP_OPT_CLIENT_ARCH, arch_bios, sizeof(arch_bios));
                                if (clients[i].ipxe)
                                        cp_opt_str(&c, DHCP_OPT_USER_CLASS, "iPXE");
                                cp_ciaddr(&c, types[t] == DHCP_DISCOVER ? 0 : IP4(10, 0, 0, 77));
                                F.link.local_port = ports[p];
                                CHECK(run(&c, T0) == 0);
                                CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
                                CHECK_EQ(F.v.len, 0);
                                CHECK(!F.v.has_change);
                        }
        /* the same client with the PXE class is answered, so the loop above tested the class */
        F.link.local_port = 67;
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        cp_opt_str(&c, DHCP_OPT_VENDOR_CLASS, "PXEClient:Arch:00000:UNDI:002001");
        cp_opt(&c, DHCP_OPT_CLIENT_ARCH, arch_bios, sizeof(arch_bios));
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_REPLY);
        CHECK_EQ(F.rep.yiaddr, 0);
        teardown();
}

TEST(decide_drops_hostile_headers)
{
        const uint8_t zero[6] = { 0 };
        struct client_pkt c;
        uint8_t mac[6];

        CHECK(setup() == 0);
        mac_n(mac, 1);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        c.b[0] = DHCP_OP_REPLY;
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        cp_init(&c, DHCP_DISCOVER, zero, 1);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        cp_init(&c, DHCP_DISCOVER, mac, 1);
        c.b[2] = 0;
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        /* server-to-client message types sent to us */
        cp_init(&c, DHCP_OFFER, mac, 1);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_DROP);
        teardown();
}

TEST(decide_max_message_size_respected)
{
        const uint8_t big_prl[] = { 1, 3, 6, 15, 12, 28, 66, 67 };
        struct client_pkt c;

        CHECK(setup() == 0);
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", false);
        cp_opt(&c, DHCP_OPT_PARAM_LIST, big_prl, sizeof(big_prl));
        uint8_t ms[2] = { 0x05, 0xdc };        /* 1500 */
        cp_opt(&c, DHCP_OPT_MAX_SIZE, ms, 2);
        CHECK(run(&c, T0) == 0);
        CHECK(F.v.len <= 1500 - 28);
        ms[0] = 0, ms[1] = 100;                 /* below the legal minimum: 576 is used */
        pxe_discover(&c, 0, "PXEClient:Arch:00000:UNDI:002001", false);
        cp_opt(&c, DHCP_OPT_MAX_SIZE, ms, 2);
        CHECK(run(&c, T0) == 0);
        CHECK_EQ(F.v.action, DHCP_ACTION_REPLY);
        CHECK(F.v.len <= 576 - 28);
        teardown();
}

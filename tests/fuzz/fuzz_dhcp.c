/* SPDX-License-Identifier: Apache-2.0 */
/* Parser and decision for any datagram, in full and proxy mode, on both ports. */
#include <stdint.h>
#include <stdlib.h>

#include "metald/config.h"
#include "metald/dhcp_server.h"
#include "metald/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char full_yaml[] =
        "server: { address: 10.0.0.1 }\n"
        "dhcp:\n"
        "  subnets:\n"
        "    - network: 10.0.0.0/24\n"
        "      ranges: [10.0.0.100-10.0.0.104]\n"
        "      router: 10.0.0.1\n"
        "      dns: [10.0.0.1]\n"
        "      domain: fuzz.example\n"
        "      reservations: [{ mac: \"00:00:00:00:00:01\", address: 10.0.0.50, hostname: fixed }]\n"
        "    - network: 10.1.0.0/24\n"
        "      ranges: [10.1.0.10-10.1.0.12]\n";

static struct config *full_cfg, *proxy_cfg;
static struct dhcp_server full_srv, proxy_srv;

static void init(void)
{
        char err[256];

        log_set_level(LOG_EMERG);
        if (config_load_string(full_yaml, "fuzz", &full_cfg, err, sizeof(err)) < 0 ||
            config_load_string("dhcp: { mode: proxy }\n", "fuzz", &proxy_cfg, err, sizeof(err)) < 0)
                abort();
        full_srv.cfg = full_cfg;
        proxy_srv.cfg = proxy_cfg;
        if (lease_pool_new(&full_cfg->dhcp, &full_srv.pool) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct dhcp_packet p;
        static struct dhcp_verdict v;
        static int64_t now = 1700000000;
        struct dhcp_link link = { .server_ip = 0x0a000001, .local_port = 67, .src_ip = 0x0a000063, .src_port = 68 };

        if (!full_cfg)
                init();
        if (dhcp_parse(data, size, &p) < 0)
                return 0;
        /* the pool state carries over between inputs, as it does in the daemon */
        now += 7;
        dhcp_decide(&full_srv, &p, &link, now, &v);
        if (v.action == DHCP_ACTION_REPLY && (v.len < DHCP_HEADER_LEN || v.len > sizeof(v.reply)))
                abort();
        link.local_port = 4011;
        dhcp_decide(&full_srv, &p, &link, now, &v);
        dhcp_decide(&proxy_srv, &p, &link, now, &v);
        link.local_port = 67;
        dhcp_decide(&proxy_srv, &p, &link, now, &v);
        return 0;
}

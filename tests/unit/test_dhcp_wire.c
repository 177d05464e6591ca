/* SPDX-License-Identifier: Apache-2.0 */
#include "dhcp_client.h"
#include "metald/dhcp.h"
#include "test.h"

static const uint8_t mac1[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

TEST(dhcp_parse_minimal_discover)
{
        static struct dhcp_packet p;
        struct client_pkt c;

        cp_init(&c, DHCP_DISCOVER, mac1, 0xdeadbeef);
        cp_opt_str(&c, DHCP_OPT_VENDOR_CLASS, "PXEClient:Arch:00000:UNDI:002001");
        cp_end(&c);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(dhcp_msg_type(&p), DHCP_DISCOVER);
        CHECK_EQ(p.xid, 0xdeadbeef);
        CHECK(memcmp(p.chaddr, mac1, 6) == 0);
        CHECK(p.opt[DHCP_OPT_VENDOR_CLASS].present);
        CHECK_EQ(p.opt[DHCP_OPT_VENDOR_CLASS].len, 32);
        CHECK(!p.opt[DHCP_OPT_CLIENT_ID].present);
}

TEST(dhcp_parse_concatenates_repeated_options)
{
        static struct dhcp_packet p;
        struct client_pkt c;

        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        cp_opt_str(&c, DHCP_OPT_VENDOR_CLASS, "PXE");
        cp_opt_str(&c, DHCP_OPT_HOSTNAME, "node");
        cp_opt_str(&c, DHCP_OPT_VENDOR_CLASS, "Client");
        cp_end(&c);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(p.opt[DHCP_OPT_VENDOR_CLASS].len, 9);
        CHECK(memcmp(p.opt[DHCP_OPT_VENDOR_CLASS].data, "PXEClient", 9) == 0);
        CHECK(memcmp(p.opt[DHCP_OPT_HOSTNAME].data, "node", 4) == 0);
}

TEST(dhcp_parse_zero_length_option_is_present)
{
        static struct dhcp_packet p;
        struct client_pkt c;

        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        cp_opt(&c, DHCP_OPT_USER_CLASS, "", 0);
        cp_end(&c);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK(p.opt[DHCP_OPT_USER_CLASS].present);
        CHECK_EQ(p.opt[DHCP_OPT_USER_CLASS].len, 0);
}

TEST(dhcp_parse_overload_reads_file_and_sname)
{
        static struct dhcp_packet p;
        struct client_pkt c;
        uint8_t ov = 3;

        cp_init(&c, DHCP_REQUEST, mac1, 1);
        cp_opt(&c, DHCP_OPT_OVERLOAD, &ov, 1);
        cp_end(&c);
        /* file area (offset 108): hostname; sname area (offset 44): vendor class */
        memcpy(c.b + 108, "\x0c\x04node\xff", 7);
        memcpy(c.b + 44, "\x3c\x03PXE\xff", 6);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(p.overload, 3);
        CHECK(p.opt[DHCP_OPT_HOSTNAME].present);
        CHECK(memcmp(p.opt[DHCP_OPT_HOSTNAME].data, "node", 4) == 0);
        CHECK(p.opt[DHCP_OPT_VENDOR_CLASS].present);
}

TEST(dhcp_parse_overload_inside_file_does_not_loop)
{
        static struct dhcp_packet p;
        struct client_pkt c;
        uint8_t ov = 1;

        cp_init(&c, DHCP_REQUEST, mac1, 1);
        cp_opt(&c, DHCP_OPT_OVERLOAD, &ov, 1);
        cp_end(&c);
        /* the file area claims to overload again: ignored, not followed */
        memcpy(c.b + 108, "\x34\x01\x03\x0c\x01x\xff", 7);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(p.overload, 1);
        CHECK(p.opt[DHCP_OPT_HOSTNAME].present);
}

TEST(dhcp_parse_hostile_inputs_rejected)
{
        static struct dhcp_packet p;
        struct client_pkt c;
        uint8_t bad_ov = 7;

        /* truncated header */
        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        CHECK(dhcp_parse(c.b, 100, &p) < 0);
        CHECK(dhcp_parse(c.b, 0, &p) < 0);
        CHECK(dhcp_parse(c.b, DHCP_FIXED_LEN + 2, &p) < 0);
        /* wrong cookie */
        cp_be32(c.b + 236, 0x12345678);
        cp_end(&c);
        CHECK(dhcp_parse(c.b, c.len, &p) < 0);
        /* option length running past the end */
        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        c.b[c.len++] = DHCP_OPT_HOSTNAME;
        c.b[c.len++] = 200;
        c.b[c.len++] = 'x';
        CHECK(dhcp_parse(c.b, c.len, &p) < 0);
        /* option code with no length byte */
        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        c.b[c.len++] = DHCP_OPT_HOSTNAME;
        CHECK(dhcp_parse(c.b, c.len, &p) < 0);
        /* hlen beyond chaddr */
        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        c.b[2] = 17;
        cp_end(&c);
        CHECK(dhcp_parse(c.b, c.len, &p) < 0);
        /* invalid overload value */
        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        cp_opt(&c, DHCP_OPT_OVERLOAD, &bad_ov, 1);
        cp_end(&c);
        CHECK(dhcp_parse(c.b, c.len, &p) < 0);
        /* oversized datagram */
        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        CHECK(dhcp_parse(c.b, DHCP_MAX_PACKET + 1, &p) < 0);
}

TEST(dhcp_parse_too_many_options)
{
        static struct dhcp_packet p;
        struct client_pkt c;

        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        for (int i = 0; i < DHCP_MAX_OPTIONS + 1; i++)
                cp_opt(&c, 200, "", 0);
        cp_end(&c);
        CHECK(dhcp_parse(c.b, c.len, &p) < 0);
}

TEST(dhcp_parse_missing_end_is_tolerated)
{
        static struct dhcp_packet p;
        struct client_pkt c;

        cp_init(&c, DHCP_DISCOVER, mac1, 1);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(dhcp_msg_type(&p), DHCP_DISCOVER);
}

TEST(dhcp_msg_type_validates)
{
        static struct dhcp_packet p;
        struct client_pkt c;

        cp_init(&c, 0, mac1, 1);
        cp_end(&c);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(dhcp_msg_type(&p), 0);
        cp_init(&c, 99, mac1, 1);
        cp_end(&c);
        CHECK_EQ(dhcp_parse(c.b, c.len, &p), 0);
        CHECK_EQ(dhcp_msg_type(&p), 0);
}

static void reply_header(struct dhcp_reply_header *h)
{
        *h = (struct dhcp_reply_header){ .op = DHCP_OP_REPLY, .htype = 1, .hlen = 6, .xid = 7 };
        memcpy(h->chaddr, mac1, 6);
}

TEST(dhcp_build_pads_and_roundtrips)
{
        static struct dhcp_packet p;
        struct dhcp_reply_header h;
        struct dhcp_optlist l = { 0 };
        uint8_t out[DHCP_MAX_PACKET];
        size_t len;

        reply_header(&h);
        h.yiaddr = IP4(10, 0, 0, 5);
        h.file = "undionly.kpxe";
        dhcp_opt_add_u8(&l, DHCP_OPT_MSG_TYPE, DHCP_OFFER);
        dhcp_opt_add_u32(&l, DHCP_OPT_SERVER_ID, IP4(10, 0, 0, 1));
        CHECK_EQ(dhcp_build(&h, &l, 548, out, sizeof(out), &len), 0);
        CHECK_EQ(len, DHCP_MIN_REPLY);
        CHECK_EQ(dhcp_parse(out, len, &p), 0);
        CHECK_EQ(p.op, DHCP_OP_REPLY);
        CHECK_EQ(p.yiaddr, IP4(10, 0, 0, 5));
        CHECK_STREQ((const char *)p.file, "undionly.kpxe");
        CHECK_EQ(dhcp_msg_type(&p), DHCP_OFFER);
}

TEST(dhcp_build_long_option_is_split)
{
        static struct dhcp_packet p;
        struct dhcp_reply_header h;
        struct dhcp_optlist l = { 0 };
        uint8_t out[DHCP_MAX_PACKET], big[300];
        size_t len;

        memset(big, 'a', sizeof(big));
        reply_header(&h);
        dhcp_opt_add_u8(&l, DHCP_OPT_MSG_TYPE, DHCP_ACK);
        dhcp_opt_add(&l, DHCP_OPT_VENDOR, big, sizeof(big));
        CHECK_EQ(dhcp_build(&h, &l, 1400, out, sizeof(out), &len), 0);
        CHECK_EQ(dhcp_parse(out, len, &p), 0);
        CHECK_EQ(p.opt[DHCP_OPT_VENDOR].len, 300);
}

TEST(dhcp_build_overloads_into_file_when_needed)
{
        static struct dhcp_packet p;
        struct dhcp_reply_header h;
        struct dhcp_optlist l = { 0 };
        uint8_t out[DHCP_MAX_PACKET], v[200];
        size_t len;

        memset(v, 'v', sizeof(v));
        reply_header(&h);
        dhcp_opt_add_u8(&l, DHCP_OPT_MSG_TYPE, DHCP_ACK);
        dhcp_opt_add(&l, 224, v, 200);
        dhcp_opt_add(&l, 225, v, 110);  /* does not fit in 548 - 240 with the first */
        CHECK_EQ(dhcp_build(&h, &l, 548, out, sizeof(out), &len), 0);
        CHECK(len <= 548);
        CHECK_EQ(dhcp_parse(out, len, &p), 0);
        CHECK(p.overload & 1);
        CHECK_EQ(p.opt[224].len, 200);
        CHECK_EQ(p.opt[225].len, 110);
}

TEST(dhcp_build_refuses_what_cannot_fit)
{
        struct dhcp_reply_header h;
        struct dhcp_optlist l = { 0 };
        uint8_t out[DHCP_MAX_PACKET], v[250];
        size_t len;

        memset(v, 'v', sizeof(v));
        reply_header(&h);
        h.file = "in-use";
        h.sname = "in-use";
        for (int i = 0; i < 3; i++)
                dhcp_opt_add(&l, (uint8_t)(224 + i), v, sizeof(v));
        CHECK_EQ(dhcp_build(&h, &l, 548, out, sizeof(out), &len), -EMSGSIZE);
}

/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "metald/config.h"
#include "metald/tftp.h"
#include "metald/util.h"
#include "test.h"

/* A datagram written as a string literal with its embedded NULs; the literal's own NUL is not sent. */
#define PKT(s) s, sizeof(s) - 1

struct parse_case {
        const char *name;
        const char *pkt;
        size_t len;
        int r;                                  /* tftp_parse_request */
        enum tftp_request_verdict verdict;
        uint16_t error_code;                    /* when refused */
};

static const struct parse_case parse_cases[] = {
        { "plain rrq", PKT("\0\1pxe.efi\0octet\0"), 0, TFTP_REQ_ACCEPT, 0 },
        { "mode case", PKT("\0\1pxe.efi\0OcTeT\0"), 0, TFTP_REQ_ACCEPT, 0 },
        { "nul padding", PKT("\0\1f\0octet\0\0\0\0"), 0, TFTP_REQ_ACCEPT, 0 },
        { "unknown option", PKT("\0\1f\0octet\0multicast\0\0"), 0, TFTP_REQ_ACCEPT, 0 },
        { "empty", PKT(""), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "one byte", PKT("\0"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "opcode only", PKT("\0\1"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "no nul at all", PKT("\0\1pxe.efi"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "missing mode", PKT("\0\1pxe.efi\0"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "mode without nul", PKT("\0\1pxe.efi\0octet"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "option without value", PKT("\0\1f\0octet\0blksize\0"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "value without nul", PKT("\0\1f\0octet\0blksize\0" "1468"), -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "too many options",
          PKT("\0\1f\0octet\0a\0" "1\0b\0" "1\0c\0" "1\0d\0" "1\0e\0" "1\0f\0" "1\0g\0" "1\0h\0" "1\0i\0" "1\0"),
          -EBADMSG, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "unknown mode", PKT("\0\1f\0mail\0"), 0, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "netascii", PKT("\0\1f\0NetAscii\0"), 0, TFTP_REQ_REFUSE, TFTP_EUNDEF },
        { "wrq", PKT("\0\2f\0octet\0"), 0, TFTP_REQ_REFUSE, TFTP_EACCESS },
        { "duplicate option", PKT("\0\1f\0octet\0blksize\0" "1024\0BLKSIZE\0" "512\0"), 0, TFTP_REQ_REFUSE,
          TFTP_EOPTNEG },
        { "data to server port", PKT("\0\3\0\1abc"), -EPROTO, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "ack to server port", PKT("\0\4\0\1"), -EPROTO, TFTP_REQ_IGNORE, 0 },
        { "oack to server port", PKT("\0\6"), -EPROTO, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "unknown opcode", PKT("\0\x63x\0octet\0"), -EPROTO, TFTP_REQ_REFUSE, TFTP_EBADOP },
        { "error is never answered", PKT("\0\5\0\1oops\0"), -EPROTO, TFTP_REQ_IGNORE, 0 },
};

TEST(tftp_parse_request_table)
{
        for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
                const struct parse_case *c = &parse_cases[i];
                struct tftp_request req = {};
                struct tftp_refusal why = {};
                int r = tftp_parse_request(c->pkt, c->len, &req);

                if (r != c->r)
                        fprintf(stderr, "  case \"%s\"\n", c->name);
                CHECK_EQ(r, c->r);
                if (tftp_request_check(r, &req, &why) != c->verdict)
                        fprintf(stderr, "  case \"%s\"\n", c->name);
                CHECK_EQ(tftp_request_check(r, &req, &why), c->verdict);
                if (c->verdict == TFTP_REQ_REFUSE)
                        CHECK_EQ(why.code, c->error_code);
        }
}

TEST(tftp_parse_request_fields)
{
        static const char pkt[] = "\0\1boot\\x.efi\0octet\0BlkSize\0" "1468\0tsize\0" "0\0WINDOWSIZE\0" "16\0";
        struct tftp_request req;

        CHECK_EQ(tftp_parse_request(pkt, sizeof(pkt) - 1, &req), 0);
        CHECK_EQ(req.opcode, TFTP_RRQ);
        CHECK_STREQ(req.filename, "boot\\x.efi");
        CHECK_EQ(req.filename_len, 10);
        CHECK_EQ(req.mode, TFTP_MODE_OCTET);
        CHECK(req.opt[TFTP_OPT_BLKSIZE].present && req.opt[TFTP_OPT_BLKSIZE].numeric);
        CHECK_EQ(req.opt[TFTP_OPT_BLKSIZE].value, 1468);
        CHECK(req.opt[TFTP_OPT_TSIZE].present && req.opt[TFTP_OPT_TSIZE].value == 0);
        CHECK_EQ(req.opt[TFTP_OPT_WINDOWSIZE].value, 16);
        CHECK(!req.opt[TFTP_OPT_TIMEOUT].present);
        CHECK(!req.duplicate_option);
}

TEST(tftp_parse_request_filename_length)
{
        uint8_t pkt[2 + TFTP_MAX_FILENAME + 1 + 1 + 6];
        struct tftp_request req;
        size_t n;

        for (size_t name_len = TFTP_MAX_FILENAME; name_len <= TFTP_MAX_FILENAME + 1; name_len++) {
                n = 0;
                pkt[n++] = 0;
                pkt[n++] = TFTP_RRQ;
                memset(pkt + n, 'a', name_len);
                n += name_len;
                pkt[n++] = 0;
                memcpy(pkt + n, "octet", 6);
                n += 6;
                CHECK_EQ(tftp_parse_request(pkt, n, &req), name_len > TFTP_MAX_FILENAME ? -ENAMETOOLONG : 0);
        }
        CHECK_EQ(req.filename_len, TFTP_MAX_FILENAME);
}

struct nego_case {
        const char *name;
        const char *pkt;
        size_t len;
        uint32_t mtu;
        uint32_t blksize, windowsize, timeout_s;
        bool acc_blksize, acc_timeout, acc_tsize, acc_window;
};

#define RRQ(opts) PKT("\0\1f\0octet\0" opts)

static const struct nego_case nego_cases[] = {
        { "no options", RRQ(""), 1500, 512, 1, 0, false, false, false, false },
        { "only unknown", RRQ("rollover\0" "0\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize 1468", RRQ("blksize\0" "1468\0"), 1500, 1468, 1, 0, true, false, false, false },
        { "blksize over mtu", RRQ("blksize\0" "9000\0"), 1500, 1468, 1, 0, true, false, false, false },
        { "blksize max on lo", RRQ("blksize\0" "65464\0"), 65536, 65464, 1, 0, true, false, false, false },
        { "blksize 65465", RRQ("blksize\0" "65465\0"), 65536, 65464, 1, 0, true, false, false, false },
        { "blksize mtu unknown", RRQ("blksize\0" "65464\0"), 0, 1468, 1, 0, true, false, false, false },
        { "blksize 8", RRQ("blksize\0" "8\0"), 1500, 8, 1, 0, true, false, false, false },
        { "blksize 7", RRQ("blksize\0" "7\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize 0", RRQ("blksize\0" "0\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize abc", RRQ("blksize\0" "abc\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize empty", RRQ("blksize\0\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize negative", RRQ("blksize\0" "-1468\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize 2^64", RRQ("blksize\0" "18446744073709551616\0"), 1500, 512, 1, 0, false, false, false, false },
        { "blksize huge", RRQ("blksize\0" "99999999999999999999999999\0"), 1500, 512, 1, 0, false, false, false,
          false },
        { "blksize 2^64-1", RRQ("blksize\0" "18446744073709551615\0"), 1500, 1468, 1, 0, true, false, false, false },
        { "windowsize 16", RRQ("windowsize\0" "16\0"), 1500, 512, 16, 0, false, false, false, true },
        { "windowsize 0", RRQ("windowsize\0" "0\0"), 1500, 512, 1, 0, false, false, false, false },
        { "windowsize 65536", RRQ("windowsize\0" "65536\0"), 1500, 512, 64, 0, false, false, false, true },
        { "timeout 1", RRQ("timeout\0" "1\0"), 1500, 512, 1, 1, false, true, false, false },
        { "timeout 255", RRQ("timeout\0" "255\0"), 1500, 512, 1, 255, false, true, false, false },
        { "timeout 0", RRQ("timeout\0" "0\0"), 1500, 512, 1, 0, false, false, false, false },
        { "timeout 256", RRQ("timeout\0" "256\0"), 1500, 512, 1, 0, false, false, false, false },
        { "tsize 0", RRQ("tsize\0" "0\0"), 1500, 512, 1, 0, false, false, true, false },
        { "tsize non-zero", RRQ("tsize\0" "4096\0"), 1500, 512, 1, 0, false, false, false, false },
        { "ovmf", RRQ("blksize\0" "1468\0windowsize\0" "4\0"), 1500, 1468, 4, 0, true, false, false, true },
        { "curl", RRQ("tsize\0" "0\0blksize\0" "512\0timeout\0" "6\0"), 1500, 512, 1, 6, true, true, true, false },
};

TEST(tftp_negotiate_table)
{
        for (size_t i = 0; i < ARRAY_SIZE(nego_cases); i++) {
                const struct nego_case *c = &nego_cases[i];
                struct tftp_limits lim = { .max_blksize = TFTP_MAX_BLKSIZE, .mtu = c->mtu, .max_windowsize = 64,
                                           .default_rto_usec = 700 * USEC_PER_MSEC };
                struct tftp_request req;
                struct tftp_negotiation n;
                bool any = c->acc_blksize || c->acc_timeout || c->acc_tsize || c->acc_window;

                CHECK_EQ(tftp_parse_request(c->pkt, c->len, &req), 0);
                tftp_negotiate(&req, &lim, 123456, &n);
                if (n.blksize != c->blksize || n.windowsize != c->windowsize || n.oack != any)
                        fprintf(stderr, "  case \"%s\"\n", c->name);
                CHECK_EQ(n.blksize, c->blksize);
                CHECK_EQ(n.windowsize, c->windowsize);
                CHECK_EQ(n.accepted[TFTP_OPT_BLKSIZE], c->acc_blksize);
                CHECK_EQ(n.accepted[TFTP_OPT_TIMEOUT], c->acc_timeout);
                CHECK_EQ(n.accepted[TFTP_OPT_TSIZE], c->acc_tsize);
                CHECK_EQ(n.accepted[TFTP_OPT_WINDOWSIZE], c->acc_window);
                CHECK_EQ(n.oack, any);
                CHECK_EQ(n.rto_usec, c->acc_timeout ? c->timeout_s * USEC_PER_SEC : 700 * USEC_PER_MSEC);
                if (c->acc_timeout)
                        CHECK_EQ(n.timeout_s, c->timeout_s);
                if (c->acc_tsize)
                        CHECK_EQ(n.tsize, 123456);
        }
}

TEST(tftp_negotiate_respects_config_caps)
{
        static const char pkt[] = "\0\1f\0octet\0blksize\0" "4096\0windowsize\0" "16\0";
        struct tftp_limits lim = { .max_blksize = 1024, .mtu = 9000, .max_windowsize = 4, .default_rto_usec = 1 };
        struct tftp_request req;
        struct tftp_negotiation n;

        CHECK_EQ(tftp_parse_request(pkt, sizeof(pkt) - 1, &req), 0);
        tftp_negotiate(&req, &lim, 0, &n);
        CHECK_EQ(n.blksize, 1024);
        CHECK_EQ(n.windowsize, 4);
}

TEST(tftp_build_oack_lists_only_accepted)
{
        static const char want[] = "\0\6blksize\0" "1468\0tsize\0" "1048576\0";
        static const char pkt[] = "\0\1f\0octet\0blksize\0" "1468\0tsize\0" "0\0timeout\0" "0\0x\0y\0";
        struct tftp_limits lim = { .max_blksize = TFTP_MAX_BLKSIZE, .mtu = 1500, .max_windowsize = 64 };
        struct tftp_request req;
        struct tftp_negotiation n;
        uint8_t buf[TFTP_MAX_OACK];
        size_t len;

        CHECK_EQ(tftp_parse_request(pkt, sizeof(pkt) - 1, &req), 0);
        tftp_negotiate(&req, &lim, 1048576, &n);
        CHECK_EQ(tftp_build_oack(buf, sizeof(buf), &n, &len), 0);
        CHECK_EQ(len, sizeof(want) - 1);
        CHECK(memcmp(buf, want, len) == 0);
        CHECK_EQ(tftp_build_oack(buf, 10, &n, &len), -ENOBUFS);
}

TEST(tftp_build_error_and_data_header)
{
        uint8_t buf[TFTP_MAX_ERROR_PACKET], hdr[TFTP_HEADER_BYTES];
        size_t len;

        CHECK_EQ(tftp_build_error(buf, sizeof(buf), TFTP_ENOTFOUND, "file not found", &len), 0);
        CHECK_EQ(len, 4 + 15);
        CHECK(memcmp(buf, "\0\5\0\1file not found\0", len) == 0);
        CHECK_EQ(tftp_build_error(buf, 8, TFTP_ENOTFOUND, "file not found", &len), -ENOBUFS);
        tftp_data_header(hdr, 65536 + 258);
        CHECK(memcmp(hdr, "\0\3\1\2", 4) == 0);
}

TEST(tftp_parse_client_packets)
{
        struct tftp_client_packet p;

        CHECK_EQ(tftp_parse_client_packet(PKT("\0\4\xff\xfe"), &p), 0);
        CHECK_EQ(p.opcode, TFTP_ACK);
        CHECK_EQ(p.block, 65534);
        CHECK_EQ(tftp_parse_client_packet(PKT("\0\4\0"), &p), -EBADMSG);
        CHECK_EQ(tftp_parse_client_packet(PKT("\0"), &p), -EBADMSG);
        CHECK_EQ(tftp_parse_client_packet(PKT("\0\5\0\x08" "refused\0"), &p), 0);
        CHECK_EQ(p.error_code, TFTP_EOPTNEG);
        CHECK_EQ(p.error_msg_len, 7);
        CHECK(memcmp(p.error_msg, "refused", 7) == 0);
        CHECK_EQ(tftp_parse_client_packet(PKT("\0\5\0\x08no nul"), &p), 0);
        CHECK_EQ(p.error_msg_len, 6);
        CHECK_EQ(tftp_parse_client_packet(PKT("\0\5\0"), &p), -EBADMSG);
        CHECK_EQ(tftp_parse_client_packet(PKT("\0\1f\0octet\0"), &p), 0);
        CHECK_EQ(p.opcode, TFTP_RRQ);
}

struct map_case {
        const char *in;
        int r;
        const char *out;
};

static const struct map_case map_cases[] = {
        { "pxe.efi", 0, "pxe.efi" },
        { "/pxe.efi", 0, "pxe.efi" },
        { "//boot/x", 0, "boot/x" },
        { "\\boot\\x.efi", 0, "boot/x.efi" },
        { "a..b", 0, "a..b" },
        { "..a/b", 0, "..a/b" },
        { ".../x", 0, ".../x" },
        { "./x", 0, "./x" },
        { "../etc/passwd", -EACCES, NULL },
        { "/../x", -EACCES, NULL },
        { "a/../../b", -EACCES, NULL },
        { "a/..", -EACCES, NULL },
        { "..", -EACCES, NULL },
        { "\\..\\x", -EACCES, NULL },
        { "a\\..", -EACCES, NULL },
        { "", -ENOENT, NULL },
        { "/", -ENOENT, NULL },
        { "\\\\", -ENOENT, NULL },
};

TEST(tftp_map_filename_table)
{
        for (size_t i = 0; i < ARRAY_SIZE(map_cases); i++) {
                const struct map_case *c = &map_cases[i];
                char out[TFTP_MAX_FILENAME + 1];
                int r = tftp_map_filename(c->in, strlen(c->in), out, sizeof(out));

                if (r != c->r)
                        fprintf(stderr, "  case \"%s\"\n", c->in);
                CHECK_EQ(r, c->r);
                if (c->out)
                        CHECK_STREQ(out, c->out);
        }
        char small[4];
        CHECK_EQ(tftp_map_filename("abcd", 4, small, sizeof(small)), -ENAMETOOLONG);
        CHECK_EQ(tftp_map_filename("/abc", 4, small, sizeof(small)), 0);
}

TEST(tftp_open_refusals_and_admission)
{
        static const struct { int err; uint16_t code; } cases[] = {
                { -ENOENT, TFTP_ENOTFOUND }, { -ENOTDIR, TFTP_ENOTFOUND }, { -EACCES, TFTP_EACCESS },
                { -ELOOP, TFTP_EACCESS }, { -EXDEV, TFTP_EACCESS }, { -EISDIR, TFTP_EACCESS },
                { -EPERM, TFTP_EACCESS }, { -EMFILE, TFTP_EUNDEF },
        };
        struct tftp_refusal why;

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                tftp_open_refusal(cases[i].err, &why);
                CHECK_EQ(why.code, cases[i].code);
        }
        CHECK_EQ(tftp_admit(0, 1, 0, 1, &why), TFTP_REQ_ACCEPT);
        CHECK_EQ(tftp_admit(1, 1, 0, 1, &why), TFTP_REQ_REFUSE);
        CHECK_EQ(why.code, TFTP_EUNDEF);
        CHECK_STREQ(why.message, "server busy");
        CHECK_EQ(why.metric, TFTP_ERR_BUSY);
        CHECK_EQ(tftp_admit(5, 10, 8, 8, &why), TFTP_REQ_REFUSE);
        CHECK_EQ(tftp_admit(5, 10, 7, 8, &why), TFTP_REQ_ACCEPT);
}

/* --- the transfer state machine --- */

static void xfer_setup(struct tftp_xfer *x, uint64_t size, uint32_t blksize, uint32_t window, bool oack,
                       uint64_t rto, unsigned retries)
{
        struct tftp_negotiation n = { .oack = oack, .blksize = blksize, .windowsize = window, .rto_usec = rto };

        tftp_xfer_init(x, &n, size, retries);
}

TEST(tftp_block_from_wire_maps_into_window)
{
        CHECK_EQ(tftp_block_from_wire(0, 1), 1);
        CHECK_EQ(tftp_block_from_wire(65535, 0), 65536);
        CHECK_EQ(tftp_block_from_wire(65530, 3), 65539);
        CHECK_EQ(tftp_block_from_wire(65536, 0), 65536);
        /* an ACK from before the base lands far ahead, where no block was sent */
        CHECK_EQ(tftp_block_from_wire(65536, 65535), 131071);
        CHECK_EQ(tftp_block_from_wire(3 * 65536 + 10, 12), 3 * 65536 + 12);
}

TEST(tftp_block_lengths_and_final_empty_block)
{
        struct tftp_xfer x;

        xfer_setup(&x, 1024, 512, 1, false, 1, 1);
        CHECK_EQ(x.last_block, 3);
        CHECK_EQ(tftp_block_len(&x, 1), 512);
        CHECK_EQ(tftp_block_len(&x, 2), 512);
        CHECK_EQ(tftp_block_len(&x, 3), 0);
        xfer_setup(&x, 1000, 512, 1, false, 1, 1);
        CHECK_EQ(x.last_block, 2);
        CHECK_EQ(tftp_block_len(&x, 2), 488);
        xfer_setup(&x, 0, 512, 1, false, 1, 1);
        CHECK_EQ(x.last_block, 1);
        CHECK_EQ(tftp_block_len(&x, 1), 0);
        xfer_setup(&x, 1468 * 3, 1468, 1, false, 1, 1);
        CHECK_EQ(x.last_block, 4);
        CHECK_EQ(tftp_block_offset(&x, 4), 1468 * 3);
}

TEST(tftp_xfer_rollover_past_65535)
{
        const uint64_t blocks = 70000;
        struct tftp_xfer x;
        struct tftp_send s;

        xfer_setup(&x, 512 * blocks + 100, 512, 1, false, USEC_PER_SEC, 3);
        CHECK_EQ(tftp_xfer_start(&x, 0, &s), TFTP_STEP_SEND);
        CHECK(s.first == 1 && s.count == 1 && !s.oack);
        for (uint64_t b = 1; b <= blocks; b++) {
                CHECK_EQ(tftp_xfer_on_ack(&x, (uint16_t)b, b, &s), TFTP_STEP_SEND);
                CHECK_EQ(s.first, b + 1);
                CHECK_EQ(s.count, 1);
                CHECK_EQ(s.resent, 0);
        }
        CHECK_EQ(tftp_block_len(&x, blocks + 1), 100);
        CHECK_EQ(tftp_xfer_on_ack(&x, (uint16_t)(blocks + 1), 0, &s), TFTP_STEP_DONE);
        CHECK_EQ(x.state, TFTP_XFER_DONE);
}

TEST(tftp_xfer_duplicate_ack_ignored_for_window_1)
{
        struct tftp_xfer x;
        struct tftp_send s;

        xfer_setup(&x, 512 * 10, 512, 1, false, USEC_PER_SEC, 3);
        tftp_xfer_start(&x, 0, &s);
        CHECK_EQ(tftp_xfer_on_ack(&x, 1, 10, &s), TFTP_STEP_SEND);
        CHECK_EQ(s.first, 2);
        /* the Sorcerer's Apprentice: answering this would send block 2 twice from now on */
        CHECK_EQ(tftp_xfer_on_ack(&x, 1, 20, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_ack(&x, 0, 20, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_ack(&x, 7, 20, &s), TFTP_STEP_NONE);     /* never sent */
        CHECK_EQ(tftp_xfer_on_ack(&x, 2, 30, &s), TFTP_STEP_SEND);
        CHECK_EQ(s.first, 3);
}

TEST(tftp_xfer_oack_then_window)
{
        struct tftp_xfer x;
        struct tftp_send s;

        xfer_setup(&x, 512 * 100, 512, 8, true, USEC_PER_SEC, 3);
        CHECK_EQ(x.state, TFTP_XFER_OACK_SENT);
        CHECK_EQ(tftp_xfer_start(&x, 0, &s), TFTP_STEP_SEND);
        CHECK(s.oack);
        CHECK_EQ(tftp_xfer_on_ack(&x, 5, 1, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_ack(&x, 0, 1, &s), TFTP_STEP_SEND);
        CHECK(!s.oack && s.first == 1 && s.count == 8 && s.resent == 0);
        CHECK_EQ(tftp_xfer_on_ack(&x, 8, 2, &s), TFTP_STEP_SEND);
        CHECK(s.first == 9 && s.count == 8 && s.resent == 0);
        /* a gap: the client kept 9..12 and lost 13; resume from 13 */
        CHECK_EQ(tftp_xfer_on_ack(&x, 12, 3, &s), TFTP_STEP_SEND);
        CHECK(s.first == 13 && s.count == 8 && s.resent == 4);
        /* its repeats of the same ACK do not resend the window again */
        CHECK_EQ(tftp_xfer_on_ack(&x, 12, 4, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_ack(&x, 20, 5, &s), TFTP_STEP_SEND);
        CHECK(s.first == 21 && s.count == 8 && s.resent == 0);
        /* the first block of the window lost: a duplicate resends it, once */
        CHECK_EQ(tftp_xfer_on_ack(&x, 20, 6, &s), TFTP_STEP_SEND);
        CHECK(s.first == 21 && s.count == 8 && s.resent == 8);
        CHECK_EQ(tftp_xfer_on_ack(&x, 20, 7, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_ack(&x, 0, 7, &s), TFTP_STEP_NONE);       /* an old ACK */
}

TEST(tftp_xfer_window_end_and_zero_block)
{
        struct tftp_xfer x;
        struct tftp_send s;

        /* 10 blocks of data and the empty 11th */
        xfer_setup(&x, 512 * 10, 512, 4, false, USEC_PER_SEC, 3);
        CHECK_EQ(tftp_xfer_start(&x, 0, &s), TFTP_STEP_SEND);
        CHECK(s.first == 1 && s.count == 4);
        CHECK_EQ(tftp_xfer_on_ack(&x, 4, 1, &s), TFTP_STEP_SEND);
        CHECK_EQ(tftp_xfer_on_ack(&x, 8, 2, &s), TFTP_STEP_SEND);
        CHECK(s.first == 9 && s.count == 3);
        CHECK_EQ(tftp_block_len(&x, 11), 0);
        CHECK_EQ(tftp_xfer_on_ack(&x, 10, 3, &s), TFTP_STEP_SEND);
        CHECK(s.first == 11 && s.count == 1 && s.resent == 1);
        CHECK_EQ(tftp_xfer_on_ack(&x, 11, 4, &s), TFTP_STEP_DONE);
        CHECK_EQ(tftp_xfer_on_ack(&x, 11, 5, &s), TFTP_STEP_NONE);
}

TEST(tftp_xfer_window_across_rollover)
{
        struct tftp_xfer x;
        struct tftp_send s;
        uint64_t acked = 0;

        xfer_setup(&x, 1468ull * 200000, 1468, 16, false, USEC_PER_SEC, 3);
        tftp_xfer_start(&x, 0, &s);
        while (acked + 16 < 65536 + 40) {
                acked += 16;
                CHECK_EQ(tftp_xfer_on_ack(&x, (uint16_t)acked, 0, &s), TFTP_STEP_SEND);
                CHECK_EQ(s.first, acked + 1);
        }
        /* a gap ACK whose wire number wrapped */
        CHECK_EQ(tftp_xfer_on_ack(&x, (uint16_t)(acked + 3), 0, &s), TFTP_STEP_SEND);
        CHECK_EQ(s.first, acked + 4);
        CHECK_EQ(x.acked, acked + 3);
}

TEST(tftp_xfer_timeout_backoff_and_give_up)
{
        const uint64_t sec = USEC_PER_SEC;
        struct tftp_xfer x;
        struct tftp_send s;

        xfer_setup(&x, 512 * 4, 512, 2, false, sec, 3);
        tftp_xfer_start(&x, 0, &s);
        CHECK_EQ(x.deadline, sec);
        CHECK_EQ(tftp_xfer_on_timeout(&x, sec / 2, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_timeout(&x, sec, &s), TFTP_STEP_SEND);
        CHECK(s.first == 1 && s.count == 2 && s.resent == 2);
        CHECK_EQ(x.deadline, 3 * sec);
        CHECK_EQ(tftp_xfer_on_timeout(&x, 3 * sec, &s), TFTP_STEP_SEND);
        CHECK_EQ(x.deadline, 7 * sec);
        /* progress resets the backoff and the count */
        CHECK_EQ(tftp_xfer_on_ack(&x, 2, 7 * sec, &s), TFTP_STEP_SEND);
        CHECK_EQ(x.deadline, 8 * sec);
        CHECK_EQ(x.tries, 0);
        CHECK_EQ(tftp_xfer_on_timeout(&x, 8 * sec, &s), TFTP_STEP_SEND);
        CHECK(s.first == 3 && s.count == 2);
        CHECK_EQ(tftp_xfer_on_timeout(&x, 10 * sec, &s), TFTP_STEP_SEND);
        CHECK_EQ(tftp_xfer_on_timeout(&x, 14 * sec, &s), TFTP_STEP_SEND);
        CHECK_EQ(x.deadline, 22 * sec);
        CHECK_EQ(tftp_xfer_on_timeout(&x, 21 * sec, &s), TFTP_STEP_NONE);
        CHECK_EQ(tftp_xfer_on_timeout(&x, 22 * sec, &s), TFTP_STEP_GIVE_UP);
        CHECK_EQ(x.state, TFTP_XFER_FAILED);
        CHECK_EQ(tftp_xfer_on_ack(&x, 3, 23 * sec, &s), TFTP_STEP_NONE);
}

TEST(tftp_xfer_backoff_cap)
{
        struct tftp_xfer x;
        struct tftp_send s;
        uint64_t now = 0;

        xfer_setup(&x, 512, 512, 1, true, 4 * USEC_PER_SEC, 10);
        tftp_xfer_start(&x, now, &s);
        for (int i = 0; i < 5; i++) {
                now = x.deadline;
                CHECK_EQ(tftp_xfer_on_timeout(&x, now, &s), TFTP_STEP_SEND);
                CHECK(s.oack);
        }
        CHECK_EQ(x.rto, TFTP_MAX_RTO_USEC);
        /* a negotiated timeout above the cap is kept, not doubled */
        xfer_setup(&x, 512, 512, 1, true, 20 * USEC_PER_SEC, 10);
        tftp_xfer_start(&x, 0, &s);
        CHECK_EQ(tftp_xfer_on_timeout(&x, x.deadline, &s), TFTP_STEP_SEND);
        CHECK_EQ(x.rto, 20 * USEC_PER_SEC);
}

TEST(tftp_xfer_stalled_after_timeouts_without_progress)
{
        const uint64_t sec = USEC_PER_SEC;
        struct tftp_xfer x;
        struct tftp_send s;

        xfer_setup(&x, 512 * 4, 512, 1, true, sec, 6);
        tftp_xfer_start(&x, 5 * sec, &s);
        CHECK_EQ(x.progress_at, 5 * sec);
        CHECK(!tftp_xfer_stalled(&x));
        /* a waiting OACK stalls like DATA */
        for (unsigned i = 1; i <= TFTP_STALL_TIMEOUTS; i++) {
                CHECK(!tftp_xfer_stalled(&x));
                CHECK_EQ(tftp_xfer_on_timeout(&x, x.deadline, &s), TFTP_STEP_SEND);
        }
        CHECK(tftp_xfer_stalled(&x));
        CHECK_EQ(x.progress_at, 5 * sec);
        CHECK_EQ(tftp_xfer_on_ack(&x, 0, 20 * sec, &s), TFTP_STEP_SEND);
        CHECK(!tftp_xfer_stalled(&x));
        CHECK_EQ(x.progress_at, 20 * sec);
        /* a duplicate ACK is no progress */
        CHECK_EQ(tftp_xfer_on_ack(&x, 0, 21 * sec, &s), TFTP_STEP_NONE);
        CHECK_EQ(x.progress_at, 20 * sec);
        for (unsigned i = 0; i < TFTP_STALL_TIMEOUTS; i++)
                CHECK_EQ(tftp_xfer_on_timeout(&x, x.deadline, &s), TFTP_STEP_SEND);
        CHECK(tftp_xfer_stalled(&x));
        CHECK_EQ(tftp_xfer_on_ack(&x, 1, 40 * sec, &s), TFTP_STEP_SEND);
        CHECK(!tftp_xfer_stalled(&x));
        CHECK_EQ(x.progress_at, 40 * sec);
        /* however long the clock says it has been: only expired timeouts count */
        CHECK_EQ(tftp_xfer_on_timeout(&x, 3600 * sec, &s), TFTP_STEP_SEND);
        CHECK(!tftp_xfer_stalled(&x));
}

struct reclaim_row {
        enum tftp_xfer_state state;
        unsigned tries;
        uint64_t progress_at;
};

#define STALL TFTP_STALL_TIMEOUTS
static const struct {
        const char *name;
        size_t n;
        struct reclaim_row rows[6];
        int r;
        size_t index;                           /* when r == 0 */
} reclaim_cases[] = {
        { "empty table", 0, {}, -ENOENT, 0 },
        { "all active", 3, { { TFTP_XFER_SENDING, 0, 10 }, { TFTP_XFER_SENDING, 1, 1 },
                             { TFTP_XFER_OACK_SENT, STALL - 1, 0 } }, -ENOENT, 0 },
        { "one stalled", 3, { { TFTP_XFER_SENDING, 0, 1 }, { TFTP_XFER_SENDING, STALL, 50 },
                              { TFTP_XFER_SENDING, 1, 2 } }, 0, 1 },
        { "stalled waiting for ACK 0", 2, { { TFTP_XFER_SENDING, 0, 1 }, { TFTP_XFER_OACK_SENT, STALL, 9 } }, 0, 1 },
        { "oldest progress, not most timeouts", 3, { { TFTP_XFER_SENDING, STALL + 4, 300 },
                                                     { TFTP_XFER_SENDING, STALL, 100 },
                                                     { TFTP_XFER_SENDING, STALL + 1, 200 } }, 0, 1 },
        { "tie: the first", 3, { { TFTP_XFER_SENDING, 0, 5 }, { TFTP_XFER_SENDING, STALL, 7 },
                                 { TFTP_XFER_OACK_SENT, STALL + 2, 7 } }, 0, 1 },
        { "progress at clock zero", 2, { { TFTP_XFER_SENDING, STALL, 1 }, { TFTP_XFER_SENDING, STALL, 0 } }, 0, 1 },
        { "progress at the clock's end", 2, { { TFTP_XFER_SENDING, STALL, UINT64_MAX },
                                              { TFTP_XFER_SENDING, STALL, UINT64_MAX - 1 } }, 0, 1 },
        { "old but not stalled loses to stalled", 2, { { TFTP_XFER_SENDING, STALL - 1, 0 },
                                                       { TFTP_XFER_SENDING, STALL, UINT64_MAX } }, 0, 1 },
        { "ended transfers hold nothing", 3, { { TFTP_XFER_DONE, STALL, 0 }, { TFTP_XFER_FAILED, 9, 0 },
                                               { TFTP_XFER_SENDING, STALL, 3 } }, 0, 2 },
        { "only ended ones", 2, { { TFTP_XFER_DONE, STALL, 0 }, { TFTP_XFER_FAILED, STALL, 0 } }, -ENOENT, 0 },
        { "six stalled, oldest last", 6, { { TFTP_XFER_SENDING, STALL, 60 }, { TFTP_XFER_SENDING, STALL, 50 },
                                           { TFTP_XFER_SENDING, STALL, 40 }, { TFTP_XFER_SENDING, STALL, 30 },
                                           { TFTP_XFER_SENDING, STALL, 20 }, { TFTP_XFER_SENDING, STALL, 10 } },
          0, 5 },
};
#undef STALL

TEST(tftp_reclaim_pick_table)
{
        for (size_t i = 0; i < ARRAY_SIZE(reclaim_cases); i++) {
                struct tftp_xfer x[6];
                const struct tftp_xfer *table[6];
                size_t at = 99;
                int r;

                for (size_t k = 0; k < reclaim_cases[i].n; k++) {
                        const struct reclaim_row *row = &reclaim_cases[i].rows[k];

                        xfer_setup(&x[k], 512 * 4, 512, 1, false, USEC_PER_SEC, 6);
                        x[k].state = row->state;
                        x[k].tries = row->tries;
                        x[k].progress_at = row->progress_at;
                        table[k] = &x[k];
                }
                r = tftp_reclaim_pick(table, reclaim_cases[i].n, &at);
                if (r != reclaim_cases[i].r)
                        fprintf(stderr, "  case \"%s\"\n", reclaim_cases[i].name);
                CHECK_EQ(r, reclaim_cases[i].r);
                if (r < 0) {
                        CHECK_EQ(at, 99);       /* untouched on failure */
                        continue;
                }
                if (at != reclaim_cases[i].index)
                        fprintf(stderr, "  case \"%s\"\n", reclaim_cases[i].name);
                CHECK_EQ(at, reclaim_cases[i].index);
        }
}

/* --- the service over loopback: sockets, TIDs, timers --- */

struct fixture {
        struct config cfg;
        struct runtime rt;
        struct tftp_service *svc;
        uint16_t port;
        int client;
};

static uint16_t local_port(int fd)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);

        if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                return 0;
        return ntohs(sa.sin_port);
}

/* Bound to 127.0.0.host: another client address on the same loopback. */
static int udp_socket_at(uint8_t host, uint16_t port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + host) };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                abort();
        return fd;
}

static int udp_socket(uint16_t port) { return udp_socket_at(1, port); }

static void write_file(const char *name, size_t size)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
        fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0)
                abort();
        for (size_t i = 0; i < size; i++) {
                uint8_t b = (uint8_t)(i * 7);

                if (write(fd, &b, 1) != 1)
                        abort();
        }
        close(fd);
}

static int fixture_start_limits(struct fixture *f, uint32_t timeout_ms, uint32_t max_transfers,
                                uint32_t max_per_client, uint32_t retries)
{
        int probe = udp_socket(0);

        *f = (struct fixture){ .client = udp_socket(0) };
        f->port = local_port(probe);
        close(probe);
        f->cfg.tftp = (struct tftp_config){
                .enabled = true, .listen.s_addr = htonl(INADDR_LOOPBACK), .port = f->port,
                .max_blksize = TFTP_MAX_BLKSIZE, .max_windowsize = 64, .max_transfers = max_transfers,
                .max_per_client = max_per_client, .timeout_ms = timeout_ms, .retries = retries,
        };
        snprintf(f->cfg.tftp.root, sizeof(f->cfg.tftp.root), "%s", test_tmpdir());
        f->rt.cfg = &f->cfg;
        write_file("small", 5);
        write_file("four", 4 * 512);
        return tftp_service_start(&f->rt, &f->svc);
}

static int fixture_start(struct fixture *f, uint32_t timeout_ms, uint32_t max_per_client)
{
        return fixture_start_limits(f, timeout_ms, 8, max_per_client, 2);
}

static void fixture_stop(struct fixture *f)
{
        tftp_service_stop(f->svc);
        close(f->client);
}

static void send_to(int fd, uint16_t port, const void *p, size_t n)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

        if (sendto(fd, p, n, 0, (struct sockaddr *)&sa, sizeof(sa)) != (ssize_t)n)
                abort();
}

/* One datagram within timeout_ms: its length, or -1. */
static ssize_t recv_from(int fd, uint8_t *buf, size_t cap, uint16_t *ret_port, int timeout_ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        ssize_t n;

        if (poll(&p, 1, timeout_ms) != 1)
                return -1;
        n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&sa, &len);
        if (ret_port)
                *ret_port = ntohs(sa.sin_port);
        return n;
}

static void send_ack(int fd, uint16_t port, uint16_t block)
{
        uint8_t ack[4] = { 0, TFTP_ACK, (uint8_t)(block >> 8), (uint8_t)block };

        send_to(fd, port, ack, sizeof(ack));
}

static bool is_packet(const uint8_t *b, ssize_t n, uint16_t opcode, uint16_t num)
{
        return n >= 4 && b[0] == 0 && b[1] == opcode && (b[2] << 8 | b[3]) == num;
}

static bool wait_active_zero(void)
{
        for (int i = 0; i < 200; i++) {
                if (atomic_load(&metrics.tftp_active) == 0)
                        return true;
                usleep(5000);
        }
        return false;
}

TEST(tftp_service_plain_transfer_from_new_tid)
{
        struct fixture f;
        uint8_t buf[1024];
        uint16_t tid;
        uint64_t completed = atomic_load(&metrics.tftp_completed);
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        send_to(f.client, f.port, PKT("\0\1/small\0octet\0"));
        n = recv_from(f.client, buf, sizeof(buf), &tid, 2000);
        CHECK(is_packet(buf, n, TFTP_DATA, 1));
        CHECK_EQ(n, 4 + 5);
        CHECK(tid != f.port);
        send_ack(f.client, tid, 1);
        CHECK(wait_active_zero());
        CHECK_EQ(atomic_load(&metrics.tftp_completed), completed + 1);
        CHECK(tftp_service_heartbeat(f.svc) > 0);
        fixture_stop(&f);
}

TEST(tftp_service_refusals_come_from_server_port)
{
        static const struct { const char *pkt; size_t len; uint16_t code; } cases[] = {
                { PKT("\0\1missing\0octet\0"), TFTP_ENOTFOUND },
                { PKT("\0\1../etc/passwd\0octet\0"), TFTP_EACCESS },
                { PKT("\0\1\\..\\x\0octet\0"), TFTP_EACCESS },
                { PKT("\0\1.\0octet\0"), TFTP_EACCESS },
                { PKT("\0\2small\0octet\0"), TFTP_EACCESS },
                { PKT("\0\1small\0netascii\0"), TFTP_EUNDEF },
                { PKT("\0\1small"), TFTP_EBADOP },
                { PKT("\0\x09whatever"), TFTP_EBADOP },
        };
        struct fixture f;
        uint8_t buf[1024];
        uint16_t from;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                ssize_t n;

                send_to(f.client, f.port, cases[i].pkt, cases[i].len);
                n = recv_from(f.client, buf, sizeof(buf), &from, 2000);
                CHECK(is_packet(buf, n, TFTP_ERROR, cases[i].code));
                CHECK_EQ(from, f.port);
        }
        /* neither an ERROR nor an ACK to the server port is answered */
        send_to(f.client, f.port, PKT("\0\5\0\0x\0"));
        send_to(f.client, f.port, PKT("\0\4\0\1"));
        CHECK(recv_from(f.client, buf, sizeof(buf), NULL, 100) < 0);
        fixture_stop(&f);
}

TEST(tftp_service_wrong_tid_gets_error_5_and_transfer_goes_on)
{
        struct fixture f;
        uint8_t buf[2048];
        uint16_t tid, from;
        int stranger = udp_socket(0);
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        send_to(f.client, f.port, PKT("\0\1four\0octet\0tsize\0" "0\0blksize\0" "1024\0"));
        n = recv_from(f.client, buf, sizeof(buf), &tid, 2000);
        CHECK(n == sizeof("\0\6tsize\0" "2048\0blksize\0" "1024\0") - 1);
        CHECK(memcmp(buf, "\0\6tsize\0" "2048\0blksize\0" "1024\0", (size_t)n) == 0 ||
              memcmp(buf, "\0\6blksize\0" "1024\0tsize\0" "2048\0", (size_t)n) == 0);
        send_ack(stranger, tid, 0);
        n = recv_from(stranger, buf, sizeof(buf), &from, 2000);
        CHECK(is_packet(buf, n, TFTP_ERROR, TFTP_EBADID));
        CHECK_EQ(from, tid);
        send_ack(f.client, tid, 0);
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        CHECK(is_packet(buf, n, TFTP_DATA, 1) && n == 4 + 1024);
        send_ack(f.client, tid, 1);
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        CHECK(is_packet(buf, n, TFTP_DATA, 2) && n == 4 + 1024);
        send_ack(f.client, tid, 2);
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        CHECK(is_packet(buf, n, TFTP_DATA, 3) && n == 4);     /* 2048 is a multiple of 1024 */
        send_ack(f.client, tid, 3);
        CHECK(wait_active_zero());
        close(stranger);
        fixture_stop(&f);
}

TEST(tftp_service_error_after_oack_ends_quietly)
{
        struct fixture f;
        uint8_t buf[1024];
        uint16_t tid;
        uint64_t failed = atomic_load(&metrics.tftp_failed);
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        send_to(f.client, f.port, PKT("\0\1four\0octet\0tsize\0" "0\0"));
        n = recv_from(f.client, buf, sizeof(buf), &tid, 2000);
        CHECK(is_packet(buf, n, TFTP_OACK, ('t' << 8) | 's'));
        send_to(f.client, tid, PKT("\0\5\0\x08tsize probe\0"));
        CHECK(wait_active_zero());
        CHECK_EQ(atomic_load(&metrics.tftp_failed), failed);
        fixture_stop(&f);
}

TEST(tftp_service_probe_then_same_request_from_same_port)
{
        static const char rrq[] = "\0\1four\0octet\0tsize\0" "0\0";
        struct fixture f;
        uint8_t buf[1024];
        uint16_t tid, tid2;
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        send_to(f.client, f.port, rrq, sizeof(rrq) - 1);
        n = recv_from(f.client, buf, sizeof(buf), &tid, 2000);
        CHECK(n > 1 && buf[1] == TFTP_OACK);
        /* edk2: refuse the OACK, then ask for real right away */
        send_to(f.client, tid, PKT("\0\5\0\x08tsize probe\0"));
        send_to(f.client, f.port, rrq, sizeof(rrq) - 1);
        /*
         * A stalled machine may let the probe's timer resend its OACK before
         * the ERROR is read (at most retries times): only an answer from a
         * new TID shows that the request was not taken for a repeat.
         */
        do {
                n = recv_from(f.client, buf, sizeof(buf), &tid2, 2000);
        } while (n > 1 && tid2 == tid);
        CHECK(n > 1 && buf[1] == TFTP_OACK);
        CHECK(tid2 != tid);
        fixture_stop(&f);
}

TEST(tftp_service_window_gap_resumes_after_acked_block)
{
        struct fixture f;
        uint8_t buf[1024];
        uint16_t tid;
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        send_to(f.client, f.port, PKT("\0\1four\0octet\0windowsize\0" "4\0"));
        n = recv_from(f.client, buf, sizeof(buf), &tid, 2000);
        CHECK(n > 1 && buf[1] == TFTP_OACK);
        send_ack(f.client, tid, 0);
        for (uint16_t b = 1; b <= 4; b++) {
                n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
                CHECK(is_packet(buf, n, TFTP_DATA, b));
        }
        send_ack(f.client, tid, 2);
        for (uint16_t b = 3; b <= 5; b++) {
                n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
                CHECK(is_packet(buf, n, TFTP_DATA, b));
        }
        CHECK_EQ(n, 4);
        send_ack(f.client, tid, 5);
        CHECK(wait_active_zero());
        fixture_stop(&f);
}

TEST(tftp_service_retransmits_with_backoff_then_gives_up)
{
        struct fixture f;
        uint8_t buf[1024];
        uint64_t t0, t1, t2, retransmits = atomic_load(&metrics.tftp_retransmits);
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 100, 2), 0);
        send_to(f.client, f.port, PKT("\0\1small\0octet\0"));
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        t0 = now_monotonic_usec();
        CHECK(is_packet(buf, n, TFTP_DATA, 1));
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        t1 = now_monotonic_usec();
        CHECK(is_packet(buf, n, TFTP_DATA, 1));
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        t2 = now_monotonic_usec();
        CHECK(is_packet(buf, n, TFTP_DATA, 1));
        /* 100 ms, then 200 ms: the second wait is clearly longer */
        CHECK(t1 - t0 >= 80 * USEC_PER_MSEC);
        CHECK(t2 - t1 >= 160 * USEC_PER_MSEC);
        n = recv_from(f.client, buf, sizeof(buf), NULL, 2000);
        CHECK(is_packet(buf, n, TFTP_ERROR, TFTP_EUNDEF));
        CHECK(wait_active_zero());
        CHECK_EQ(atomic_load(&metrics.tftp_retransmits), retransmits + 2);
        fixture_stop(&f);
}

TEST(tftp_service_busy_and_repeated_request)
{
        struct fixture f;
        uint8_t buf[1024];
        int other = udp_socket(0), third = udp_socket(0);
        uint64_t busy = atomic_load(&metrics.tftp_errors[TFTP_ERR_BUSY]);
        ssize_t n;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        send_to(f.client, f.port, PKT("\0\1small\0octet\0"));
        CHECK(is_packet(buf, recv_from(f.client, buf, sizeof(buf), NULL, 2000), TFTP_DATA, 1));
        /* the same request again from the same port: the running transfer answers, no second one */
        send_to(f.client, f.port, PKT("\0\1small\0octet\0"));
        CHECK(recv_from(f.client, buf, sizeof(buf), NULL, 300) < 0);
        send_to(other, f.port, PKT("\0\1small\0octet\0"));
        CHECK(is_packet(buf, recv_from(other, buf, sizeof(buf), NULL, 2000), TFTP_DATA, 1));
        send_to(third, f.port, PKT("\0\1small\0octet\0"));
        n = recv_from(third, buf, sizeof(buf), NULL, 2000);
        CHECK(is_packet(buf, n, TFTP_ERROR, TFTP_EUNDEF));
        CHECK(n > 4 && strcmp((const char *)buf + 4, "server busy") == 0);
        CHECK_EQ(atomic_load(&metrics.tftp_errors[TFTP_ERR_BUSY]), busy + 1);
        close(other);
        close(third);
        fixture_stop(&f);
        CHECK_EQ(atomic_load(&metrics.tftp_active), 0);
}

/* count DATA of block on fd: the first send and count - 1 retransmissions. */
static bool recv_data_times(int fd, uint16_t block, unsigned count, uint16_t *ret_tid)
{
        uint8_t buf[1024];

        for (unsigned i = 0; i < count; i++)
                if (!is_packet(buf, recv_from(fd, buf, sizeof(buf), ret_tid, 2000), TFTP_DATA, block))
                        return false;
        return true;
}

/* Skips retransmitted DATA; whether what follows is DATA of block, or an ERROR with msg when block is 0. */
static bool recv_after_resends(int fd, uint16_t block, const char *msg)
{
        uint8_t buf[1024];

        for (int i = 0; i < 32; i++) {
                ssize_t n = recv_from(fd, buf, sizeof(buf) - 1, NULL, 2000);

                if (n < 4)
                        return false;
                buf[n] = 0;
                if (block && is_packet(buf, n, TFTP_DATA, block))
                        return true;
                if (buf[1] == TFTP_DATA)
                        continue;
                return !block && is_packet(buf, n, TFTP_ERROR, TFTP_EUNDEF) && strcmp((char *)buf + 4, msg) == 0;
        }
        return false;
}

static bool recv_busy(int fd)
{
        uint8_t buf[1024];
        ssize_t n = recv_from(fd, buf, sizeof(buf) - 1, NULL, 2000);

        if (!is_packet(buf, n, TFTP_ERROR, TFTP_EUNDEF))
                return false;
        buf[n] = 0;
        return strcmp((char *)buf + 4, "server busy") == 0;
}

TEST(tftp_service_reclaims_the_clients_most_stale_transfer)
{
        struct fixture f;
        uint8_t buf[1024];
        int a = udp_socket(0), b = udp_socket(0);
        uint16_t tid_a, tid;
        uint64_t reclaimed = atomic_load(&metrics.tftp_reclaimed), failed = atomic_load(&metrics.tftp_failed);
        ssize_t n;

        CHECK_EQ(fixture_start_limits(&f, 100, 8, 2, 6), 0);
        send_to(a, f.port, PKT("\0\1four\0octet\0"));
        CHECK(recv_data_times(a, 1, 1, &tid_a));
        send_to(b, f.port, PKT("\0\1four\0octet\0"));
        CHECK(recv_data_times(b, 1, 1, NULL));
        /* both just started: the limit holds */
        send_to(f.client, f.port, PKT("\0\1small\0octet\0"));
        CHECK(recv_busy(f.client));
        /* a moves on once, after b started: b has the older progress once both stall */
        send_ack(a, tid_a, 1);
        CHECK(recv_data_times(a, 2, 1 + TFTP_STALL_TIMEOUTS, NULL));
        CHECK(recv_data_times(b, 1, TFTP_STALL_TIMEOUTS, NULL));
        send_to(f.client, f.port, PKT("\0\1small\0octet\0"));
        n = recv_from(f.client, buf, sizeof(buf), &tid, 2000);
        CHECK(is_packet(buf, n, TFTP_DATA, 1) && n == 4 + 5);
        CHECK(recv_after_resends(b, 0, "transfer stalled"));
        CHECK_EQ(atomic_load(&metrics.tftp_reclaimed), reclaimed + 1);
        CHECK_EQ(atomic_load(&metrics.tftp_failed), failed + 1);
        send_ack(f.client, tid, 1);
        /* the other stalled transfer was left alone and goes on */
        send_ack(a, tid_a, 2);
        CHECK(recv_after_resends(a, 3, NULL));
        close(a);
        close(b);
        fixture_stop(&f);
}

TEST(tftp_service_full_server_reclaims_the_most_stale_of_any_client)
{
        struct fixture f;
        uint8_t buf[1024];
        int a = udp_socket_at(2, 0), b = udp_socket_at(3, 0), c = udp_socket_at(4, 0);
        uint64_t reclaimed = atomic_load(&metrics.tftp_reclaimed);

        CHECK_EQ(fixture_start_limits(&f, 100, 2, 2, 6), 0);
        send_to(a, f.port, PKT("\0\1four\0octet\0"));
        CHECK(recv_data_times(a, 1, 1, NULL));
        send_to(b, f.port, PKT("\0\1four\0octet\0"));
        CHECK(recv_data_times(b, 1, 1, NULL));
        send_to(c, f.port, PKT("\0\1small\0octet\0"));
        CHECK(recv_busy(c));
        CHECK(recv_data_times(a, 1, TFTP_STALL_TIMEOUTS, NULL));
        CHECK(recv_data_times(b, 1, TFTP_STALL_TIMEOUTS, NULL));
        /* a missing file ends nothing */
        send_to(c, f.port, PKT("\0\1missing\0octet\0"));
        CHECK(is_packet(buf, recv_from(c, buf, sizeof(buf), NULL, 2000), TFTP_ERROR, TFTP_ENOTFOUND));
        CHECK_EQ(atomic_load(&metrics.tftp_reclaimed), reclaimed);
        send_to(c, f.port, PKT("\0\1small\0octet\0"));
        CHECK(is_packet(buf, recv_from(c, buf, sizeof(buf), NULL, 2000), TFTP_DATA, 1));
        CHECK(recv_after_resends(a, 0, "transfer stalled"));
        CHECK_EQ(atomic_load(&metrics.tftp_reclaimed), reclaimed + 1);
        /* b, started later, is still there */
        CHECK(is_packet(buf, recv_from(b, buf, sizeof(buf), NULL, 2000), TFTP_DATA, 1));
        close(a);
        close(b);
        close(c);
        fixture_stop(&f);
}

TEST(tftp_service_start_errors)
{
        struct fixture f;
        struct tftp_service *svc = NULL;
        int holder;

        CHECK_EQ(fixture_start(&f, 1000, 2), 0);
        tftp_service_stop(f.svc);
        /* a port held without SO_REUSEADDR */
        holder = udp_socket(f.port);
        CHECK_EQ(tftp_service_start(&f.rt, &svc), -EADDRINUSE);
        close(holder);
        snprintf(f.cfg.tftp.root, sizeof(f.cfg.tftp.root), "%s/nonexistent", test_tmpdir());
        CHECK_EQ(tftp_service_start(&f.rt, &svc), -ENOENT);
        CHECK(svc == NULL);
        close(f.client);
}

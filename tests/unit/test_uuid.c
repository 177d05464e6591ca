/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/api.h"
#include "metald/boot_script.h"
#include "metald/profile.h"
#include "metald/util.h"
#include "test.h"

#define NIL "00000000-0000-0000-0000-000000000000"
#define ALL_FF "ffffffff-ffff-ffff-ffff-ffffffffffff"

/* An SMBIOS UUID as every entry point sees it: text that is no identity becomes "", text that is no UUID an error. */
TEST(uuid_normalize_table)
{
        static const struct {
                const char *in;
                int r;
                const char *out;
        } cases[] = {
                { "8c1b5a2e-4c1e-4d5a-9f00-000000000a15", 0, "8c1b5a2e-4c1e-4d5a-9f00-000000000a15" },
                { "8C1B5A2E-4c1e-4D5A-9f00-000000000A15", 0, "8c1b5a2e-4c1e-4d5a-9f00-000000000a15" },
                { "", 0, "" },
                { NIL, 0, "" },
                { ALL_FF, 0, "" },
                { "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", 0, "" },
                { "ffffFFFF-ffff-FFFF-ffff-FFFFffffFFFF", 0, "" },
                { "00000000-0000-0000-0000-000000000001", 0, "00000000-0000-0000-0000-000000000001" },
                { "ffffffff-ffff-ffff-ffff-fffffffffffe", 0, "ffffffff-ffff-ffff-ffff-fffffffffffe" },
                { "00000000-0000-0000-0000-ffffffffffff", 0, "00000000-0000-0000-0000-ffffffffffff" },
                { "{8c1b5a2e-4c1e-4d5a-9f00-000000000a15}", -EINVAL, NULL },     /* braces */
                { "{00000000-0000-0000-0000-000000000000}", -EINVAL, NULL },
                { "8c1b5a2e-4c1e-4d5a-9f00-000000000a1", -EINVAL, NULL },       /* short */
                { "8c1b5a2e-4c1e-4d5a-9f00-000000000a155", -EINVAL, NULL },     /* long */
                { "0", -EINVAL, NULL },
                { "8c1b5a2e4c1e4d5a9f00000000000a15", -EINVAL, NULL },         /* no dashes */
                { "8c1b5a2e-4c1e4-d5a-9f00-000000000a15", -EINVAL, NULL },      /* a dash misplaced */
                { "8c1b5a2e-4c1e-4d5a-9f00-000000000a1g", -EINVAL, NULL },
                { "8c1b5a2e-4c1e-4d5a-9f00-000000000a1 ", -EINVAL, NULL },
                { "------------------------------------", -EINVAL, NULL },
                { "+c1b5a2e-4c1e-4d5a-9f00-000000000a15", -EINVAL, NULL },
        };
        char out[UUID_TEXT_BYTES];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int r = uuid_normalize(cases[i].in, strlen(cases[i].in), out);

                if (r != cases[i].r)
                        fprintf(stderr, "  case: '%s'\n", cases[i].in);
                CHECK_EQ(r, cases[i].r);
                if (r == 0)
                        CHECK_STREQ(out, cases[i].out);
                CHECK_EQ(uuid_is_identity(cases[i].in), r == 0 && *cases[i].out);
        }
        /* a NUL inside the bytes is no UUID; the length given counts, not the terminator */
        CHECK_EQ(uuid_normalize("8c1b5a2e-4c1e-4d5a-9f00-000000000a1\0", 36, out), -EINVAL);
        CHECK_EQ(uuid_normalize("8c1b5a2e-4c1e-4d5a-9f00-000000000a15junk", 36, out), 0);
        CHECK_STREQ(out, "8c1b5a2e-4c1e-4d5a-9f00-000000000a15");
        /* in place */
        char s[UUID_TEXT_BYTES] = "ABCDEF01-2345-6789-ABCD-EF0123456789";
        CHECK_EQ(uuid_normalize(s, strlen(s), s), 0);
        CHECK_STREQ(s, "abcdef01-2345-6789-abcd-ef0123456789");
}

TEST(uuid_format_bytes)
{
        static const uint8_t zero[16], ff[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        static const uint8_t g[16] = { 0x8c, 0x1b, 0x5a, 0x2e, 0x4c, 0x1e, 0x4d, 0x5a,
                                       0x9f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x15 };
        char out[UUID_TEXT_BYTES];

        uuid_format(out, g);
        CHECK_STREQ(out, "8c1b5a2e-4c1e-4d5a-9f00-000000000a15");
        uuid_format(out, zero);
        CHECK_STREQ(out, "");
        uuid_format(out, ff);
        CHECK_STREQ(out, "");
}

/* iPXE's ${uuid}: what the boot query carries. */
TEST(uuid_boot_query)
{
        static const struct {
                const char *uuid;
                enum boot_query_result r;
                const char *stored;
        } cases[] = {
                { NIL, BOOT_QUERY_OK, "" },
                { ALL_FF, BOOT_QUERY_OK, "" },
                { "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", BOOT_QUERY_OK, "" },
                { "4C4C4544-0042-3510-8051-b4c04f4b4e32", BOOT_QUERY_OK, "4c4c4544-0042-3510-8051-b4c04f4b4e32" },
                { "%7B4c4c4544-0042-3510-8051-b4c04f4b4e32%7D", BOOT_QUERY_INVALID, NULL },
                { "4c4c4544-0042-3510-8051-b4c04f4b4e3", BOOT_QUERY_INVALID, NULL },
                { "00000000-0000-0000-0000-00000000000", BOOT_QUERY_INVALID, NULL },
                { "00000000-0000-0000-0000-000000000000%00", BOOT_QUERY_INVALID, NULL },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                char q[256];
                struct boot_identity id;
                const char *why = NULL;

                snprintf(q, sizeof(q), "mac=52-54-00-12-34-56&uuid=%s&arch=x86_64&platform=efi", cases[i].uuid);
                CHECK_EQ(boot_identity_parse(q, strlen(q), &id, &why), cases[i].r);
                if (cases[i].stored)
                        CHECK_STREQ(id.uuid, cases[i].stored);
        }
}

/* inventory.system.uuid of the agent's registration. */
TEST(uuid_agent_register)
{
        static const struct {
                const char *uuid;
                int r;
                const char *stored;
        } cases[] = {
                { NIL, 0, "" },
                { ALL_FF, 0, "" },
                { "FFFFFFFF-ffff-FFFF-ffff-FFFFFFFFFFFF", 0, "" },
                { "", 0, "" },
                { "8C1B5A2E-4C1E-4D5A-9F00-000000000A15", 0, "8c1b5a2e-4c1e-4d5a-9f00-000000000a15" },
                { "{8c1b5a2e-4c1e-4d5a-9f00-000000000a15}", -EINVAL, NULL },
                { "8c1b5a2e-4c1e-4d5a-9f00-000000000a1", -EINVAL, NULL },
                { "00000000000000000000000000000000", -EINVAL, NULL },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct agent_register_req req;
                char body[512], why[256], want[64];
                int r;

                snprintf(body, sizeof(body),
                         "{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"boot_mac\":\"52:54:00:12:34:56\",\"inventory\":"
                         "{\"system\":{\"uuid\":\"%s\",\"serial\":\"S1\",\"vendor\":\"QEMU\",\"product\":\"PC\"},"
                         "\"cpu\":{\"count\":1},\"memory_bytes\":1,\"nics\":[],\"disks\":[]}}",
                         cases[i].uuid);
                r = agent_parse_register(body, strlen(body), &req, why, sizeof(why));
                if (r != cases[i].r)
                        fprintf(stderr, "  case: '%s': %s\n", cases[i].uuid, r < 0 ? why : "accepted");
                CHECK_EQ(r, cases[i].r);
                if (r == 0) {
                        /* the stored inventory says the same as the identity */
                        snprintf(want, sizeof(want), "\"uuid\":\"%s\"", cases[i].stored);
                        CHECK_STREQ(req.id.uuid, cases[i].stored);
                        CHECK(strstr(req.inventory.data, want) != NULL);
                }
                buf_free(&req.inventory);
        }
}

/* A profile never selects a machine by a UUID that is no identity, nor names one after it. */
TEST(uuid_profile_never_matches_no_identity)
{
        static const char *const hostile[] = { NIL, ALL_FF, "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
                                               "{00000000-0000-0000-0000-000000000000}", "0", "" };
        static const char *const patterns[] = { NIL, ALL_FF, "*", "0000*", "[0f]*" };
        struct profile p = { .name = "by-uuid", .hostname = "n-{uuid}" };
        char name[64];

        for (size_t k = 0; k < ARRAY_SIZE(patterns); k++) {
                str_copy(p.match.uuid[0], sizeof(p.match.uuid[0]), patterns[k]);
                p.match.n_uuid = 1;
                for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
                        struct profile_facts f = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, .uuid = hostile[i] };

                        if (profile_matches(&p.match, &f))
                                fprintf(stderr, "  '%s' matched '%s'\n", patterns[k], hostile[i]);
                        CHECK(!profile_matches(&p.match, &f));
                        profile_machine_name(&p, &f, name, sizeof(name));
                        CHECK_STREQ(name, "n-525400123456");
                }
        }
        struct profile_facts real = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 },
                                      .uuid = "8c1b5a2e-4c1e-4d5a-9f00-000000000a15" };
        str_copy(p.match.uuid[0], sizeof(p.match.uuid[0]), "*");
        CHECK(profile_matches(&p.match, &real));
        profile_machine_name(&p, &real, name, sizeof(name));
        CHECK_STREQ(name, "n-8c1b5a2e-4c1e-4d5a-9f00-000000000a15");
}

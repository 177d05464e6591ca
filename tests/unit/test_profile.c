/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/profile.h"
#include "metald/syntax.h"
#include "metald/util.h"
#include "test.h"

static struct profile prof(const char *name)
{
        struct profile p = { 0 };

        str_copy(p.name, sizeof(p.name), name);
        return p;
}

TEST(profile_most_specific_wins)
{
        struct profile ps[3] = { prof("default"), prof("qemu"), prof("one") };
        struct profile_facts f = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, .uuid = "8c1b5a2e-0000-0000-0000-000000000001",
                                   .vendor = "QEMU", .product = "Standard PC", .labels = "rack=r1" };
        const struct profile *got, *other;

        str_copy(ps[1].match.mac[0], sizeof(ps[1].match.mac[0]), "52:54:00:*");
        ps[1].match.n_mac = 1;
        str_copy(ps[1].match.vendor, sizeof(ps[1].match.vendor), "qemu");
        str_copy(ps[2].match.uuid[0], sizeof(ps[2].match.uuid[0]), "8C1B5A2E-0000-0000-0000-000000000001");
        ps[2].match.n_uuid = 1;
        CHECK_EQ(profile_choose(ps, 3, &f, &got, &other), PROFILE_ONE);
        CHECK_STREQ(got->name, "one");
        f.uuid = "other";
        CHECK_EQ(profile_choose(ps, 3, &f, &got, &other), PROFILE_ONE);
        CHECK_STREQ(got->name, "qemu");
        f.mac[0] = 0x3c;
        CHECK_EQ(profile_choose(ps, 3, &f, &got, &other), PROFILE_ONE);
        CHECK_STREQ(got->name, "default");
        CHECK_EQ(profile_choose(ps + 1, 2, &f, &got, &other), PROFILE_NONE);
}

TEST(profile_tie_is_reported)
{
        struct profile ps[2] = { prof("a"), prof("b") };
        struct profile_facts f = { .mac = { 0x52, 0x54, 0, 1, 2, 3 }, .vendor = "QEMU", .product = "PC" };
        const struct profile *got, *other;

        str_copy(ps[0].match.vendor, sizeof(ps[0].match.vendor), "QEMU");
        str_copy(ps[1].match.vendor, sizeof(ps[1].match.vendor), "Q*");
        CHECK_EQ(profile_choose(ps, 2, &f, &got, &other), PROFILE_TIE);
        CHECK_STREQ(got->name, "a");
        CHECK_STREQ(other->name, "b");
        /* a label makes b more specific */
        str_copy(ps[1].match.labels[0].key, sizeof(ps[1].match.labels[0].key), "role");
        str_copy(ps[1].match.labels[0].value, sizeof(ps[1].match.labels[0].value), "db");
        ps[1].match.n_labels = 1;
        f.labels = "rack=1,role=db";
        CHECK_EQ(profile_choose(ps, 2, &f, &got, &other), PROFILE_ONE);
        CHECK_STREQ(got->name, "b");
        f.labels = "role=dbx";
        CHECK_EQ(profile_choose(ps, 2, &f, &got, &other), PROFILE_ONE);
        CHECK_STREQ(got->name, "a");
}

TEST(profile_names_are_safe_labels)
{
        struct profile p = prof("x");
        struct profile_facts f = { .mac = { 0x52, 0x54, 0, 0xab, 0xcd, 0xef }, .serial = "S/N 42$;rm" };
        char name[64];

        profile_machine_name(NULL, &f, name, sizeof(name));
        CHECK_STREQ(name, "m-525400abcdef");
        str_copy(p.hostname, sizeof(p.hostname), "worker-{serial}");
        profile_machine_name(&p, &f, name, sizeof(name));
        CHECK_STREQ(name, "worker-s-n-42--rm");
        f.serial = "";
        profile_machine_name(&p, &f, name, sizeof(name));
        CHECK_STREQ(name, "worker-525400abcdef");
}

TEST(profile_labels_validation)
{
        CHECK_EQ(syntax_labels(""), 0);
        CHECK_EQ(syntax_labels("rack=r1,role=db"), 0);
        CHECK(syntax_labels("rack") < 0);
        CHECK(syntax_labels("=x") < 0);
        CHECK(syntax_labels("a=") < 0);
        CHECK(syntax_labels("a=b;c") < 0);
        CHECK(syntax_labels("a=b,") < 0);
        CHECK(syntax_labels(",a=b") < 0);
}

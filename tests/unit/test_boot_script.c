/* SPDX-License-Identifier: Apache-2.0 */
#include "../fuzz/ipxe_model.h"
#include "metald/boot_script.h"
#include "metald/syntax.h"
#include "metald/util.h"
#include "test.h"

static const char template_text[] =
        "#!ipxe\n"
        "echo metald: enrollment boot for {{mac}} ({{platform}} {{arch}})\n"
        "kernel {{kernel_url}} {{cmdline}} || goto failed\n"
        "initrd {{initrd_url}} || goto failed\n"
        "boot || goto failed\n"
        ":failed\n"
        "echo metald: retrying in {{retry_delay}} seconds\n"
        "sleep {{retry_delay}}\n"
        "chain --replace {{script_url}} || goto failed\n";

static const char good_query[] = "mac=52-54-00-12-34-56&uuid=4C4C4544-0042-3510-8051-B4C04F4B4E32"
                                 "&serial=ABC%20123&arch=x86_64&platform=efi";

static struct boot_view view(void)
{
        return (struct boot_view){
                .base_url = "http://10.0.0.1:8080",
                .script_url = "http://10.0.0.1:8080/boot.ipxe",
                .kernel = "enroll/vmlinuz",
                .initrd = "enroll/initrd.img",
                .cmdline = "console=ttyS0 quiet",
                .retry_delay_s = 30,
                .template_text = template_text,
        };
}

static int render(const struct boot_view *v, const char *q, struct buf *out, struct boot_outcome *o)
{
        buf_reset(out);
        return boot_script_for(v, q, strlen(q), NULL, NULL, out, o);
}

TEST(boot_identity_valid)
{
        static const char bare[] = "mac=52:54:00:12:34:56&uuid=&serial=&arch=i386&platform=pcbios";
        struct boot_identity id;
        const char *why = NULL;

        CHECK_EQ(boot_identity_parse(good_query, strlen(good_query), &id, &why), BOOT_QUERY_OK);
        CHECK(memcmp(id.mac, "\x52\x54\x00\x12\x34\x56", 6) == 0);
        CHECK_STREQ(id.uuid, "4c4c4544-0042-3510-8051-b4c04f4b4e32");
        CHECK_STREQ(id.serial, "ABC 123");
        CHECK_STREQ(id.arch, "x86_64");
        CHECK_STREQ(id.platform, "efi");
        /* what iPXE sends on a machine without SMBIOS UUID and serial */
        CHECK_EQ(boot_identity_parse(bare, strlen(bare), &id, &why), BOOT_QUERY_OK);
        CHECK_STREQ(id.uuid, "");
        CHECK_STREQ(id.serial, "");
        /* unrelated parameters are ignored */
        CHECK_EQ(boot_identity_parse("x=1", 3, &id, &why), BOOT_QUERY_NONE);
        CHECK_EQ(boot_identity_parse("", 0, &id, &why), BOOT_QUERY_NONE);
}

TEST(boot_identity_hostile)
{
        static const char encoded[] = "mac=%35%32-54-00-12-34-56&arch=x86_64&platform=efi";
        static const char *const bad[] = {
                "mac=",
                "mac=52-54-00-12-34&arch=x86_64&platform=efi",
                "mac=52-54-00-12-34-5G&arch=x86_64&platform=efi",
                "mac=52-54-00-12-34-56-78&arch=x86_64&platform=efi",
                "mac=${netX/mac}&arch=x86_64&platform=efi",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&mac=52-54-00-12-34-57",    /* duplicate */
                "mac=52-54-00-12-34-56&arch=x86_64&arch=x86_64&platform=efi",
                "mac=52-54-00-12-34-56&arch=x86_64",                                    /* no platform */
                "mac=52-54-00-12-34-56&arch=sparc&platform=efi",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi%20x",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=EFI",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=linux",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&uuid=4c4c4544004235108051b4c04f4b4e32",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&uuid=4c4c4544-0042-3510-8051-b4c04f4b4e3g",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&serial=%0Aecho%20pwned",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&serial=%C3%A9",       /* not ASCII */
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&serial=%FF%FE",       /* not UTF-8 either */
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&serial=%00",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&serial=%",
                /* a serial of 65 bytes, one over the limit */
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&serial=0123456789012345678901234567890123456789012345678901234567890123x",
                "mac=52-54-00-12-34-56&arch=x86_64&platform=efi&=x",
                "mac=%35%32-54-00-12-34-56%00&arch=x86_64&platform=efi",
        };
        struct boot_identity id;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                const char *why = NULL;
                enum boot_query_result r = boot_identity_parse(bad[i], strlen(bad[i]), &id, &why);

                if (r != BOOT_QUERY_INVALID)
                        fprintf(stderr, "  accepted: %s\n", bad[i]);
                CHECK_EQ(r, BOOT_QUERY_INVALID);
                CHECK(why && *why);
        }
        /* percent-encoding is decoded before validation, so this one is fine */
        CHECK_EQ(boot_identity_parse(encoded, strlen(encoded), &id, &(const char *){ 0 }), BOOT_QUERY_OK);
}

TEST(boot_escape_url_table)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "http://10.0.0.1:8080/boot.ipxe", "http://10.0.0.1:8080/boot.ipxe" },
                { "http://h/a b", "http://h/a%20b" },
                { "http://h/${x}", "http://h/%24%7Bx%7D" },
                { "http://h/a\\", "http://h/a%5C" },
                { "http://h/a\nb", "http://h/a%0Ab" },
                { "http://h/a\rb\tc", "http://h/a%0Db%09c" },
                { "http://h/\"q\"", "http://h/%22q%22" },
                { "http://h/a||b", "http://h/a%7C%7Cb" },
                { "http://h/\xc3\xa9", "http://h/%C3%A9" },
                { "#frag", "%23frag" },
                { "&&", "%26&" },
                { ";", "%3B" },
                { "a;b&&c#d", "a;b&&c#d" },             /* harmless inside a token */
        };
        struct buf b = BUF_INIT(4096);

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                buf_reset(&b);
                CHECK_EQ(boot_escape_url(&b, cases[i].in), 0);
                CHECK_STREQ(b.data, cases[i].out);
        }
        buf_reset(&b);
        CHECK_EQ(boot_escape_url(&b, ""), -EINVAL);
        buf_free(&b);
}

TEST(boot_escape_words_table)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "console=ttyS0 quiet", "console=ttyS0 quiet" },
                { "  a \t b\n\nc  ", "a b c" },
                { "a ${x} b", "a _{x} b" },
                { "$${}{x}", "__{}{x}" },
                { "a || reboot", "a __ reboot" },
                { "a && reboot", "a __ reboot" },
                { "a ; reboot", "a _ reboot" },
                { "a #comment", "a _comment" },
                { "a#b", "a#b" },
                { "trailing\\", "trailing_" },
                { "x\x01y\x7f\xff", "x_y__" },
                { "a=\"b c\"", "a=\"b c\"" },
                { "", "" },
                { " \n ", "" },
        };
        struct buf b = BUF_INIT(4096);

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                buf_reset(&b);
                CHECK_EQ(boot_escape_words(&b, cases[i].in), 0);
                CHECK_STREQ(b.data ? b.data : "", cases[i].out);
        }
        buf_free(&b);
}

TEST(boot_script_chain_golden)
{
        struct boot_view v = view();
        struct buf b = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct boot_outcome o;

        CHECK_EQ(render(&v, "", &b, &o), 0);
        CHECK_EQ(o.kind, BOOT_SCRIPT_CHAIN);
        CHECK_STREQ(b.data, "#!ipxe\n"
                            "# metald: ask again, telling which machine this is\n"
                            ":identify\n"
                            "chain --replace http://10.0.0.1:8080/boot.ipxe?mac=${netX/mac:hexhyp}&uuid=${uuid}"
                            "&serial=${serial:uristring}&arch=${buildarch}&platform=${platform} || goto failed\n"
                            ":failed\n"
                            "echo metald: the boot script could not be fetched; trying again in 30 seconds\n"
                            "sleep 30\n"
                            "goto identify\n");
        buf_free(&b);
}

TEST(boot_script_enroll_platforms)
{
        struct boot_view v = view();
        struct buf b = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct boot_outcome o;

        CHECK_EQ(render(&v, good_query, &b, &o), 0);
        CHECK_EQ(o.kind, BOOT_SCRIPT_ENROLL);
        CHECK(o.has_identity);
        CHECK(strstr(b.data, "\nkernel http://10.0.0.1:8080/enroll/vmlinuz initrd=initrd.img console=ttyS0 quiet "
                             "metald.url=http://10.0.0.1:8080 metald.mac=52:54:00:12:34:56 || goto failed\n"));
        CHECK(strstr(b.data, "\ninitrd http://10.0.0.1:8080/enroll/initrd.img || goto failed\n"));
        CHECK(strstr(b.data, "\nchain --replace http://10.0.0.1:8080/boot.ipxe || goto failed\n"));
        CHECK(strstr(b.data, "sleep 30\n"));
        CHECK(strstr(b.data, "(efi x86_64)"));

        CHECK_EQ(render(&v, "mac=52-54-00-12-34-56&arch=i386&platform=pcbios", &b, &o), 0);
        CHECK_EQ(o.kind, BOOT_SCRIPT_ENROLL);
        CHECK(strstr(b.data, "\nkernel http://10.0.0.1:8080/enroll/vmlinuz console=ttyS0 quiet "
                             "metald.url=http://10.0.0.1:8080 metald.mac=52:54:00:12:34:56 || goto failed\n"));
        CHECK(!strstr(b.data, "initrd=initrd.img"));

        v.cmdline = "";
        CHECK_EQ(render(&v, "mac=52-54-00-12-34-56&arch=i386&platform=pcbios", &b, &o), 0);
        CHECK(strstr(b.data, "\nkernel http://10.0.0.1:8080/enroll/vmlinuz metald.url=http://10.0.0.1:8080 "
                             "metald.mac=52:54:00:12:34:56 || goto failed\n"));
        CHECK_EQ(render(&v, good_query, &b, &o), 0);
        CHECK(strstr(b.data, "\nkernel http://10.0.0.1:8080/enroll/vmlinuz initrd=initrd.img "
                             "metald.url=http://10.0.0.1:8080 metald.mac=52:54:00:12:34:56 || goto failed\n"));
        buf_free(&b);
}

/* What `machine show` prints is the {{cmdline}} of the script, with the nonce masked. */
TEST(boot_cmdline_shown_is_the_scripts)
{
        static const char nonce[] = "Zm9vYmFyYmF6cXV1eDEyMw";
        static const char *const platforms[] = { "pcbios", "efi" };
        struct boot_view v = view();
        struct buf script = BUF_INIT(BOOT_MAX_SCRIPT_BYTES), shown = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct boot_identity id = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 } };
        char want[1024];
        const char *why = NULL;

        v.template_text = "#!ipxe\nkernel {{cmdline}}\n";
        v.cmdline = "console=ttyS0,115200n8  quiet $x";
        for (size_t i = 0; i < ARRAY_SIZE(platforms); i++) {
                const char *line, *at;

                str_copy(id.platform, sizeof(id.platform), platforms[i]);
                v.nonce = nonce;
                buf_reset(&script);
                buf_reset(&shown);
                CHECK_EQ(boot_script_enroll(&v, &id, &script, &why), 0);
                CHECK_EQ(boot_cmdline_shown(&v, &id, &shown), 0);
                CHECK(!strstr(shown.data, nonce));
                line = script.data + strlen("#!ipxe\nkernel ");
                at = strstr(line, nonce);
                CHECK(at != NULL);
                /* the script's line, its nonce masked and without its newline */
                snprintf(want, sizeof(want), "%.*s%s%.*s", (int)(at - line), line, BOOT_NONCE_SHOWN,
                         (int)strlen(at + strlen(nonce)) - 1, at + strlen(nonce));
                CHECK_STREQ(shown.data, want);
                /* with or without a nonce in the view, the mask is there */
                v.nonce = NULL;
                buf_reset(&shown);
                CHECK_EQ(boot_cmdline_shown(&v, &id, &shown), 0);
                CHECK_STREQ(shown.data, want);
        }
        CHECK_STREQ(shown.data, "initrd=initrd.img console=ttyS0,115200n8 quiet _x metald.url=http://10.0.0.1:8080 "
                                "metald.mac=52:54:00:12:34:56 metald.nonce=" BOOT_NONCE_SHOWN);
        buf_free(&script);
        buf_free(&shown);
}

TEST(boot_script_retry_outcomes)
{
        static const struct {
                const char *query, *unavailable, *template_text, *why;
        } cases[] = {
                { "mac=zz", NULL, template_text, "the mac parameter is not six hex pairs" },
                { "mac=1&mac=2", NULL, template_text, "an identity parameter appears more than once" },
                { "mac=%", NULL, template_text, "the boot script URL has a malformed query" },
                { good_query, "no enrollment kernel and initrd are configured", template_text,
                  "no enrollment kernel and initrd are configured" },
                { good_query, NULL, NULL, "the enrollment template lacks the iPXE script signature" },
                { good_query, NULL, "#!ipxe", "the enrollment template lacks the iPXE script signature" },
                { good_query, NULL, "kernel x\n", "the enrollment template lacks the iPXE script signature" },
                { good_query, NULL, "#!ipxe\necho {{nonce}}\n",
                  "the enrollment template has an unknown or unterminated placeholder" },
                { good_query, NULL, "#!ipxe\necho {{mac\n", "the enrollment template has an unknown or unterminated placeholder" },
        };
        struct buf b = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct boot_outcome o;

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct boot_view v = view();
                char expect[256];

                v.unavailable = cases[i].unavailable;
                v.template_text = cases[i].template_text;
                CHECK_EQ(render(&v, cases[i].query, &b, &o), 0);
                CHECK_EQ(o.kind, BOOT_SCRIPT_RETRY);
                CHECK_STREQ(o.why, cases[i].why);
                snprintf(expect, sizeof(expect), "#!ipxe\n:retry\necho metald: this machine cannot be booted yet: %s\n"
                                                 "echo metald: trying again in 30 seconds\nsleep 30\n"
                                                 "chain --replace http://10.0.0.1:8080/boot.ipxe || goto retry\n",
                         cases[i].why);
                CHECK_STREQ(b.data, expect);
        }
        buf_free(&b);
}

/* The skeleton iPXE would see, and how many expansions. */
static void skeleton(const struct buf *script, bool count_args, struct buf *out, size_t *expansions)
{
        buf_reset(out);
        if (ipxe_model_skeleton(script->data, script->len, count_args, out, expansions) < 0)
                abort();
}

TEST(boot_script_hostile_values)
{
        static const char *const hostile[] = {
                "${netX/ip}", "${", "}", "$", "a b", " ", "\n", "\r\n", "x\nreboot", "#", "#x", "||", "&&", ";",
                "\\", "x\\", "\"", "'", "\xff\xfe", "%00", "a\tb", "\v\f", "${a${b}c}", "$${}{x}",
        };
        struct buf good = BUF_INIT(BOOT_MAX_SCRIPT_BYTES), bad = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct buf skel_good = BUF_INIT(1 << 20), skel_bad = BUF_INIT(1 << 20);
        struct boot_view v = view();
        struct boot_outcome o;
        size_t exp_good, exp_bad;

        CHECK_EQ(render(&v, good_query, &good, &o), 0);
        for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
                for (int field = 0; field < 5; field++) {
                        char value[64];
                        struct boot_view h = view();

                        /* hostile text glued to plausible values, so every field stays non-empty */
                        snprintf(value, sizeof(value), "%s%s", field == 3 ? "" : "x", hostile[i]);
                        if (field == 0)
                                h.base_url = value;
                        else if (field == 1)
                                h.kernel = value;
                        else if (field == 2)
                                h.initrd = value;
                        else if (field == 3)
                                h.cmdline = value;
                        else
                                h.script_url = value;
                        CHECK_EQ(render(&h, good_query, &bad, &o), 0);
                        CHECK_EQ(o.kind, BOOT_SCRIPT_ENROLL);
                        CHECK(!memchr(bad.data, '\0', bad.len) && !strchr(bad.data, '\r'));
                        /* words may come and go in a command line, but nothing else may change */
                        skeleton(&good, field != 3, &skel_good, &exp_good);
                        skeleton(&bad, field != 3, &skel_bad, &exp_bad);
                        CHECK_EQ(exp_good, 0);
                        CHECK_EQ(exp_bad, 0);
                        if (strcmp(skel_bad.data, skel_good.data) != 0)
                                fprintf(stderr, "  field %d value '%s':\n%s", field, hostile[i], bad.data);
                        CHECK_STREQ(skel_bad.data, skel_good.data);
                }
        }
        buf_free(&good);
        buf_free(&bad);
        buf_free(&skel_good);
        buf_free(&skel_bad);
}

TEST(boot_script_caps)
{
        struct boot_view v = view();
        struct buf tiny = BUF_INIT(64);
        struct boot_outcome o;
        char long_cmdline[BOOT_MAX_SCRIPT_BYTES];

        CHECK_EQ(render(&v, good_query, &tiny, &o), -E2BIG);
        buf_free(&tiny);
        /* an over-long rendering falls back to the retry script */
        memset(long_cmdline, 'a', sizeof(long_cmdline) - 1);
        long_cmdline[sizeof(long_cmdline) - 1] = '\0';
        v.cmdline = long_cmdline;
        tiny = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        CHECK_EQ(render(&v, good_query, &tiny, &o), 0);
        CHECK_EQ(o.kind, BOOT_SCRIPT_RETRY);
        CHECK_STREQ(o.why, "the rendered enrollment script is too large");
        /* a value that would render as an empty token */
        v = view();
        v.initrd = "enroll/";
        v.template_text = "#!ipxe\ninitrd --name {{initrd_name}} {{initrd_url}}\n";
        CHECK_EQ(render(&v, good_query, &tiny, &o), 0);
        CHECK_EQ(o.kind, BOOT_SCRIPT_RETRY);
        CHECK_STREQ(o.why, "the enrollment settings leave a value of the template empty");
        buf_free(&tiny);
}

TEST(boot_config_checks)
{
        static const char *const good_paths[] = { "vmlinuz", "enroll/initrd.img", "a-b_c+d~e.f/g" };
        static const char *const bad_paths[] = { "", "/abs", "dir/", "a//b", "../x", "a/../b", "./a", "a b",
                                                 "a$b", "a%20", "a\\b", "\xc3\xa9" };
        static const char *const good_cmdlines[] = { "", "console=ttyS0,115200n8 quiet", "a=\"b c\" x#y {z}" };
        static const char *const bad_cmdlines[] = { "a ${x}", "a $b", "a\\", "a\tb", "a\nb", "a || b", "&&", ";",
                                                    "#c", "a \xc3\xa9" };
        const char *why;

        for (size_t i = 0; i < ARRAY_SIZE(good_paths); i++)
                CHECK_EQ(syntax_artifact_path(good_paths[i]), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad_paths); i++)
                CHECK_EQ(syntax_artifact_path(bad_paths[i]), -EINVAL);
        for (size_t i = 0; i < ARRAY_SIZE(good_cmdlines); i++) {
                struct buf b = BUF_INIT(4096);

                CHECK_EQ(syntax_cmdline(good_cmdlines[i], &why), 0);
                /* what the configuration accepts, the renderer passes through unchanged */
                CHECK_EQ(boot_escape_words(&b, good_cmdlines[i]), 0);
                CHECK_STREQ(b.data ? b.data : "", good_cmdlines[i]);
                buf_free(&b);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad_cmdlines); i++) {
                why = NULL;
                CHECK_EQ(syntax_cmdline(bad_cmdlines[i], &why), -EINVAL);
                CHECK(why != NULL);
        }
}

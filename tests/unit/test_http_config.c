/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/config.h"
#include "metald/util.h"
#include "test.h"

static int load(const char *yaml, struct config **c, char *err, size_t n)
{
        return config_load_string(yaml, "metald.yaml", c, err, n);
}

TEST(http_config_defaults)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(load("tftp: { root: /srv/pxe }\n", &c, err, sizeof(err)), 0);
        CHECK_STREQ(c->http.root, "/srv/pxe");          /* the TFTP root unless set */
        CHECK_EQ(c->http.port, 8080);
        CHECK_EQ(c->http.threads, 0);
        CHECK_EQ(c->http.max_connections, HTTP_DEFAULT_MAX_CONNECTIONS);
        CHECK_EQ(c->http.max_per_client, HTTP_DEFAULT_MAX_PER_CLIENT);
        CHECK_EQ(c->http.idle_timeout_s, HTTP_DEFAULT_IDLE_TIMEOUT_S);
        CHECK_EQ(c->http.max_header_bytes, HTTP_DEFAULT_HEADER_BYTES);
        CHECK_EQ(c->boot.retry_delay_s, 30);
        CHECK_STREQ(c->boot.enroll.kernel, "");
        CHECK_STREQ(c->boot.enroll.tmpl, "enroll.ipxe.tmpl");
        config_free(c);
}

TEST(http_config_values)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(load("http:\n"
                      "  root: /srv/http\n"
                      "  threads: 4\n"
                      "  max_connections: 2000\n"
                      "  max_per_client: 4\n"
                      "  idle_timeout: 2m\n"
                      "  max_header_bytes: 8192\n"
                      "boot:\n"
                      "  retry_delay: 10s\n"
                      "  enroll:\n"
                      "    kernel: enroll/vmlinuz\n"
                      "    initrd: enroll/initrd.img\n"
                      "    cmdline: console=ttyS0,115200 quiet\n"
                      "    template: custom.tmpl\n",
                      &c, err, sizeof(err)), 0);
        CHECK_STREQ(c->http.root, "/srv/http");
        CHECK_EQ(c->http.threads, 4);
        CHECK_EQ(c->http.max_connections, 2000);
        CHECK_EQ(c->http.max_per_client, 4);
        CHECK_EQ(c->http.idle_timeout_s, 120);
        CHECK_EQ(c->http.max_header_bytes, 8192);
        CHECK_EQ(c->boot.retry_delay_s, 10);
        CHECK_STREQ(c->boot.enroll.kernel, "enroll/vmlinuz");
        CHECK_STREQ(c->boot.enroll.initrd, "enroll/initrd.img");
        CHECK_STREQ(c->boot.enroll.cmdline, "console=ttyS0,115200 quiet");
        CHECK_STREQ(c->boot.enroll.tmpl, "custom.tmpl");
        CHECK_STREQ(c->tftp.root, "pxe");               /* an explicit http.root leaves tftp alone */
        config_free(c);
}

TEST(http_config_errors)
{
        static const struct { const char *yaml, *expect; } cases[] = {
                { "http:\n  threads: 65\n", "metald.yaml:2: http.threads: '65' is not an integer between 0 and 64" },
                { "http:\n  max_header_bytes: 100\n", "http.max_header_bytes: '100' is not an integer between 4096" },
                { "http:\n  idle_timeout: 0s\n", "http.idle_timeout: '0s' is out of range" },
                { "http:\n  max_per_client: 0\n", "http.max_per_client: '0' is not an integer between 1" },
                { "http:\n  roots: /x\n", "metald.yaml:2: http.roots: unknown key" },
                { "boot:\n  retry_delay: 2h\n", "boot.retry_delay: '2h' is out of range" },
                { "boot:\n  enroll:\n    kernel: /boot/vmlinuz\n",
                  "metald.yaml:3: boot.enroll.kernel: '/boot/vmlinuz' is not a relative path" },
                { "boot:\n  enroll:\n    initrd: ../initrd\n", "boot.enroll.initrd: '../initrd' is not a relative path" },
                { "boot:\n  enroll:\n    template: \"a b\"\n", "boot.enroll.template: 'a b' is not a relative path" },
                { "boot:\n  enroll:\n    cmdline: \"root=${x}\"\n",
                  "metald.yaml:3: boot.enroll.cmdline: '$' and '\\' are not allowed" },
                { "boot:\n  enroll:\n    cmdline: \"a || reboot\"\n", "boot.enroll.cmdline: a word '||'" },
                { "boot:\n  enroll:\n    cmdline: \"a\\nb\"\n", "boot.enroll.cmdline: only printable ASCII" },
                { "boot:\n  enroll:\n    kernels: x\n", "metald.yaml:3: boot.enroll.kernels: unknown key" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct config *c = NULL;
                char err[512] = "";
                int r = load(cases[i].yaml, &c, err, sizeof(err));

                if (!strstr(err, cases[i].expect))
                        fprintf(stderr, "  case %zu: %s\n", i, err);
                CHECK_EQ(r, -EINVAL);
                CHECK(strstr(err, cases[i].expect) != NULL);
                CHECK(c == NULL);
        }
}

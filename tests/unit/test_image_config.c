/* SPDX-License-Identifier: Apache-2.0 */
/* The images section and the image keys of profiles in metald.yaml. */
#include <stdio.h>
#include <stdlib.h>

#include "metald/config.h"
#include "metald/image.h"
#include "test.h"

static int load(const char *text, struct config **ret, char *err, size_t errlen)
{
        return config_load_string(text, "metald.yaml", ret, err, errlen);
}

TEST(config_images_section)
{
        char prefix[512], yaml[4096], err[1024], id[MANIFEST_KEY_ID_HEX + 1], why[256];
        struct config *c = NULL;

        snprintf(prefix, sizeof(prefix), "%s/site", test_tmpdir());
        CHECK(image_keygen(prefix, id, why, sizeof(why)) == 0);
        snprintf(yaml, sizeof(yaml),
                 "images:\n  trusted_keys: [%s.pub]\n  revoked_keys: [%s.pub]\n  max_concurrent_installs: 8\n"
                 "  require_signed: true\n"
                 "profiles:\n"
                 "  - { name: a, image: deb, image_version: 7, install: { mode: image, disk_serial: S3EV-01 } }\n"
                 "  - { name: b, match: { mac: '52:*' }, image: deb, install: { mode: diskless } }\n"
                 "  - { name: c, match: { mac: '53:*' }, install: { disk_path: /dev/disk/by-path/pci-0000:00:1f.2-ata-1,"
                 " allow_removable: true } }\n",
                 prefix, prefix);
        CHECK(load(yaml, &c, err, sizeof(err)) == 0);
        CHECK_EQ(c->images.n_trusted_keys, 1);
        CHECK_EQ(c->images.n_revoked_keys, 1);
        CHECK_EQ(c->images.max_concurrent_installs, 8);
        CHECK(c->images.require_signed);
        CHECK_EQ(c->profiles[0].image_version, 7);
        CHECK_STREQ(c->profiles[0].install_mode, "install");
        CHECK_STREQ(c->profiles[0].disk_serial, "S3EV-01");
        CHECK_STREQ(c->profiles[0].disk, "");
        CHECK_STREQ(c->profiles[1].install_mode, "diskless");
        CHECK_STREQ(c->profiles[1].disk, "largest");
        CHECK_STREQ(c->profiles[2].disk_path, "/dev/disk/by-path/pci-0000:00:1f.2-ata-1");
        CHECK(c->profiles[2].allow_removable);
        config_free(c);
        CHECK(load("state_dir: /x\n", &c, err, sizeof(err)) == 0);
        CHECK_EQ(c->images.max_concurrent_installs, IMAGE_DEFAULT_MAX_INSTALLS);
        CHECK(!c->images.require_signed);
        config_free(c);
}

TEST(config_images_refusals)
{
        static const struct {
                const char *yaml, *err;
        } cases[] = {
                { "images: { trusted_keys: [/nonexistent.pub] }\n", "images.trusted_keys[0]: '/nonexistent.pub' is not a readable PEM" },
                { "images: { trusted_keys: /x.pub }\n", "images.trusted_keys: expected" },
                { "images: { max_concurrent_installs: 0 }\n", "images.max_concurrent_installs" },
                { "images: { require_signed: true }\n", "needs images.trusted_keys" },
                { "images: { colour: blue }\n", "images.colour: unknown key" },
                { "profiles:\n  - { name: a, image_version: 3 }\n", "image_version: needs an image" },
                { "profiles:\n  - { name: a, image: d, image_version: 0 }\n", "is not a version" },
                { "profiles:\n  - { name: a, install: { mode: netboot } }\n", "not a known install mode (install, diskless)" },
                { "profiles:\n  - { name: a, install: { disk: sda, disk_serial: X1 } }\n", "exclude each other" },
                { "profiles:\n  - { name: a, install: { disk_path: /dev/sda } }\n", "not a path below /dev/disk/by-path/" },
                { "profiles:\n  - { name: a, install: { disk_path: /dev/disk/by-id/../../sda } }\n", "not a path below" },
                { "profiles:\n  - { name: a, install: { disk_serial: 'a b' } }\n", "not a disk serial" },
                { "profiles:\n  - { name: a, install: { allow_removable: maybe } }\n", "not a boolean" },
        };
        char err[1024];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct config *c = NULL;

                err[0] = '\0';
                CHECK(load(cases[i].yaml, &c, err, sizeof(err)) == -EINVAL);
                if (!strstr(err, cases[i].err))
                        fprintf(stderr, "  case %zu: %s\n", i, err);
                CHECK(strstr(err, cases[i].err) != NULL);
        }
}

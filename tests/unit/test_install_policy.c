/* SPDX-License-Identifier: Apache-2.0 */
/* The install instruction: the catalog looked up, the queue of max_concurrent_installs, the manifest route. */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "metald/api.h"
#include "metald/image.h"
#include "metald/registry.h"
#include "metald/util.h"
#include "test.h"

#define MIB (1024 * 1024)
#define BASE "http://10.0.0.1:8080"

struct fx {
        struct config cfg;
        struct profile profile;
        struct registry *reg;
        struct image_signer *signer;
        struct image_keyring kr;
        int64_t now;
        char dir[256], db[CONFIG_MAX_PATH_BYTES + 8];
};

static struct fx F;

static int write_file(const char *dir, const char *name, off_t size, const void *data, size_t n, off_t at)
{
        char p[512];
        int fd, r = 0;

        snprintf(p, sizeof(p), "%s/%s", dir, name);
        if ((fd = open(p, O_WRONLY | O_CREAT, 0644)) < 0)
                return -errno;
        if ((size && ftruncate(fd, size) < 0) || pwrite(fd, data, n, at) != (ssize_t)n)
                r = -EIO;
        close(fd);
        return r;
}

/* Builds and imports debian-worker:version, expiring expires_in seconds after F.now. */
static int import_image(uint64_t version, int64_t expires_in)
{
        static const uint8_t block[8192] = { 1, 2, 3, 4, 5 };
        struct image_build_spec spec = { .name = "debian-worker", .version = version, .arch = "x86_64",
                                         .chunk_size = 64 * 1024, .compression = MANIFEST_COMPRESS_ZSTD,
                                         .created = F.now - 60, .expires = F.now + expires_in };
        char src[300], img[300], state[300], why[512];
        struct image_info info;

        snprintf(src, sizeof(src), "%s/src-%llu", F.dir, (unsigned long long)version);
        snprintf(img, sizeof(img), "%s/img-%llu", F.dir, (unsigned long long)version);
        snprintf(state, sizeof(state), "%s/state", F.dir);
        if (mkdir(src, 0755) < 0 || write_file(src, "kernel", 0, "kernel", 6, 0) < 0 ||
            write_file(src, "initrd", 0, "initrd", 6, 0) < 0 ||
            write_file(src, "disk", 8 * MIB, block, sizeof(block), MIB) < 0)
                return -1;
        spec.src = src;
        spec.out = img;
        if (image_build(&spec, F.signer, why, sizeof(why)) < 0 ||
            image_import(state, img, &F.kr, F.now, false, &info, why, sizeof(why)) < 0) {
                fprintf(stderr, "  %s\n", why);
                return -1;
        }
        return 0;
}

static int setup(unsigned max_installs)
{
        char prefix[300], id[MANIFEST_KEY_ID_HEX + 1], pub[320], why[256];

        memset(&F, 0, sizeof(F));
        F.now = time(NULL);
        snprintf(F.dir, sizeof(F.dir), "%s", test_tmpdir());
        F.cfg.lifecycle = (struct lifecycle_config){
                .timeouts = { .enroll_s = 1800, .agent_s = 300, .imaging_s = 7200, .imaged_s = 1800, .join_s = 1800 },
                .nonce_ttl_s = 1800, .heartbeat_s = 10,
        };
        snprintf(F.cfg.state_dir, sizeof(F.cfg.state_dir), "%s/state", F.dir);
        if (mkdir(F.cfg.state_dir, 0755) < 0)
                return -1;
        F.cfg.images.max_concurrent_installs = max_installs;
        str_copy(F.profile.name, sizeof(F.profile.name), "workers");
        str_copy(F.profile.match.vendor, sizeof(F.profile.match.vendor), "QEMU");
        str_copy(F.profile.image, sizeof(F.profile.image), "debian-worker");
        str_copy(F.profile.install_mode, sizeof(F.profile.install_mode), "install");
        str_copy(F.profile.disk, sizeof(F.profile.disk), "sda");
        F.profile.approval = PROFILE_APPROVE_AUTO;
        F.cfg.profiles = &F.profile;
        F.cfg.n_profiles = 1;
        snprintf(prefix, sizeof(prefix), "%s/site", F.dir);
        snprintf(pub, sizeof(pub), "%s.pub", prefix);
        snprintf(F.db, sizeof(F.db), "%s/r.db", F.cfg.state_dir);
        if (image_keygen(prefix, id, why, sizeof(why)) < 0 || image_keyring_add(&F.kr, pub, false, why, sizeof(why)) < 0)
                return -1;
        snprintf(prefix + strlen(prefix), sizeof(prefix) - strlen(prefix), ".key");
        if (image_signer_load(prefix, &F.signer, why, sizeof(why)) < 0 || registry_open(F.db, &F.cfg, &F.reg) < 0)
                return -1;
        return registry_set_enroll_boot(F.reg, BASE, "_metald/enroll/initrd");
}

static void teardown(void)
{
        registry_close(F.reg);
        image_signer_free(F.signer);
        F.reg = NULL;
        F.signer = NULL;
}

/* Boots and registers machine `last` at now; an auto profile approves it. */
static int enroll(uint8_t last, int64_t now, struct agent_reply *rep)
{
        struct boot_contact c = { .mac = { 0x52, 0x54, 0, 0, 1, last }, .ip = 0x0a000064 };
        struct agent_identity id = { .serial = "S1", .vendor = "QEMU", .product = "Standard PC" };
        struct registry_boot b;

        snprintf(id.uuid, sizeof(id.uuid), "8c1b5a2e-4c1e-4d5a-9f00-0000000001%02x", last);
        if (registry_boot(F.reg, &c, now, &b) < 0)
                return -1;
        registry_register(F.reg, b.nonce, c.mac, &id, "{}", c.ip, now, rep);
        return rep->status == 200 ? 0 : -1;
}

static json_object *status_machine(const char *name)
{
        struct buf out = BUF_INIT(1 << 20);
        json_object *o, *list, *found = NULL;

        if (registry_status_json(F.reg, F.now, &out) < 0 || !(o = json_tokener_parse(out.data))) {
                buf_free(&out);
                return NULL;
        }
        buf_free(&out);
        list = json_object_object_get(o, "machines");
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *m = json_object_array_get_idx(list, i);

                if (strcmp(json_object_get_string(json_object_object_get(m, "name")), name) == 0)
                        found = json_object_get(m);
        }
        json_object_put(o);
        return found;
}

static const char *jstr(json_object *o, const char *k)
{
        json_object *v;

        return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

TEST(install_waits_for_an_image_not_imported)
{
        struct agent_reply rep;
        json_object *m;

        CHECK_EQ(setup(2), 0);
        CHECK_EQ(enroll(1, F.now, &rep), 0);
        CHECK_EQ(rep.m.state, MS_APPROVED);
        CHECK_EQ(rep.instruction.action, INS_WAIT);
        CHECK_STREQ(rep.instruction.reason, "image debian-worker is not imported (metald image import)");
        /* and metald status says the same */
        m = status_machine(rep.m.name);
        CHECK(m);
        CHECK_STREQ(jstr(m, "waiting_for"), "image debian-worker is not imported (metald image import)");
        json_object_put(m);
        /* a pinned version names it */
        F.profile.image_version = 3;
        registry_instruction(F.reg, rep.m.id, F.now + IMAGE_CATALOG_CACHE_S, &rep);
        CHECK_STREQ(rep.instruction.reason, "image debian-worker:3 is not imported (metald image import)");
        teardown();
}

/* The manifest's digest as the catalog holds it. */
static int manifest_hex_of(uint64_t version, char hex[2 * MANIFEST_SHA256_BYTES + 1], uint8_t **ret, size_t *ret_len)
{
        uint8_t sha[MANIFEST_SHA256_BYTES];

        if (image_read_file(F.cfg.state_dir, "debian-worker", version, IMAGE_MANIFEST_FILE, IMAGE_MAX_MANIFEST_BYTES,
                            ret, ret_len) < 0 || manifest_sha256(*ret, *ret_len, sha) < 0)
                return -1;
        manifest_hex(sha, sizeof(sha), hex);
        return 0;
}

static int agent_call(const char *method, const char *path, const char *session, struct api_response *resp)
{
        char auth[128];
        struct api_request req = { .method = method, .path = path, .body = "", .authorization = auth };

        snprintf(auth, sizeof(auth), "Bearer %s", session);
        api_response_init(resp);
        return agent_api_handle(F.reg, &req, F.now, resp);
}

TEST(install_instruction_has_exactly_the_contract_fields)
{
        static const char *const keys[] = { "name", "version", "sha256", "size", "url", "disk", "allow_removable",
                                             "hostname" };
        struct agent_reply rep;
        struct api_response resp;
        struct image_info info;
        struct manifest man;
        json_object *o, *ins, *im;
        char hex[2 * MANIFEST_SHA256_BYTES + 1], why[256];
        uint8_t *bytes = NULL;
        size_t len = 0, n = 0;

        CHECK_EQ(setup(2), 0);
        CHECK_EQ(import_image(1, 86400), 0);
        CHECK_EQ(import_image(2, 86400), 0);
        F.profile.allow_removable = true;
        CHECK_EQ(enroll(2, F.now, &rep), 0);
        CHECK_EQ(rep.instruction.action, INS_INSTALL);
        CHECK_EQ(manifest_hex_of(2, hex, &bytes, &len), 0);             /* the newest */
        free(bytes);
        CHECK_EQ(image_show(F.cfg.state_dir, "debian-worker", 2, &info, &man, why, sizeof(why)), 0);
        CHECK_EQ(agent_call("GET", "/v1/agent/instruction", rep.session, &resp), 0);
        CHECK_EQ(resp.status, 200);
        o = json_tokener_parse(resp.body.data);
        api_response_free(&resp);
        CHECK(o);
        CHECK(json_object_object_get_ex(o, "instruction", &ins));
        CHECK_STREQ(jstr(ins, "action"), "install");
        CHECK(json_object_object_get_ex(ins, "image", &im));
        json_object_object_foreach(im, k, v) {
                bool known = false;

                (void)v;
                for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                        known |= strcmp(k, keys[i]) == 0;
                CHECK(known);
                n++;
        }
        CHECK_EQ(n, ARRAY_SIZE(keys));
        CHECK_STREQ(jstr(im, "name"), "debian-worker");
        CHECK_EQ(json_object_get_int64(json_object_object_get(im, "version")), 2);
        CHECK_STREQ(jstr(im, "sha256"), hex);
        CHECK_EQ(json_object_get_int64(json_object_object_get(im, "size")), (int64_t)man.artifacts[MANIFEST_DISK].size);
        CHECK_STREQ(jstr(im, "url"), BASE "/_metald/images/debian-worker/2");
        CHECK_STREQ(jstr(im, "disk"), "sda");
        CHECK(json_object_get_boolean(json_object_object_get(im, "allow_removable")));
        CHECK_STREQ(jstr(im, "hostname"), rep.m.name);
        json_object_put(o);
        manifest_free(&man);
        /* a pinned version is what is installed, and the disk rule follows the profile */
        F.profile.image_version = 1;
        F.profile.allow_removable = false;
        str_copy(F.profile.disk_serial, sizeof(F.profile.disk_serial), "QM00001");
        CHECK_EQ(enroll(3, F.now, &rep), 0);
        CHECK_EQ(rep.instruction.action, INS_INSTALL);
        CHECK_EQ(rep.instruction.image.version, 1);
        CHECK_STREQ(rep.instruction.image.disk, "serial=QM00001");
        CHECK(!rep.instruction.image.allow_removable);
        F.profile.disk_serial[0] = '\0';
        str_copy(F.profile.disk_path, sizeof(F.profile.disk_path), "/dev/disk/by-path/pci-0000:00:1f.2-ata-1");
        CHECK_EQ(enroll(4, F.now, &rep), 0);    /* the third: max 2 reached */
        CHECK_EQ(rep.instruction.action, INS_WAIT);
        CHECK_STREQ(rep.instruction.reason, "queued for install: position 1 of 1");
        teardown();
}

TEST(install_queue_holds_max_concurrent_installs)
{
        struct agent_reply rep[6], r;
        struct store_machine sm;
        int64_t id[6];
        char sess[2][SECRET_MAX_TEXT], want[64], err[256];
        json_object *m;

        CHECK_EQ(setup(2), 0);
        CHECK_EQ(import_image(1, 86400), 0);
        /* approved one second apart: the queue's order */
        for (int i = 0; i < 6; i++) {
                CHECK_EQ(enroll((uint8_t)(10 + i), F.now + i, &rep[i]), 0);
                id[i] = rep[i].m.id;
        }
        F.now += 10;
        CHECK_EQ(rep[0].instruction.action, INS_INSTALL);
        CHECK_EQ(rep[1].instruction.action, INS_INSTALL);
        str_copy(sess[0], sizeof(sess[0]), rep[0].session);
        str_copy(sess[1], sizeof(sess[1]), rep[1].session);
        for (int i = 2; i < 6; i++) {
                registry_heartbeat(F.reg, id[i], -1, "", 0, F.now, &r);
                CHECK_EQ(r.instruction.action, INS_WAIT);
                snprintf(want, sizeof(want), "queued for install: position %d of 4", i - 1);
                CHECK_STREQ(r.instruction.reason, want);
        }
        /* told twice is still one slot each, and the status agrees */
        registry_heartbeat(F.reg, id[1], -1, "", 0, F.now, &r);
        CHECK_EQ(r.instruction.action, INS_INSTALL);
        m = status_machine(rep[5].m.name);
        CHECK(m);
        CHECK_STREQ(jstr(m, "waiting_for"), "queued for install: position 4 of 4");
        json_object_put(m);
        /* both start; one finishes, and with no cluster it is ready at once */
        registry_agent_event(F.reg, id[0], "install-started", "sda", 0, F.now, &r);
        CHECK_EQ(r.m.state, MS_IMAGING);
        registry_agent_event(F.reg, id[1], "install-started", "sda", 0, F.now, &r);
        registry_heartbeat(F.reg, id[2], -1, "", 0, F.now, &r);
        CHECK_STREQ(r.instruction.reason, "queued for install: position 1 of 4");
        registry_agent_event(F.reg, id[0], "install-succeeded", "verified", 100, F.now + 1, &r);
        CHECK_EQ(r.status, 200);
        CHECK_EQ(r.m.state, MS_READY);
        CHECK_STREQ(r.m.last_event, "no-cluster");
        CHECK_EQ(r.instruction.action, INS_REBOOT);
        registry_heartbeat(F.reg, id[2], -1, "", 0, F.now + 2, &r);
        CHECK_EQ(r.instruction.action, INS_INSTALL);
        registry_heartbeat(F.reg, id[3], -1, "", 0, F.now + 2, &r);
        CHECK_STREQ(r.instruction.reason, "queued for install: position 1 of 3");
        /* a failure frees its slot too, with the agent's reason */
        registry_agent_event(F.reg, id[1], "install-failed", "chunk 3: digest mismatch", -1, F.now + 3, &r);
        CHECK_EQ(r.m.state, MS_FAILED);
        CHECK_STREQ(r.m.reason, "chunk 3: digest mismatch");
        registry_heartbeat(F.reg, id[3], -1, "", 0, F.now + 3, &r);
        CHECK_EQ(r.instruction.action, INS_INSTALL);
        /* a machine that leaves frees its slot */
        CHECK_EQ(registry_admin(F.reg, ADMIN_RETIRE, rep[2].m.name, NULL, F.now + 4, &sm, err, sizeof(err)), 0);
        registry_heartbeat(F.reg, id[4], -1, "", 0, F.now + 4, &r);
        CHECK_EQ(r.instruction.action, INS_INSTALL);
        registry_heartbeat(F.reg, id[5], -1, "", 0, F.now + 4, &r);
        CHECK_STREQ(r.instruction.reason, "queued for install: position 1 of 1");
        /* one told to install that never starts holds its slot only for the grace, then queues by its age again */
        F.now += 5 + IMAGE_INSTALL_GRACE_S;
        registry_heartbeat(F.reg, id[5], -1, "", 0, F.now, &r);
        CHECK_STREQ(r.instruction.reason, "queued for install: position 1 of 1");
        registry_agent_event(F.reg, id[3], "install-started", "sda", 0, F.now, &r);
        CHECK_EQ(r.m.state, MS_IMAGING);
        registry_heartbeat(F.reg, id[5], -1, "", 0, F.now, &r);
        CHECK_STREQ(r.instruction.reason, "queued for install: position 1 of 1");
        registry_heartbeat(F.reg, id[4], -1, "", 0, F.now, &r);
        CHECK_EQ(r.instruction.action, INS_INSTALL);
        registry_heartbeat(F.reg, id[5], -1, "", 0, F.now, &r);
        CHECK_STREQ(r.instruction.reason, "queued for install: position 1 of 1");
        teardown();
}

TEST(install_manifest_route_needs_the_session_and_an_assignment)
{
        struct agent_reply a, b, r;
        struct api_response resp;
        char hex[2 * MANIFEST_SHA256_BYTES + 1];
        uint8_t *bytes = NULL, *sig = NULL;
        size_t len = 0, sig_len = 0;

        CHECK_EQ(setup(1), 0);
        CHECK_EQ(import_image(1, 86400), 0);
        CHECK_EQ(manifest_hex_of(1, hex, &bytes, &len), 0);
        CHECK_EQ(image_read_file(F.cfg.state_dir, "debian-worker", 1, IMAGE_SIG_FILE, 1024, &sig, &sig_len), 0);
        CHECK_EQ(enroll(30, F.now, &a), 0);
        CHECK_EQ(a.instruction.action, INS_INSTALL);
        CHECK_EQ(enroll(31, F.now + 1, &b), 0);
        CHECK_EQ(b.instruction.action, INS_WAIT);               /* queued: nothing assigned */
        CHECK_EQ(agent_call("GET", "/v1/agent/image/manifest", a.session, &resp), 0);
        CHECK_EQ(resp.status, 200);
        CHECK_STREQ(resp.content_type, "application/octet-stream");
        CHECK_EQ(resp.body.len, len);
        CHECK(memcmp(resp.body.data, bytes, len) == 0);
        api_response_free(&resp);
        CHECK_EQ(agent_call("GET", "/v1/agent/image/manifest.sig", a.session, &resp), 0);
        CHECK_EQ(resp.status, 200);
        CHECK_EQ(resp.body.len, MANIFEST_SIG_BYTES);
        CHECK(memcmp(resp.body.data, sig, sig_len) == 0);
        api_response_free(&resp);
        CHECK_EQ(agent_call("GET", "/v1/agent/image/manifest", b.session, &resp), 0);
        CHECK_EQ(resp.status, 404);
        CHECK(strstr(resp.body.data, "\"error\"") != NULL);
        CHECK(resp.content_type == NULL);
        api_response_free(&resp);
        CHECK_EQ(agent_call("GET", "/v1/agent/image/manifest", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &resp), 0);
        CHECK_EQ(resp.status, 401);
        api_response_free(&resp);
        CHECK_EQ(agent_call("POST", "/v1/agent/image/manifest", a.session, &resp), 0);
        CHECK_EQ(resp.status, 405);
        api_response_free(&resp);
        /* imaging: still there; once imaged the session is over */
        registry_agent_event(F.reg, a.m.id, "install-started", "sda", 0, F.now, &r);
        CHECK_EQ(agent_call("GET", "/v1/agent/image/manifest", a.session, &resp), 0);
        CHECK_EQ(resp.status, 200);
        CHECK_EQ(resp.body.len, len);
        api_response_free(&resp);
        registry_agent_event(F.reg, a.m.id, "install-succeeded", "", 100, F.now, &r);
        CHECK_EQ(agent_call("GET", "/v1/agent/image/manifest", a.session, &resp), 0);
        CHECK_EQ(resp.status, 401);
        api_response_free(&resp);
        free(bytes);
        free(sig);
        teardown();
}

TEST(install_progress_shown_and_expired_images_refused)
{
        struct agent_reply a, r;
        json_object *m, *inst;

        CHECK_EQ(setup(4), 0);
        CHECK_EQ(import_image(1, 3600), 0);
        str_copy(F.profile.cluster, sizeof(F.profile.cluster), "lab");
        CHECK_EQ(enroll(40, F.now, &a), 0);
        registry_agent_event(F.reg, a.m.id, "install-started", "sda", 0, F.now, &r);
        registry_agent_event(F.reg, a.m.id, "install-progress", "done=1048576 total=4194304 rate=524288 eta=6", 25,
                             F.now, &r);
        CHECK_EQ(r.status, 200);
        CHECK_STREQ(r.instruction.reason, "installing image debian-worker:1: 1.0 MiB of 4.0 MiB, 512.0 KiB/s, ETA 0m06s");
        m = status_machine(a.m.name);
        CHECK(m);
        CHECK_STREQ(jstr(m, "waiting_for"), "installing image debian-worker:1: 1.0 MiB of 4.0 MiB, 512.0 KiB/s, "
                                            "ETA 0m06s");
        CHECK(json_object_object_get_ex(m, "install", &inst));
        CHECK_EQ(json_object_get_int64(json_object_object_get(inst, "done_bytes")), 1048576);
        CHECK_EQ(json_object_get_int64(json_object_object_get(inst, "total_bytes")), 4194304);
        CHECK_EQ(json_object_get_int64(json_object_object_get(inst, "rate_bytes_per_s")), 524288);
        CHECK_EQ(json_object_get_int64(json_object_object_get(inst, "eta_s")), 6);
        json_object_put(m);
        /* in the agent's own words: shown as they are */
        registry_agent_event(F.reg, a.m.id, "install-progress", "412 MiB of 1.2 GiB, 38 MiB/s, ETA 21 s", 33, F.now,
                             &r);
        CHECK_EQ(r.status, 200);
        CHECK_EQ(r.m.progress, 33);
        CHECK_STREQ(r.instruction.reason, "installing image debian-worker:1: 412 MiB of 1.2 GiB, 38 MiB/s, ETA 21 s");
        /* with a cluster, imaged waits for it */
        registry_agent_event(F.reg, a.m.id, "install-succeeded", "verified", 100, F.now, &r);
        CHECK_EQ(r.m.state, MS_IMAGED);
        /* an image that has expired is not handed out */
        CHECK_EQ(enroll(41, F.now + 3600, &r), 0);
        CHECK_EQ(r.instruction.action, INS_WAIT);
        CHECK(strstr(r.instruction.reason, "image debian-worker expired at ") == r.instruction.reason);
        teardown();
}

TEST(install_progress_detail_parse)
{
        static const struct {
                const char *detail;
                int r;
                uint64_t done, total, rate, eta;
        } cases[] = {
                { "done=1 total=2 rate=3 eta=4", 0, 1, 2, 3, 4 },
                { "done=0 total=0", 0, 0, 0, 0, UINT64_MAX },
                { "done=5 total=9 eta=1", 0, 5, 9, 0, 1 },
                { "done=2 total=1", -EINVAL, 0, 0, 0, 0 },                /* more done than there is */
                { "total=2 done=1", -EINVAL, 0, 0, 0, 0 },
                { "done= total=1", -EINVAL, 0, 0, 0, 0 },
                { "done=1 total=2 rate=3 eta=4 x", -EINVAL, 0, 0, 0, 0 },
                { "done=1 total=99999999999999999999", -EINVAL, 0, 0, 0, 0 },   /* past 64 bits */
                { "done=-1 total=2", -EINVAL, 0, 0, 0, 0 },
                { "done=1total=2", -EINVAL, 0, 0, 0, 0 },
                { "half", -EINVAL, 0, 0, 0, 0 },
                { "", -EINVAL, 0, 0, 0, 0 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct install_progress p = { .done_bytes = 77 };

                CHECK_EQ(install_progress_parse(cases[i].detail, &p), cases[i].r);
                if (cases[i].r < 0) {
                        CHECK_EQ(p.done_bytes, 77);     /* untouched */
                        continue;
                }
                CHECK(p.known);
                CHECK_EQ(p.done_bytes, cases[i].done);
                CHECK_EQ(p.total_bytes, cases[i].total);
                CHECK_EQ(p.rate_bytes_per_s, cases[i].rate);
                CHECK(p.eta_s == cases[i].eta);
        }
}

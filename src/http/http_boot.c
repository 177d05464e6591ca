/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdio.h>

#include "metald/boot_script.h"
#include "metald/fs.h"
#include "metald/log.h"
#include "metald/registry.h"
#include "metald/util.h"

#include "http_boot.h"

static bool artifact_present(int root_fd, const char *path)
{
        _cleanup_close_ int fd = -1;

        return fs_open_beneath(root_fd, path, O_RDONLY, &fd) == 0;
}

/* The template as a string; -EFBIG past its limit, -EBADMSG with a NUL inside. */
static int read_template(int root_fd, const char *path, char **ret)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = fs_open_beneath(root_fd, path, O_RDONLY, &fd);

        if (r < 0)
                return r;
        text = malloc(BOOT_MAX_TEMPLATE_BYTES + 2);
        if (!text)
                return -ENOMEM;
        if ((r = read_full(fd, text, BOOT_MAX_TEMPLATE_BYTES + 1, &len)) < 0)
                return r;
        if (len > BOOT_MAX_TEMPLATE_BYTES)
                return -EFBIG;
        if (memchr(text, '\0', len))
                return -EBADMSG;
        text[len] = '\0';
        *ret = TAKE_PTR(text);
        return 0;
}

/* Why the enrollment boot cannot be offered right now, or NULL (then *ret_template is set). */
static const char *enroll_unavailable(const struct http_service *s, char **ret_template)
{
        const struct boot_enroll *e = &s->cfg->boot.enroll;

        if (!*e->kernel || (!*e->initrd && !*s->enroll_initrd))
                return "no enrollment kernel and initrd are configured";
        if (!artifact_present(s->root_fd, e->kernel))
                return "the enrollment kernel is missing from the HTTP root";
        if (!*s->enroll_initrd && !artifact_present(s->root_fd, e->initrd))
                return "the enrollment initrd is missing from the HTTP root";
        if (read_template(s->root_fd, e->tmpl, ret_template) < 0)
                return "the enrollment template cannot be read";
        return NULL;
}

static void note_outcome(struct http_request *req, const struct boot_outcome *o, const char *machine)
{
        static const char *const kinds[] = { "chain", "enroll", "retry", "local", "netboot" };

        if (o->has_identity)
                format_mac(req->mac, o->identity.mac);
        snprintf(req->note, sizeof(req->note), "script=%s%s%s%s%s%s%s", kinds[o->kind], *req->mac ? " mac=" : "",
                 req->mac, *machine ? " machine=" : "", machine, o->why ? ": " : "", o->why ? o->why : "");
}

struct decider {
        struct http_request *req;
        char machine[64];
};

/* The lifecycle decides: a known or new machine enrolls with a fresh nonce, boots its disk or netboot, or waits. */
static void decide(const struct boot_identity *id, void *userdata, struct boot_decision *ret)
{
        struct decider *dc = userdata;
        const struct http_service *s = dc->req->svc;
        struct boot_contact c = { .ip = dc->req->peer_ip };
        struct registry_boot rb;

        memcpy(c.mac, id->mac, 6);
        str_copy(c.uuid, sizeof(c.uuid), id->uuid);     /* "" when iPXE reported no identity */
        str_copy(c.serial, sizeof(c.serial), id->serial);
        if (registry_boot(s->registry, &c, (int64_t)(now_realtime_usec() / USEC_PER_SEC), &rb) < 0) {
                ret->kind = BOOT_SCRIPT_RETRY;
                ret->why = "metald cannot record this machine right now";
                return;
        }
        str_copy(ret->machine, sizeof(ret->machine), rb.m.name);
        str_copy(dc->machine, sizeof(dc->machine), rb.m.name);
        switch (rb.kind) {
        case BOOT_KIND_ENROLL:
                ret->kind = BOOT_SCRIPT_ENROLL;
                str_copy(ret->nonce, sizeof(ret->nonce), rb.nonce);
                break;
        case BOOT_KIND_LOCAL:
                ret->kind = BOOT_SCRIPT_LOCAL;
                break;
        case BOOT_KIND_NETBOOT:
                ret->kind = BOOT_SCRIPT_NETBOOT;
                ret->netboot = (struct boot_netboot){ .profile = rb.netboot->name, .kernel = rb.netboot->netboot.kernel,
                                                      .initrd = rb.netboot->netboot.initrd,
                                                      .cmdline = rb.netboot->netboot.cmdline };
                break;
        case BOOT_KIND_RETIRED:
                ret->kind = BOOT_SCRIPT_RETRY;
                ret->why = "this machine is retired";
                break;
        }
        explicit_bzero(rb.nonce, sizeof(rb.nonce));
}

enum MHD_Result http_boot_serve(struct http_request *req)
{
        const struct http_service *s = req->svc;
        const struct boot_config *b = &s->cfg->boot;
        _cleanup_free_ char *template_text = NULL;
        struct buf out = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct boot_view v = {
                .base_url = s->base_url, .script_url = s->script_url, .kernel = b->enroll.kernel,
                .initrd = *s->enroll_initrd ? s->enroll_initrd : b->enroll.initrd, .cmdline = b->enroll.cmdline,
                .retry_delay_s = b->retry_delay_s,
                .local_boot_bios = s->cfg->lifecycle.local_boot_bios, .local_boot_efi = s->cfg->lifecycle.local_boot_efi,
        };
        struct decider dc = { .req = req };
        struct boot_outcome o;
        size_t len;
        int r;

        v.unavailable = enroll_unavailable(s, &template_text);
        v.template_text = template_text;
        r = boot_script_for(&v, req->target.query, req->target.query_len, s->registry ? decide : NULL, &dc, &out, &o);
        if (r < 0) {
                buf_free(&out);
                return http_respond_text(req, 503, "out of memory\n");
        }
        note_outcome(req, &o, dc.machine);
        len = out.len;
        return http_respond_buffer(req, 200, buf_steal(&out), len, "text/plain; charset=utf-8");
}

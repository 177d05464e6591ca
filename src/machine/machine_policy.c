/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "metald/registry.h"
#include "metald/util.h"

enum boot_kind machine_boot_kind(enum machine_state s)
{
        switch (s) {
        case MS_IMAGED:
        case MS_JOINING:
        case MS_READY:
                return BOOT_KIND_LOCAL;
        case MS_RETIRED:
                return BOOT_KIND_RETIRED;
        default:
                return BOOT_KIND_ENROLL;
        }
}

enum boot_kind machine_boot_kind_for(const struct store_machine *m, const struct profile *p)
{
        if (m->state == MS_APPROVED && machine_netboot(m, p))
                return BOOT_KIND_NETBOOT;
        return machine_boot_kind((enum machine_state)m->state);
}

const char *instruction_action_name(enum instruction_action a)
{
        static const char *const names[] = {
                [INS_WAIT] = "wait", [INS_INSTALL] = "install", [INS_REBOOT] = "reboot", [INS_POWEROFF] = "poweroff",
        };

        return a <= INS_POWEROFF ? names[a] : "wait";
}

static void set(struct instruction *ins, enum instruction_action a, const char *fmt, ...) _printf_(3, 4);
static void set(struct instruction *ins, enum instruction_action a, const char *fmt, ...)
{
        va_list ap;

        ins->action = a;
        va_start(ap, fmt);
        vsnprintf(ins->reason, sizeof(ins->reason), fmt, ap);
        va_end(ap);
}

static void registered(const struct profile *p, const char *tie, struct instruction *ins)
{
        if (tie)
                set(ins, INS_WAIT, "profiles %s and %s match equally; resolve the tie in the configuration",
                    p->name, tie);
        else if (!p)
                set(ins, INS_WAIT, "no profile matches this machine");
        else
                set(ins, INS_WAIT, "waiting for an operator to approve (profile %s)", p->name);
}


void profile_disk_rule(const struct profile *p, char *ret, size_t cap)
{
        if (*p->disk_serial)
                snprintf(ret, cap, "serial=%s", p->disk_serial);
        else if (*p->disk_path)
                snprintf(ret, cap, "path=%s", p->disk_path);
        else
                snprintf(ret, cap, "%s", *p->disk ? p->disk : "largest");
}

/* "key=N" at *s for key, moving past it and the blanks after it. */
static int progress_field(const char **s, const char *key, uint64_t *ret)
{
        size_t n = strlen(key), digits;
        uint64_t v = 0;

        if (strncmp(*s, key, n) != 0 || (*s)[n] != '=')
                return -EINVAL;
        for (digits = 0; (*s)[n + 1 + digits] >= '0' && (*s)[n + 1 + digits] <= '9'; digits++) {
                if (digits >= 19)       /* more than fits: refused, not wrapped */
                        return -EINVAL;
                v = v * 10 + (uint64_t)((*s)[n + 1 + digits] - '0');
        }
        if (digits == 0 || ((*s)[n + 1 + digits] != ' ' && (*s)[n + 1 + digits] != '\0'))
                return -EINVAL;
        *s += n + 1 + digits;
        while (**s == ' ')
                (*s)++;
        *ret = v;
        return 0;
}

int install_progress_parse(const char *detail, struct install_progress *ret)
{
        struct install_progress p = { .known = true, .eta_s = UINT64_MAX };
        const char *s = detail;

        if (progress_field(&s, "done", &p.done_bytes) < 0 || progress_field(&s, "total", &p.total_bytes) < 0 ||
            p.done_bytes > p.total_bytes)
                return -EINVAL;
        if (*s == 'r' && progress_field(&s, "rate", &p.rate_bytes_per_s) < 0)
                return -EINVAL;
        if (*s == 'e' && progress_field(&s, "eta", &p.eta_s) < 0)
                return -EINVAL;
        if (*s)
                return -EINVAL;
        *ret = p;
        return 0;
}

static void bytes_text(uint64_t n, char *out, size_t cap)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double)n;
        size_t u = 0;

        while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
                v /= 1024;
                u++;
        }
        snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void imaging(const struct install_facts *f, struct instruction *ins)
{
        const struct install_progress *p = &f->progress;
        char done[24], total[24], rate[24], eta[32] = "";

        if (!*f->image.name) {
                set(ins, INS_WAIT, "imaging");
                return;
        }
        if (!p->known) {
                set(ins, INS_WAIT, "installing image %s:%llu%s%s", f->image.name, (unsigned long long)f->image.version,
                    *p->detail ? ": " : "", p->detail);
                return;
        }
        bytes_text(p->done_bytes, done, sizeof(done));
        bytes_text(p->total_bytes, total, sizeof(total));
        bytes_text(p->rate_bytes_per_s, rate, sizeof(rate));
        if (p->eta_s != UINT64_MAX)
                snprintf(eta, sizeof(eta), ", ETA %llum%02llus", (unsigned long long)(p->eta_s / 60),
                         (unsigned long long)(p->eta_s % 60));
        set(ins, INS_WAIT, "installing image %s:%llu: %s of %s, %s/s%s", f->image.name,
            (unsigned long long)f->image.version, done, total, rate, eta);
}

static void approved(const struct profile *p, const struct install_facts *f, struct instruction *ins)
{
        switch (f ? f->verdict : INSTALL_NONE) {
        case INSTALL_NONE:
                if (!p || !*p->image)
                        set(ins, INS_WAIT, "approved; profile %s names no image to install", p ? p->name : "(none)");
                else
                        set(ins, INS_WAIT, "approved; waiting for image %s", p->image);
                break;
        case INSTALL_DISKLESS:
                set(ins, INS_WAIT, "profile %s boots image %s diskless, which metald does not do yet", p->name,
                    f->ref);
                break;
        case INSTALL_NOT_IMPORTED:
                set(ins, INS_WAIT, "image %s is not imported (metald image import)", f->ref);
                break;
        case INSTALL_EXPIRED:
                set(ins, INS_WAIT, "image %s expired at %lld; import a newer version (metald image import)", f->ref,
                    (long long)f->expired_at);
                break;
        case INSTALL_UNUSABLE:
                set(ins, INS_WAIT, "image %s cannot be installed: it has no disk, or its manifest does not read",
                    f->ref);
                break;
        case INSTALL_NO_URL:
                set(ins, INS_WAIT, "image %s: waiting for the HTTP service to serve images", f->ref);
                break;
        case INSTALL_QUEUED:
                set(ins, INS_WAIT, "queued for install: position %u of %u", f->position, f->queued);
                break;
        case INSTALL_GO:
                set(ins, INS_INSTALL, "install image %s:%llu on disk %s", f->image.name,
                    (unsigned long long)f->image.version, f->image.disk);
                ins->image = f->image;
                break;
        }
}

void machine_instruction(const struct store_machine *m, const struct profile *p, const char *tie,
                         const struct install_facts *inst, struct instruction *ins)
{
        memset(&ins->image, 0, sizeof(ins->image));
        switch ((enum machine_state)m->state) {
        case MS_DISCOVERED:
                set(ins, INS_WAIT, "registering");
                break;
        case MS_REGISTERED:
                registered(p, tie, ins);
                break;
        case MS_APPROVED:
                /* an enrollment agent still running hands the machine over to its netboot */
                if (!tie && machine_netboot(m, p))
                        set(ins, INS_REBOOT, "boot netboot profile %s (unsigned)", p->name);
                else
                        approved(p, inst, ins);
                break;
        case MS_IMAGING:
                if (inst)
                        imaging(inst, ins);
                else
                        set(ins, INS_WAIT, "imaging");
                break;
        case MS_IMAGED:
        case MS_JOINING:
        case MS_READY:
                set(ins, INS_REBOOT, "boot the installed system");
                break;
        case MS_FAILED:
                set(ins, INS_WAIT, "failed: %s; waiting for an operator to reimage", m->reason);
                break;
        default:
                set(ins, INS_POWEROFF, "retired");
                break;
        }
}

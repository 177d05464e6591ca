/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>

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


void machine_instruction(const struct store_machine *m, const struct profile *p, const char *tie,
                         struct instruction *ins)
{
        switch ((enum machine_state)m->state) {
        case MS_DISCOVERED:
                set(ins, INS_WAIT, "registering");
                break;
        case MS_REGISTERED:
                registered(p, tie, ins);
                break;
        case MS_APPROVED:
                if (!p || !*p->image)
                        set(ins, INS_WAIT, "approved; profile %s names no image to install", p ? p->name : "(none)");
                else
                        set(ins, INS_WAIT, "approved; waiting for image %s to be published", p->image);
                break;
        case MS_IMAGING:
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

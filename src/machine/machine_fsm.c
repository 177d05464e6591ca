/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "metald/machine.h"
#include "metald/util.h"

struct fsm_rule {
        enum machine_state from;
        enum machine_event ev;
        enum machine_state to;
        unsigned actions;
};

/*
 * The whole lifecycle. Anything not listed is illegal. Booting the enrollment
 * environment again ends the agent session (a new nonce is minted with the
 * boot); leaving the enrollment states ends it too.
 */
static const struct fsm_rule rules[] = {
        { MS_DISCOVERED, ME_BOOT,          MS_DISCOVERED, MA_END_SESSION },
        { MS_DISCOVERED, ME_REGISTER,      MS_REGISTERED, MA_OPEN_SESSION | MA_AUTO_APPROVE },
        { MS_DISCOVERED, ME_DEADLINE,      MS_FAILED,     MA_END_SESSION },
        { MS_DISCOVERED, ME_RETIRE,        MS_RETIRED,    MA_END_SESSION },

        { MS_REGISTERED, ME_BOOT,          MS_REGISTERED, MA_END_SESSION },
        { MS_REGISTERED, ME_REGISTER,      MS_REGISTERED, MA_OPEN_SESSION | MA_AUTO_APPROVE },
        { MS_REGISTERED, ME_APPROVE,       MS_APPROVED,   MA_NONE },
        { MS_REGISTERED, ME_DEADLINE,      MS_FAILED,     MA_END_SESSION },
        { MS_REGISTERED, ME_RETIRE,        MS_RETIRED,    MA_END_SESSION },

        { MS_APPROVED,   ME_BOOT,          MS_APPROVED,   MA_END_SESSION },
        { MS_APPROVED,   ME_REGISTER,      MS_APPROVED,   MA_OPEN_SESSION },
        { MS_APPROVED,   ME_INSTALL_START, MS_IMAGING,    MA_NONE },
        { MS_APPROVED,   ME_DEADLINE,      MS_FAILED,     MA_END_SESSION },
        { MS_APPROVED,   ME_RETIRE,        MS_RETIRED,    MA_END_SESSION },

        /* a reboot in the middle of imaging leaves no verified image: fail, then retry */
        { MS_IMAGING,    ME_BOOT,          MS_FAILED,     MA_END_SESSION },
        { MS_IMAGING,    ME_INSTALL_DONE,  MS_IMAGED,     MA_END_SESSION },
        { MS_IMAGING,    ME_INSTALL_FAIL,  MS_FAILED,     MA_END_SESSION },
        { MS_IMAGING,    ME_DEADLINE,      MS_FAILED,     MA_END_SESSION },
        { MS_IMAGING,    ME_RETIRE,        MS_RETIRED,    MA_END_SESSION },

        { MS_IMAGED,     ME_TOKEN_ISSUED,  MS_JOINING,    MA_NONE },
        { MS_IMAGED,     ME_NO_CLUSTER,    MS_READY,      MA_NONE },
        { MS_IMAGED,     ME_REIMAGE,       MS_APPROVED,   MA_END_SESSION },
        { MS_IMAGED,     ME_DEADLINE,      MS_FAILED,     MA_NONE },
        { MS_IMAGED,     ME_RESTART,       MS_FAILED,     MA_NONE },
        { MS_IMAGED,     ME_RETIRE,        MS_RETIRED,    MA_NONE },

        { MS_JOINING,    ME_NODE_JOINED,   MS_READY,      MA_NONE },
        { MS_JOINING,    ME_REIMAGE,       MS_APPROVED,   MA_END_SESSION },
        { MS_JOINING,    ME_DEADLINE,      MS_FAILED,     MA_NONE },
        { MS_JOINING,    ME_RETIRE,        MS_RETIRED,    MA_NONE },

        { MS_READY,      ME_REIMAGE,       MS_APPROVED,   MA_END_SESSION },
        { MS_READY,      ME_RETIRE,        MS_RETIRED,    MA_NONE },

        { MS_FAILED,     ME_BOOT,          MS_FAILED,     MA_END_SESSION },
        { MS_FAILED,     ME_REGISTER,      MS_REGISTERED, MA_OPEN_SESSION | MA_AUTO_APPROVE },
        { MS_FAILED,     ME_REIMAGE,       MS_APPROVED,   MA_END_SESSION },
        { MS_FAILED,     ME_RETIRE,        MS_RETIRED,    MA_END_SESSION },
};

static const struct {
        const char *name;
        enum machine_wait wait;
} states[_MS_MAX] = {
        [MS_DISCOVERED] = { "discovered", MW_ENROLL },
        [MS_REGISTERED] = { "registered", MW_AGENT },
        [MS_APPROVED]   = { "approved",   MW_AGENT },
        [MS_IMAGING]    = { "imaging",    MW_IMAGING },
        [MS_IMAGED]     = { "imaged",     MW_METALD },
        [MS_JOINING]    = { "joining",    MW_JOIN },
        [MS_READY]      = { "ready",      MW_NONE },
        [MS_FAILED]     = { "failed",     MW_NONE },
        [MS_RETIRED]    = { "retired",    MW_NONE },
};

static const char *const event_names[_ME_MAX] = {
        [ME_BOOT] = "boot", [ME_REGISTER] = "register", [ME_APPROVE] = "approve",
        [ME_INSTALL_START] = "install-started", [ME_INSTALL_DONE] = "install-succeeded",
        [ME_INSTALL_FAIL] = "install-failed", [ME_TOKEN_ISSUED] = "token-issued",
        [ME_NODE_JOINED] = "node-joined", [ME_REIMAGE] = "reimage", [ME_RETIRE] = "retire",
        [ME_DEADLINE] = "deadline", [ME_RESTART] = "restart",
        [ME_NO_CLUSTER] = "no-cluster",
};

int fsm_step(enum machine_state from, enum machine_event ev, struct fsm_result *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
                if (rules[i].from == from && rules[i].ev == ev) {
                        *ret = (struct fsm_result){ rules[i].to, rules[i].actions };
                        return 0;
                }
        return -EPERM;
}

enum machine_wait fsm_wait(enum machine_state s)
{
        return s < _MS_MAX ? states[s].wait : MW_NONE;
}

bool fsm_is_enrolling(enum machine_state s)
{
        return s == MS_DISCOVERED || s == MS_REGISTERED || s == MS_APPROVED || s == MS_IMAGING;
}

int64_t fsm_deadline(enum machine_state s, const struct lifecycle_timeouts *t, int64_t since, int64_t last_seen)
{
        int64_t alive = MAX(since, last_seen) + t->agent_s;

        switch (fsm_wait(s)) {
        case MW_ENROLL:  return since + t->enroll_s;
        case MW_AGENT:   return alive;
        case MW_IMAGING: return MIN(alive, since + (int64_t)t->imaging_s);
        case MW_METALD:  return since + t->imaged_s;
        case MW_JOIN:    return since + t->join_s;
        case MW_NONE:    return 0;
        }
        return 0;
}

const char *machine_state_name(enum machine_state s)
{
        return s < _MS_MAX ? states[s].name : "unknown";
}

const char *machine_event_name(enum machine_event e)
{
        return e < _ME_MAX ? event_names[e] : "unknown";
}

int machine_state_from_name(const char *name)
{
        for (int i = 0; i < _MS_MAX; i++)
                if (strcmp(states[i].name, name) == 0)
                        return i;
        return -EINVAL;
}

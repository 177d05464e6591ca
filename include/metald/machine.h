/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "metald/config.h"

/*
 * The machine lifecycle as data: states, events, and one transition table.
 * fsm_step() is pure; the registry (machine_registry.c) commits its result
 * before running any side effect.
 */
enum machine_state {
        MS_DISCOVERED,          /* first contact (boot script request), no secrets */
        MS_REGISTERED,          /* agent registered with inventory; awaits approval */
        MS_APPROVED,            /* may be imaged */
        MS_IMAGING,             /* agent streams and verifies the image */
        MS_IMAGED,              /* image verified on disk; metald acts next (cluster join) */
        MS_JOINING,             /* bootstrap token issued, machine booted its OS */
        MS_READY,               /* node joined; boots its local disk */
        MS_FAILED,              /* reason kept; reimage or a new registration retries */
        MS_RETIRED,             /* out of service; boots nothing */
        _MS_MAX,
};

enum machine_event {
        ME_BOOT,                /* an enrollment boot was served (a new nonce) */
        ME_REGISTER,            /* the agent registered with inventory */
        ME_APPROVE,             /* operator, or an auto-approving profile */
        ME_INSTALL_START,
        ME_INSTALL_DONE,
        ME_INSTALL_FAIL,
        ME_TOKEN_ISSUED,
        ME_NODE_JOINED,
        ME_REIMAGE,             /* operator */
        ME_RETIRE,              /* operator */
        ME_DEADLINE,            /* the state's deadline passed */
        ME_RESTART,             /* metald restarted while the machine was in a transient state */
        ME_NO_CLUSTER,          /* imaged, and the profile names no cluster: nothing to join */
        _ME_MAX,
};

/* Side effects a transition asks for; run after the transition is committed. */
enum machine_action {
        MA_NONE = 0,
        MA_OPEN_SESSION = 1 << 0,       /* issue a new agent session secret */
        MA_END_SESSION = 1 << 1,        /* the agent session is no longer valid */
        MA_AUTO_APPROVE = 1 << 2,       /* apply the profile's approval policy */
};

/* How a state waits: for whom, and which timeout bounds it. */
enum machine_wait {
        MW_NONE,                /* steady: ready, failed, retired */
        MW_ENROLL,              /* the machine must boot and register: enroll_timeout */
        MW_AGENT,               /* the agent must keep calling: agent_timeout since its last call */
        MW_IMAGING,             /* agent liveness, and imaging_timeout overall */
        MW_METALD,              /* transient: metald itself acts next; fails on restart */
        MW_JOIN,                /* the node must join: join_timeout */
};

struct fsm_result {
        enum machine_state to;
        unsigned actions;       /* enum machine_action bits */
};

/* 0 with the result, or -EPERM when the event is not allowed in that state. */
int fsm_step(enum machine_state from, enum machine_event ev, struct fsm_result *ret);

/* The absolute deadline (unix seconds) of a state entered at since, with the
 * agent last heard from at last_seen; 0 for states without one. */
int64_t fsm_deadline(enum machine_state s, const struct lifecycle_timeouts *t, int64_t since, int64_t last_seen);

enum machine_wait fsm_wait(enum machine_state s);
bool fsm_is_enrolling(enum machine_state s);    /* the agent session is valid here */

const char *machine_state_name(enum machine_state s);
const char *machine_event_name(enum machine_event e);
int machine_state_from_name(const char *name);

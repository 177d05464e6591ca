/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/config.h"
#include "metald/machine.h"
#include "metald/profile.h"
#include "metald/secret.h"
#include "metald/store.h"

/*
 * The machine registry: applies lifecycle events to stored machines. Each
 * transition is checked against the table (fsm_step), committed atomically
 * with its timeline event and credential changes under a compare-and-swap on
 * the machine's generation, and only then are follow-up effects applied. A
 * lost race is retried from the fresh row. Thread-safe: one lock, one store
 * handle; every call takes the time from its caller.
 */
struct registry;

int registry_open(const char *db_path, const struct config *cfg, struct registry **ret);
void registry_close(struct registry *r);

/* --- pure policy (machine_policy.c) --- */

enum boot_kind {
        BOOT_KIND_ENROLL,       /* the enrollment environment */
        BOOT_KIND_LOCAL,        /* the installed system on the local disk */
        BOOT_KIND_RETIRED,      /* nothing: print why and retry later */
};
enum boot_kind machine_boot_kind(enum machine_state s);

enum instruction_action { INS_WAIT, INS_INSTALL, INS_REBOOT, INS_POWEROFF };

struct instruction {
        enum instruction_action action;
        char reason[384];
};

/* What the agent of machine m should do now; p is its profile (NULL: none), tie names a tied rival. */
void machine_instruction(const struct store_machine *m, const struct profile *p, const char *tie,
                         struct instruction *ret);
const char *instruction_action_name(enum instruction_action a);

/* --- first contact: the boot script request --- */

struct boot_contact {
        uint8_t mac[6];
        char uuid[UUID_TEXT_BYTES];     /* "" when iPXE had none; all zero or all FF counts as none */
        char serial[STORE_MAX_TEXT + 1];
        uint32_t ip;                    /* host order */
};

struct registry_boot {
        enum boot_kind kind;
        char nonce[SECRET_MAX_TEXT];    /* ENROLL: the one-time nonce for the kernel command line */
        struct store_machine m;
};

/* Finds or creates the machine, decides what it boots; for enrollment mints a nonce (ending any session). */
int registry_boot(struct registry *r, const struct boot_contact *c, int64_t now, struct registry_boot *ret);

/* --- the agent API --- */

struct agent_identity {
        char uuid[37], serial[STORE_MAX_TEXT + 1], vendor[STORE_MAX_TEXT + 1], product[STORE_MAX_TEXT + 1];
};

/* The outcome of an agent call: an HTTP status and either an error sentence or the machine's view. */
struct agent_reply {
        int status;                     /* 200, 401, 409, 500, 503 */
        char error[160];
        struct store_machine m;
        char session[SECRET_MAX_TEXT];  /* register only */
        struct instruction instruction;
        uint32_t heartbeat_s;
};

void registry_register(struct registry *r, const char *nonce, const uint8_t boot_mac[6],
                       const struct agent_identity *id, const char *inventory_json, uint32_t ip, int64_t now,
                       struct agent_reply *ret);
/* The machine whose session secret this is, if it is still in an enrollment state; -EACCES otherwise. */
int registry_authenticate(struct registry *r, const char *secret, int64_t *ret_id);
void registry_heartbeat(struct registry *r, int64_t id, int progress, const char *status, uint32_t ip, int64_t now,
                        struct agent_reply *ret);
void registry_instruction(struct registry *r, int64_t id, int64_t now, struct agent_reply *ret);
/* event: install-started, install-progress, install-succeeded, install-failed, log */
void registry_agent_event(struct registry *r, int64_t id, const char *event, const char *detail, int progress,
                          int64_t now, struct agent_reply *ret);

/* --- operators --- */

enum admin_op { ADMIN_APPROVE, ADMIN_REIMAGE, ADMIN_RETIRE, ADMIN_FORGET, ADMIN_LABEL };

/* who: a machine name or MAC. 0, -ENOENT, -EPERM (illegal in its state, err says why), -EINVAL. */
int registry_admin(struct registry *r, enum admin_op op, const char *who, const char *arg, int64_t now,
                   struct store_machine *ret, char *err, size_t errlen);

/*
 * What the HTTP service writes into enrollment boot scripts: its base URL and
 * the initrd path below it. `machine show` renders a machine's kernel command
 * line from them; until they are set it shows none. -ENAMETOOLONG past the limits.
 */
int registry_set_enroll_boot(struct registry *r, const char *base_url, const char *initrd);

/* JSON documents for `metald status` and `metald machine show`. */
int registry_status_json(struct registry *r, int64_t now, struct buf *out);
int registry_show_json(struct registry *r, const char *who, struct buf *out);

/* --- time --- */

/* Fails every machine whose deadline has passed; returns how many. */
int registry_sweep(struct registry *r, int64_t now);
/* At start: machines in a transient state fail cleanly; returns how many. */
int registry_recover(struct registry *r, int64_t now);

/* Resolves a name or MAC to a stored machine. */
int registry_find(struct registry *r, const char *who, struct store_machine *ret);

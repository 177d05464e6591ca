/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the registry's files: its handle and the commit helpers. */
#include <pthread.h>

#include "metald/registry.h"

struct registry {
        pthread_mutex_t lock;
        struct store *store;
        const struct config *cfg;
        char boot_base_url[BOOT_MAX_URL];               /* what boot scripts name; "" until HTTP serves them */
        char boot_initrd[BOOT_MAX_ARTIFACT_PATH + 1];
};

/* What one transition changes besides the state. */
struct change {
        enum machine_event ev;
        const char *detail;                     /* event detail; the reason when the machine fails */
        const struct store_session *session;    /* set: written instead of what the rule says */
        const char *inventory_json;
};

/* Applies an event under compare-and-swap, retrying lost races; -EPERM when illegal. Lock held. */
int reg_apply(struct registry *r, struct store_machine *m, const struct change *c, int64_t now, unsigned *actions);
/* Records a timeline entry that is not a transition (also saves m's other fields). Lock held. */
int reg_note(struct registry *r, struct store_machine *m, const char *event, const char *detail, int64_t now);
int reg_load(struct registry *r, int64_t id, struct store_machine *m);
int reg_mint_nonce(struct registry *r, int64_t now, char *nonce, struct store_session *ss);
void reg_facts_of(const struct store_machine *m, struct profile_facts *f);
/* Approves a registered machine when its profile says auto or an operator approved it before. Lock held. */
void reg_auto_approve(struct registry *r, struct store_machine *m, int64_t now);
const struct profile *reg_profile_of(const struct registry *r, const struct store_machine *m, const char **tie);

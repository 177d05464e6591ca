/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the registry's files: its handle and the commit helpers. */
#include <pthread.h>

#include "metald/registry.h"

/* An image as the catalog held it when last looked up (machine_install.c). */
struct reg_image {
        char name[IMAGE_MAX_NAME + 1];
        uint64_t want;                  /* the profile's pin; 0: the newest */
        int64_t checked_at;             /* 0: a free entry */
        enum install_verdict verdict;   /* NOT_IMPORTED, EXPIRED, UNUSABLE or GO (installable) */
        uint64_t version;
        int64_t expires;
        char sha256[2 * MANIFEST_SHA256_BYTES + 1];
        uint64_t disk_size;
};

/* A machine told to install (a slot of images.max_concurrent_installs), or installing. */
struct reg_install {
        int64_t id;                     /* 0: a free entry */
        int64_t granted_at;
        bool started;                   /* install-started came: the machine is imaging */
        bool seen;                      /* the queue scan found the machine approved or imaging */
        char name[IMAGE_MAX_NAME + 1];
        uint64_t version;
        char sha256[2 * MANIFEST_SHA256_BYTES + 1];
        uint64_t disk_size;
        struct install_progress progress;
};

struct registry {
        pthread_mutex_t lock;
        struct store *store;
        const struct config *cfg;
        char boot_base_url[BOOT_MAX_URL];               /* what boot scripts name; "" until HTTP serves them */
        char boot_initrd[BOOT_MAX_ARTIFACT_PATH + 1];
        int64_t last_now;                               /* the latest time a caller gave */
        struct reg_image images[IMAGE_CATALOG_CACHE_ENTRIES];
        struct reg_install installs[IMAGE_MAX_CONCURRENT_INSTALLS];
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
/* What m boots from the network now (machine_boot_kind_for with its profile, none on a tie). */
enum boot_kind reg_boot_kind(const struct registry *r, const struct store_machine *m);
/* m's deadline in its state as the table says; none while it boots a netboot, where no agent calls in. */
int64_t reg_deadline(const struct registry *r, const struct store_machine *m, int64_t last_seen);

/* machine_install.c; lock held. */
/* Approved machines waiting for an install slot, oldest approval first, and the slots taken. */
struct reg_queue {
        struct reg_queue_entry { int64_t id, since; } *v;
        size_t n, cap;
        unsigned active;                /* imaging, and told to install within IMAGE_INSTALL_GRACE_S */
};
/* Takes the store's list of machines: not from inside a store_machine_foreach(). */
int reg_queue_build(struct registry *r, int64_t now, struct reg_queue *ret);
void reg_queue_free(struct reg_queue *q);
/*
 * What m should do, with its image looked up in the catalog; grant: an
 * install instruction takes its slot. q: a snapshot taken by the caller
 * (NULL: taken here).
 */
void reg_instruction(struct registry *r, const struct store_machine *m, int64_t now, bool grant,
                     const struct reg_queue *q, struct instruction *ret);
/* The agent's install events: the slot becomes an install, progress is kept, the end frees it. */
void reg_install_event(struct registry *r, const struct store_machine *m, enum machine_event ev, int64_t now);
int reg_install_progress(struct registry *r, const struct store_machine *m, const char *detail);
/* What `status` and `show` say about m's install (NULL: nothing known). */
const struct reg_install *reg_install_of(const struct registry *r, int64_t id);
/* The follow-up of install-succeeded: imaged -> ready when the profile names no cluster. */
void reg_after_imaged(struct registry *r, struct store_machine *m, int64_t now);

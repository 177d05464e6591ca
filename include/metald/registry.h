/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/config.h"
#include "metald/machine.h"
#include "metald/manifest.h"
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
        BOOT_KIND_NETBOOT,      /* the profile's netboot: unsigned files, no agent */
};
/* What a machine in state s boots from the network when its profile names no netboot. */
enum boot_kind machine_boot_kind(enum machine_state s);
/*
 * What machine m boots from the network, p its profile (NULL: none, or a
 * tie): an approved machine whose profile names a netboot boots that
 * (machine_netboot()), every other one as machine_boot_kind() says. Pure.
 */
enum boot_kind machine_boot_kind_for(const struct store_machine *m, const struct profile *p);

enum instruction_action { INS_WAIT, INS_INSTALL, INS_REBOOT, INS_POWEROFF };

/* The image an install instruction names (docs/AGENT-API.md, "Instructions"). */
struct instruction_image {
        char name[IMAGE_MAX_NAME + 1];
        uint64_t version;
        char sha256[2 * MANIFEST_SHA256_BYTES + 1];     /* of the exact manifest.json bytes, lower-case hex */
        uint64_t size;                                  /* bytes of the disk artifact */
        char url[INSTRUCTION_MAX_URL + 1];              /* BASE/_metald/images/NAME/VERSION */
        char disk[INSTRUCTION_MAX_DISK + 1];            /* the profile's disk rule */
        bool allow_removable;
        char hostname[STORE_MAX_NAME + 1];
};

struct instruction {
        enum instruction_action action;
        char reason[384];
        struct instruction_image image;                 /* INS_INSTALL only */
};

/* A running install as its agent last reported it (install-progress). */
struct install_progress {
        bool known;                     /* the detail was done=N total=N [rate=N] [eta=N] */
        uint64_t done_bytes, total_bytes, rate_bytes_per_s, eta_s;      /* eta_s UINT64_MAX: unknown */
        char detail[STORE_MAX_TEXT + 1];        /* the agent's own words, shown when not known */
};

/* What the registry found out about an approved or imaging machine's image (machine_install.c). */
enum install_verdict {
        INSTALL_NONE,           /* the profile names no image, or the machine has no profile */
        INSTALL_DISKLESS,       /* install.mode diskless: not supported yet */
        INSTALL_NOT_IMPORTED,   /* not in the catalog */
        INSTALL_EXPIRED,
        INSTALL_UNUSABLE,       /* in the catalog, but without a disk or with a manifest that does not read */
        INSTALL_NO_URL,         /* installable, but the HTTP service does not serve images yet */
        INSTALL_QUEUED,         /* installable; waits for a slot of images.max_concurrent_installs */
        INSTALL_GO,             /* told to install image */
};

struct install_facts {
        enum install_verdict verdict;
        char ref[IMAGE_MAX_NAME + 24];          /* the image as the profile names it: NAME or NAME:VERSION */
        int64_t expired_at;                     /* INSTALL_EXPIRED */
        unsigned position, queued;              /* INSTALL_QUEUED: position of queued */
        struct instruction_image image;         /* INSTALL_GO, and imaging when known */
        struct install_progress progress;       /* imaging */
};

/*
 * What the agent of machine m should do now; p is its profile (NULL: none),
 * tie names a tied rival, inst what the registry found for its image (NULL:
 * nothing looked up). Pure.
 */
void machine_instruction(const struct store_machine *m, const struct profile *p, const char *tie,
                         const struct install_facts *inst, struct instruction *ret);
const char *instruction_action_name(enum instruction_action a);
/* "serial=XYZ", "path=/dev/disk/by-path/...", else the disk rule as written ("largest" when unset). */
void profile_disk_rule(const struct profile *p, char *ret, size_t cap);
/* Reads the detail of an install-progress event: "done=N total=N rate=N eta=N" (rate, eta optional). */
int install_progress_parse(const char *detail, struct install_progress *ret);

/*
 * The image machine m is to install (machine_image.c): its own, when an
 * operator set one (`metald machine reimage --image`), else its profile's (p
 * may be NULL). "" when neither names one; *ret_version 0 means the newest
 * imported version.
 */
const char *machine_image(const struct store_machine *m, const struct profile *p, uint64_t *ret_version);
/*
 * The netboot machine m boots instead of an image: its profile's (p may be
 * NULL), unless an operator gave m an image of its own. NULL when none.
 */
const struct profile_netboot *machine_netboot(const struct store_machine *m, const struct profile *p);

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
        const struct profile *netboot;  /* NETBOOT: the profile whose netboot it boots (of the configuration) */
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
/*
 * The exact bytes of manifest.json (sig: manifest.json.sig) of the image
 * machine id was told to install, while it is approved and told to, or
 * imaging: 0 with *ret (the caller frees), -ENOENT when none is assigned,
 * -EACCES for an unknown machine, -EFBIG past IMAGE_MAX_MANIFEST_BYTES.
 */
int registry_image_manifest(struct registry *r, int64_t id, bool sig, int64_t now, uint8_t **ret, size_t *ret_len);

/* --- operators --- */

enum admin_op { ADMIN_APPROVE, ADMIN_REIMAGE, ADMIN_RETIRE, ADMIN_FORGET, ADMIN_LABEL };

/*
 * who: a machine name or MAC. 0, -ENOENT, -EPERM (illegal in its state, err
 * says why), -EINVAL. ADMIN_REIMAGE's arg sets the machine's own image:
 * "NAME" or "NAME:VERSION" of an imported image, "" to follow its profile
 * again, NULL to keep what it has.
 */
int registry_admin(struct registry *r, enum admin_op op, const char *who, const char *arg, int64_t now,
                   struct store_machine *ret, char *err, size_t errlen);

/*
 * After a reimage committed: power-cycles machine m through its profile's
 * power driver so that it network-boots into enrollment (status, then on or
 * cycle, bounded by REGISTRY_REIMAGE_POWER_MS). Runs on the caller's thread
 * without the registry lock, then records the outcome in m's timeline; the
 * manual driver, and a failure, leave the reason "waiting for an operator to
 * power-cycle NAME" on the machine until it next boots. 0 when metald
 * power-cycled it; else -errno. what says what happened, in one line.
 */
int registry_reimage_power(struct registry *r, struct store_machine *m, int64_t now, char *what, size_t what_len);

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

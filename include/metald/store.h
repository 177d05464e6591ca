/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"

/*
 * Persistence. Every module stores through this interface; only the backend
 * (store_sqlite.c) speaks SQL. A handle belongs to one thread: threads that
 * persist open their own handle on the same path.
 */
struct store;

enum store_lease_state {
        STORE_LEASE_BOUND = 1,
        STORE_LEASE_RELEASED = 2,       /* free, but remembered for its last client */
        STORE_LEASE_DECLINED = 3,       /* quarantined until expires */
};

struct store_lease {
        uint32_t addr;                  /* host order */
        enum store_lease_state state;
        uint8_t client_id[DHCP_MAX_CLIENT_ID];
        uint8_t client_id_len;
        uint8_t mac[6];
        int64_t expires;                /* unix seconds */
        char hostname[DHCP_MAX_HOSTNAME + 1];
};

enum store_op { STORE_PUT, STORE_DELETE };

struct store_lease_change {
        enum store_op op;
        struct store_lease lease;       /* DELETE uses lease.addr only */
};

/* A machine as stored. Strings are NUL-terminated; "" when unknown. */
struct store_machine {
        int64_t id;                     /* 0 until created */
        int64_t generation;             /* bumped by every commit; the compare-and-swap token */
        char name[STORE_MAX_NAME + 1];
        uint8_t mac[6];                 /* the NIC it network-boots from */
        char uuid[37];                  /* SMBIOS UUID */
        char serial[STORE_MAX_TEXT + 1];
        char vendor[STORE_MAX_TEXT + 1];
        char product[STORE_MAX_TEXT + 1];
        int state;                      /* enum machine_state */
        char reason[STORE_MAX_TEXT + 1];        /* why it is in this state (failed: what went wrong) */
        char profile[STORE_MAX_NAME + 1];
        char labels[STORE_MAX_TEXT + 1];        /* "key=value,key=value" */
        int approved;                   /* an operator approved it once: remembered across retries */
        uint32_t ip;                    /* last address it reached us from, host order */
        int progress;                   /* 0-100, -1 unknown */
        int64_t created, state_since, last_seen, deadline;      /* unix seconds; deadline 0 = none */
        char last_event[STORE_MAX_NAME + 1];
        char image[IMAGE_MAX_NAME + 1];         /* "": its profile's image; else an operator's override */
        uint64_t image_version;                 /* of the override: 0 = the newest imported */
};

struct store_event {
        int64_t ts;
        char event[STORE_MAX_NAME + 1];
        int from, to;                   /* states, -1 when not a transition */
        char detail[STORE_MAX_TEXT + 1];
};

/* The agent credentials of a machine: only hashes are stored. */
struct store_session {
        uint8_t nonce_hash[32];
        int64_t nonce_expires;          /* 0: no nonce outstanding */
        uint8_t session_hash[32];
        int64_t session_created;        /* 0: no session */
};

enum store_session_op {
        STORE_SESSION_KEEP,
        STORE_SESSION_CLEAR,            /* nonce and session gone */
        STORE_SESSION_SET,              /* write session as given */
};

/*
 * One atomic change to one machine: its row (created when id is 0, else
 * updated only if the stored generation still equals m->generation), an event
 * for its timeline, its credentials and its inventory. On success m->id and
 * m->generation are updated. -ESTALE when another writer got there first,
 * -EEXIST when the name or MAC belongs to another machine.
 */
struct store_machine_txn {
        struct store_machine *m;
        const struct store_event *event;        /* NULL: none */
        enum store_session_op session_op;
        const struct store_session *session;    /* STORE_SESSION_SET */
        const char *inventory_json;             /* NULL: unchanged */
};

enum store_machine_key { STORE_BY_ID, STORE_BY_MAC, STORE_BY_NAME };

struct store_ops {
        int (*lease_apply)(struct store *s, const struct store_lease_change *c, size_t n);
        int (*lease_foreach)(struct store *s, int (*cb)(const struct store_lease *l, void *u), void *u);
        int (*machine_get)(struct store *s, enum store_machine_key by, const void *key, struct store_machine *ret);
        int (*machine_foreach)(struct store *s, int (*cb)(const struct store_machine *m, void *u), void *u);
        int (*machine_commit)(struct store *s, struct store_machine_txn *t);
        int (*machine_delete)(struct store *s, int64_t id, int64_t generation);
        int (*event_foreach)(struct store *s, int64_t id, int (*cb)(const struct store_event *e, void *u), void *u);
        int (*session_get)(struct store *s, int64_t id, struct store_session *ret);
        int (*session_find)(struct store *s, const uint8_t session_hash[32], int64_t *ret_id);
        int (*inventory_get)(struct store *s, int64_t id, char **ret_json);
        void (*close)(struct store *s);
};

struct store {
        const struct store_ops *ops;
};

/* Opens (creating and migrating as needed) the state database at path. */
int store_open(const char *path, struct store **ret);
void store_close(struct store *s);

/* Applies all changes in one atomic, durable-on-return transaction. */
int store_lease_apply(struct store *s, const struct store_lease_change *c, size_t n);
/* Calls cb for each stored lease; a negative return from cb stops and is returned. */
int store_lease_foreach(struct store *s, int (*cb)(const struct store_lease *l, void *u), void *u);

/* key: const int64_t * (id), const uint8_t[6] (MAC) or const char * (name). -ENOENT when absent. */
int store_machine_get(struct store *s, enum store_machine_key by, const void *key, struct store_machine *ret);
int store_machine_foreach(struct store *s, int (*cb)(const struct store_machine *m, void *u), void *u);
int store_machine_commit(struct store *s, struct store_machine_txn *t);
/* Deletes the machine with its timeline, credentials and inventory; -ESTALE as commit. */
int store_machine_delete(struct store *s, int64_t id, int64_t generation);
/* The timeline, oldest first. */
int store_event_foreach(struct store *s, int64_t id, int (*cb)(const struct store_event *e, void *u), void *u);
int store_session_get(struct store *s, int64_t id, struct store_session *ret);
/* The machine whose current session has this hash; -ENOENT. */
int store_session_find(struct store *s, const uint8_t session_hash[32], int64_t *ret_id);
/* The inventory JSON (caller frees); -ENOENT when none was reported. */
int store_inventory_get(struct store *s, int64_t id, char **ret_json);

int store_sqlite_open(const char *path, struct store **ret);

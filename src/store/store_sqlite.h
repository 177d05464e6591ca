/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Private to the SQLite backend: the handle and helpers its files share. */
#include <sqlite3.h>

#include "metald/store.h"

enum sq_stmt {
        SQ_BEGIN, SQ_COMMIT, SQ_ROLLBACK,
        SQ_LEASE_PUT, SQ_LEASE_DEL, SQ_LEASE_ALL,
        SQ_M_BY_ID, SQ_M_BY_MAC, SQ_M_BY_NAME, SQ_M_ALL, SQ_M_INSERT, SQ_M_UPDATE, SQ_M_DELETE, SQ_M_GEN,
        SQ_EV_INSERT, SQ_EV_PRUNE, SQ_EV_ALL,
        SQ_SESS_GET, SQ_SESS_PUT, SQ_SESS_DEL, SQ_SESS_FIND,
        SQ_INV_GET, SQ_INV_PUT,
        _SQ_MAX,
};

struct store_sqlite {
        struct store base;
        sqlite3 *db;
        sqlite3_stmt *st[_SQ_MAX];
};

int sq_err(int rc);
/* Steps once and resets; 0, or the mapped error. */
int sq_step_reset(sqlite3_stmt *st);
int sq_begin(struct store_sqlite *s);
int sq_commit(struct store_sqlite *s);
void sq_rollback(struct store_sqlite *s);

extern const char *const sq_machine_sql[_SQ_MAX];
int sq_machine_get(struct store *base, enum store_machine_key by, const void *key, struct store_machine *ret);
int sq_machine_foreach(struct store *base, int (*cb)(const struct store_machine *m, void *u), void *u);
int sq_machine_commit(struct store *base, struct store_machine_txn *t);
int sq_machine_delete(struct store *base, int64_t id, int64_t generation);
int sq_event_foreach(struct store *base, int64_t id, int (*cb)(const struct store_event *e, void *u), void *u);
int sq_session_get(struct store *base, int64_t id, struct store_session *ret);
int sq_session_find(struct store *base, const uint8_t hash[32], int64_t *ret_id);
int sq_inventory_get(struct store *base, int64_t id, char **ret_json);

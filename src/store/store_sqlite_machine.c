/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/util.h"
#include "store_sqlite.h"

#define M_COLUMNS "id, generation, name, mac, uuid, serial, vendor, product, state, reason, profile, labels," \
                  " approved, ip, progress, created, state_since, last_seen, deadline, last_event," \
                  " image, image_version"

const char *const sq_machine_sql[_SQ_MAX] = {
        [SQ_M_BY_ID] = "SELECT " M_COLUMNS " FROM machines WHERE id = ?1",
        [SQ_M_BY_MAC] = "SELECT " M_COLUMNS " FROM machines WHERE mac = ?1",
        [SQ_M_BY_NAME] = "SELECT " M_COLUMNS " FROM machines WHERE name = ?1",
        [SQ_M_ALL] = "SELECT " M_COLUMNS " FROM machines ORDER BY name",
        [SQ_M_INSERT] = "INSERT INTO machines(generation, name, mac, uuid, serial, vendor, product, state, reason,"
                        " profile, labels, approved, ip, progress, created, state_since, last_seen, deadline,"
                        " last_event, image, image_version) VALUES(1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
                        " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?21, ?22)",
        [SQ_M_UPDATE] = "UPDATE machines SET generation = generation + 1, name = ?2, mac = ?3, uuid = ?4,"
                        " serial = ?5, vendor = ?6, product = ?7, state = ?8, reason = ?9, profile = ?10,"
                        " labels = ?11, approved = ?12, ip = ?13, progress = ?14, created = ?15,"
                        " state_since = ?16, last_seen = ?17, deadline = ?18, last_event = ?19, image = ?21,"
                        " image_version = ?22 WHERE id = ?1 AND generation = ?20",
        [SQ_M_DELETE] = "DELETE FROM machines WHERE id = ?1 AND generation = ?2",
        [SQ_M_GEN] = "SELECT generation FROM machines WHERE id = ?1",
        [SQ_EV_INSERT] = "INSERT INTO machine_events(machine_id, ts, event, from_state, to_state, detail)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        [SQ_EV_PRUNE] = "DELETE FROM machine_events WHERE machine_id = ?1 AND id <= (SELECT id FROM machine_events"
                        " WHERE machine_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        [SQ_EV_ALL] = "SELECT ts, event, from_state, to_state, detail FROM machine_events WHERE machine_id = ?1"
                      " ORDER BY id",
        [SQ_SESS_GET] = "SELECT nonce_hash, nonce_expires, session_hash, session_created FROM agent_sessions"
                        " WHERE machine_id = ?1",
        [SQ_SESS_PUT] = "INSERT OR REPLACE INTO agent_sessions(machine_id, nonce_hash, nonce_expires, session_hash,"
                        " session_created) VALUES(?1, ?2, ?3, ?4, ?5)",
        [SQ_SESS_DEL] = "DELETE FROM agent_sessions WHERE machine_id = ?1",
        [SQ_SESS_FIND] = "SELECT machine_id FROM agent_sessions WHERE session_hash = ?1",
        [SQ_INV_GET] = "SELECT json FROM inventory WHERE machine_id = ?1",
        [SQ_INV_PUT] = "INSERT OR REPLACE INTO inventory(machine_id, json, updated) VALUES(?1, ?2, ?3)",
};

static struct store_sqlite *sq(struct store *base)
{
        return (struct store_sqlite *)base;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
        const unsigned char *t = sqlite3_column_text(st, col);

        str_copy(dst, cap, t ? (const char *)t : "");
}

static int row_to_machine(sqlite3_stmt *st, struct store_machine *m)
{
        *m = (struct store_machine){ 0 };
        if (sqlite3_column_bytes(st, 3) != 6)
                return -EBADMSG;
        m->id = sqlite3_column_int64(st, 0);
        m->generation = sqlite3_column_int64(st, 1);
        copy_text(m->name, sizeof(m->name), st, 2);
        memcpy(m->mac, sqlite3_column_blob(st, 3), 6);
        copy_text(m->uuid, sizeof(m->uuid), st, 4);
        copy_text(m->serial, sizeof(m->serial), st, 5);
        copy_text(m->vendor, sizeof(m->vendor), st, 6);
        copy_text(m->product, sizeof(m->product), st, 7);
        m->state = sqlite3_column_int(st, 8);
        copy_text(m->reason, sizeof(m->reason), st, 9);
        copy_text(m->profile, sizeof(m->profile), st, 10);
        copy_text(m->labels, sizeof(m->labels), st, 11);
        m->approved = sqlite3_column_int(st, 12);
        m->ip = (uint32_t)sqlite3_column_int64(st, 13);
        m->progress = sqlite3_column_int(st, 14);
        m->created = sqlite3_column_int64(st, 15);
        m->state_since = sqlite3_column_int64(st, 16);
        m->last_seen = sqlite3_column_int64(st, 17);
        m->deadline = sqlite3_column_int64(st, 18);
        copy_text(m->last_event, sizeof(m->last_event), st, 19);
        copy_text(m->image, sizeof(m->image), st, 20);
        m->image_version = (uint64_t)MAX(sqlite3_column_int64(st, 21), (int64_t)0);
        return 0;
}

static int bind_machine(sqlite3_stmt *st, const struct store_machine *m)
{
        int rc = SQLITE_OK;

        rc |= sqlite3_bind_int64(st, 1, m->id);
        rc |= sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_blob(st, 3, m->mac, 6, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 4, m->uuid, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 5, m->serial, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 6, m->vendor, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 7, m->product, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int(st, 8, m->state);
        rc |= sqlite3_bind_text(st, 9, m->reason, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 10, m->profile, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 11, m->labels, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int(st, 12, m->approved);
        rc |= sqlite3_bind_int64(st, 13, m->ip);
        rc |= sqlite3_bind_int(st, 14, m->progress);
        rc |= sqlite3_bind_int64(st, 15, m->created);
        rc |= sqlite3_bind_int64(st, 16, m->state_since);
        rc |= sqlite3_bind_int64(st, 17, m->last_seen);
        rc |= sqlite3_bind_int64(st, 18, m->deadline);
        rc |= sqlite3_bind_text(st, 19, m->last_event, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_text(st, 21, m->image, -1, SQLITE_STATIC);
        rc |= sqlite3_bind_int64(st, 22, (int64_t)m->image_version);
        return rc == SQLITE_OK ? 0 : -EINVAL;
}

int sq_machine_get(struct store *base, enum store_machine_key by, const void *key, struct store_machine *ret)
{
        struct store_sqlite *s = sq(base);
        sqlite3_stmt *st;
        int rc, r;

        switch (by) {
        case STORE_BY_ID:
                st = s->st[SQ_M_BY_ID];
                rc = sqlite3_bind_int64(st, 1, *(const int64_t *)key);
                break;
        case STORE_BY_MAC:
                st = s->st[SQ_M_BY_MAC];
                rc = sqlite3_bind_blob(st, 1, key, 6, SQLITE_STATIC);
                break;
        default:
                st = s->st[SQ_M_BY_NAME];
                rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
                break;
        }
        if (rc != SQLITE_OK)
                return -EINVAL;
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? row_to_machine(st, ret) : rc == SQLITE_DONE ? -ENOENT : sq_err(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

int sq_machine_foreach(struct store *base, int (*cb)(const struct store_machine *m, void *u), void *u)
{
        sqlite3_stmt *st = sq(base)->st[SQ_M_ALL];
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct store_machine m;

                if (row_to_machine(st, &m) < 0)
                        continue;
                if ((r = cb(&m, u)) < 0)
                        break;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sq_err(rc);
        sqlite3_reset(st);
        return r;
}

/* -ESTALE when the row moved on, -ENOENT when it is gone. */
static int stale_or_gone(struct store_sqlite *s, int64_t id)
{
        sqlite3_stmt *st = s->st[SQ_M_GEN];
        int rc;

        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_ROW ? -ESTALE : -ENOENT;
}

static int write_row(struct store_sqlite *s, struct store_machine *m)
{
        sqlite3_stmt *st = s->st[m->id ? SQ_M_UPDATE : SQ_M_INSERT];
        int rc;

        if (bind_machine(st, m) < 0 || (m->id && sqlite3_bind_int64(st, 20, m->generation) != SQLITE_OK))
                return -EINVAL;
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
                return -EEXIST;
        if (rc != SQLITE_DONE)
                return sq_err(rc);
        if (!m->id) {
                m->id = sqlite3_last_insert_rowid(s->db);
                return 0;
        }
        return sqlite3_changes(s->db) == 1 ? 0 : stale_or_gone(s, m->id);
}

static int write_event(struct store_sqlite *s, int64_t id, const struct store_event *e)
{
        sqlite3_stmt *st = s->st[SQ_EV_INSERT];
        int r;

        if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || sqlite3_bind_int64(st, 2, e->ts) != SQLITE_OK ||
            sqlite3_bind_text(st, 3, e->event, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(st, 4, e->from) != SQLITE_OK || sqlite3_bind_int(st, 5, e->to) != SQLITE_OK ||
            sqlite3_bind_text(st, 6, e->detail, -1, SQLITE_STATIC) != SQLITE_OK)
                return -EINVAL;
        if ((r = sq_step_reset(st)) < 0)
                return r;
        /* the timeline is bounded: the oldest entries go first */
        st = s->st[SQ_EV_PRUNE];
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, STORE_MAX_EVENTS_PER_MACHINE);
        return sq_step_reset(st);
}

static int write_session(struct store_sqlite *s, int64_t id, enum store_session_op op, const struct store_session *ss)
{
        sqlite3_stmt *st = s->st[op == STORE_SESSION_SET ? SQ_SESS_PUT : SQ_SESS_DEL];
        int rc = sqlite3_bind_int64(st, 1, id);

        if (op == STORE_SESSION_SET) {
                rc |= ss->nonce_expires ? sqlite3_bind_blob(st, 2, ss->nonce_hash, 32, SQLITE_STATIC)
                                        : sqlite3_bind_null(st, 2);
                rc |= sqlite3_bind_int64(st, 3, ss->nonce_expires);
                rc |= ss->session_created ? sqlite3_bind_blob(st, 4, ss->session_hash, 32, SQLITE_STATIC)
                                          : sqlite3_bind_null(st, 4);
                rc |= sqlite3_bind_int64(st, 5, ss->session_created);
        }
        return rc == SQLITE_OK ? sq_step_reset(st) : -EINVAL;
}

static int write_inventory(struct store_sqlite *s, int64_t id, const char *json, int64_t now)
{
        sqlite3_stmt *st = s->st[SQ_INV_PUT];

        if (strlen(json) > STORE_MAX_INVENTORY)
                return -E2BIG;
        if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(st, 3, now) != SQLITE_OK)
                return -EINVAL;
        return sq_step_reset(st);
}

int sq_machine_commit(struct store *base, struct store_machine_txn *t)
{
        struct store_sqlite *s = sq(base);
        int64_t old_id = t->m->id;
        int r;

        if ((r = sq_begin(s)) < 0)
                return r;
        if ((r = write_row(s, t->m)) < 0)
                goto fail;
        if (t->event && (r = write_event(s, t->m->id, t->event)) < 0)
                goto fail;
        if (t->session_op != STORE_SESSION_KEEP && (r = write_session(s, t->m->id, t->session_op, t->session)) < 0)
                goto fail;
        if (t->inventory_json && (r = write_inventory(s, t->m->id, t->inventory_json, t->m->last_seen)) < 0)
                goto fail;
        if ((r = sq_commit(s)) < 0)
                goto fail;
        t->m->generation = old_id ? t->m->generation + 1 : 1;
        return 0;
fail:
        sq_rollback(s);
        t->m->id = old_id;
        return r;
}

int sq_machine_delete(struct store *base, int64_t id, int64_t generation)
{
        struct store_sqlite *s = sq(base);
        sqlite3_stmt *st = s->st[SQ_M_DELETE];
        int r;

        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, generation);
        if ((r = sq_step_reset(st)) < 0)
                return r;
        return sqlite3_changes(s->db) == 1 ? 0 : stale_or_gone(s, id);
}

int sq_event_foreach(struct store *base, int64_t id, int (*cb)(const struct store_event *e, void *u), void *u)
{
        sqlite3_stmt *st = sq(base)->st[SQ_EV_ALL];
        int rc, r = 0;

        sqlite3_bind_int64(st, 1, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct store_event e = { .ts = sqlite3_column_int64(st, 0) };

                copy_text(e.event, sizeof(e.event), st, 1);
                e.from = sqlite3_column_int(st, 2);
                e.to = sqlite3_column_int(st, 3);
                copy_text(e.detail, sizeof(e.detail), st, 4);
                if ((r = cb(&e, u)) < 0)
                        break;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sq_err(rc);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

static void copy_hash(uint8_t dst[32], sqlite3_stmt *st, int col)
{
        if (sqlite3_column_bytes(st, col) == 32)
                memcpy(dst, sqlite3_column_blob(st, col), 32);
        else
                memset(dst, 0, 32);
}

int sq_session_get(struct store *base, int64_t id, struct store_session *ret)
{
        sqlite3_stmt *st = sq(base)->st[SQ_SESS_GET];
        int rc, r;

        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_err(rc);
        if (r == 0) {
                copy_hash(ret->nonce_hash, st, 0);
                ret->nonce_expires = sqlite3_column_int64(st, 1);
                copy_hash(ret->session_hash, st, 2);
                ret->session_created = sqlite3_column_int64(st, 3);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

int sq_session_find(struct store *base, const uint8_t hash[32], int64_t *ret_id)
{
        sqlite3_stmt *st = sq(base)->st[SQ_SESS_FIND];
        int rc, r;

        sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_err(rc);
        if (r == 0)
                *ret_id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

int sq_inventory_get(struct store *base, int64_t id, char **ret_json)
{
        sqlite3_stmt *st = sq(base)->st[SQ_INV_GET];
        int rc, r;

        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sq_err(rc);
        if (r == 0) {
                const unsigned char *t = sqlite3_column_text(st, 0);

                *ret_json = strdup(t ? (const char *)t : "");
                if (!*ret_json)
                        r = -ENOMEM;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r;
}

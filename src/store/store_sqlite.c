/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/util.h"
#include "store_sqlite.h"

/* Schema steps in order; user_version counts how many have been applied. */
static const char *const migrations[] = {
        "CREATE TABLE leases ("
        "  address INTEGER PRIMARY KEY,"
        "  state INTEGER NOT NULL,"
        "  client_id BLOB NOT NULL,"
        "  mac BLOB NOT NULL,"
        "  hostname TEXT NOT NULL DEFAULT '',"
        "  expires INTEGER NOT NULL)",

        "CREATE TABLE machines ("
        "  id INTEGER PRIMARY KEY,"
        "  generation INTEGER NOT NULL,"
        "  name TEXT NOT NULL UNIQUE,"
        "  mac BLOB NOT NULL UNIQUE,"
        "  uuid TEXT NOT NULL, serial TEXT NOT NULL, vendor TEXT NOT NULL, product TEXT NOT NULL,"
        "  state INTEGER NOT NULL, reason TEXT NOT NULL, profile TEXT NOT NULL, labels TEXT NOT NULL,"
        "  approved INTEGER NOT NULL, ip INTEGER NOT NULL, progress INTEGER NOT NULL,"
        "  created INTEGER NOT NULL, state_since INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
        "  deadline INTEGER NOT NULL, last_event TEXT NOT NULL);"
        "CREATE TABLE machine_events ("
        "  id INTEGER PRIMARY KEY,"
        "  machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,"
        "  ts INTEGER NOT NULL, event TEXT NOT NULL,"
        "  from_state INTEGER NOT NULL, to_state INTEGER NOT NULL, detail TEXT NOT NULL);"
        "CREATE INDEX machine_events_by_machine ON machine_events(machine_id, id);"
        "CREATE TABLE agent_sessions ("
        "  machine_id INTEGER PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,"
        "  nonce_hash BLOB, nonce_expires INTEGER NOT NULL,"
        "  session_hash BLOB UNIQUE, session_created INTEGER NOT NULL);"
        "CREATE TABLE inventory ("
        "  machine_id INTEGER PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,"
        "  json TEXT NOT NULL, updated INTEGER NOT NULL);",

        /* a machine's own image (metald machine reimage --image); '' follows its profile */
        ("ALTER TABLE machines ADD COLUMN image TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE machines ADD COLUMN image_version INTEGER NOT NULL DEFAULT 0;"),
};

static int exec(sqlite3 *db, const char *sql)
{
        return sq_err(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int migrate(sqlite3 *db)
{
        sqlite3_stmt *st = NULL;
        int version, r;

        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        sqlite3_finalize(st);
        if (version < 0)
                return -EIO;
        if ((size_t)version > ARRAY_SIZE(migrations))
                return -EPROTO;         /* written by a newer metald */
        if ((size_t)version == ARRAY_SIZE(migrations))
                return 0;
        if ((r = exec(db, "BEGIN IMMEDIATE")) < 0)
                return r;
        for (size_t i = (size_t)version; i < ARRAY_SIZE(migrations); i++)
                if ((r = exec(db, migrations[i])) < 0)
                        goto fail;
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", ARRAY_SIZE(migrations));
        if ((r = exec(db, sql)) < 0 || (r = exec(db, "COMMIT")) < 0)
                goto fail;
        return 0;
fail:
        exec(db, "ROLLBACK");
        return r;
}

static void sqlite_close(struct store *base)
{
        struct store_sqlite *s = (struct store_sqlite *)base;

        for (size_t i = 0; i < _SQ_MAX; i++)
                sqlite3_finalize(s->st[i]);
        sqlite3_close(s->db);
        free(s);
}

static int bind_lease(sqlite3_stmt *st, const struct store_lease *l)
{
        if (sqlite3_bind_int64(st, 1, l->addr) != SQLITE_OK ||
            sqlite3_bind_int(st, 2, (int)l->state) != SQLITE_OK ||
            sqlite3_bind_blob(st, 3, l->client_id, l->client_id_len, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(st, 4, l->mac, 6, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(st, 5, l->hostname, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(st, 6, l->expires) != SQLITE_OK)
                return -EINVAL;
        return 0;
}

static int sqlite_lease_apply(struct store *base, const struct store_lease_change *c, size_t n)
{
        struct store_sqlite *s = (struct store_sqlite *)base;
        int r;

        if ((r = sq_begin(s)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                sqlite3_stmt *st = c[i].op == STORE_PUT ? s->st[SQ_LEASE_PUT] : s->st[SQ_LEASE_DEL];

                if (c[i].op == STORE_PUT)
                        r = bind_lease(st, &c[i].lease);
                else
                        r = sqlite3_bind_int64(st, 1, c[i].lease.addr) == SQLITE_OK ? 0 : -EINVAL;
                if (r < 0 || (r = sq_step_reset(st)) < 0)
                        goto fail;
        }
        if ((r = sq_commit(s)) < 0)
                goto fail;
        return 0;
fail:
        sq_rollback(s);
        return r;
}

static int row_to_lease(sqlite3_stmt *st, struct store_lease *l)
{
        int cid_len = sqlite3_column_bytes(st, 2), mac_len = sqlite3_column_bytes(st, 3);
        const unsigned char *host = sqlite3_column_text(st, 4);
        int64_t addr = sqlite3_column_int64(st, 0);

        *l = (struct store_lease){ 0 };
        if (addr < 0 || addr > UINT32_MAX || cid_len > DHCP_MAX_CLIENT_ID || mac_len != 6)
                return -EBADMSG;
        l->addr = (uint32_t)addr;
        l->state = (enum store_lease_state)sqlite3_column_int(st, 1);
        if (cid_len > 0)
                memcpy(l->client_id, sqlite3_column_blob(st, 2), (size_t)cid_len);
        l->client_id_len = (uint8_t)cid_len;
        memcpy(l->mac, sqlite3_column_blob(st, 3), 6);
        str_copy(l->hostname, sizeof(l->hostname), host ? (const char *)host : "");
        l->expires = sqlite3_column_int64(st, 5);
        return 0;
}

static int sqlite_lease_foreach(struct store *base, int (*cb)(const struct store_lease *, void *), void *u)
{
        struct store_sqlite *s = (struct store_sqlite *)base;
        int rc, r = 0;

        sqlite3_stmt *all = s->st[SQ_LEASE_ALL];

        while ((rc = sqlite3_step(all)) == SQLITE_ROW) {
                struct store_lease l;

                if (row_to_lease(all, &l) < 0)
                        continue;       /* a damaged row is skipped, not fatal */
                if ((r = cb(&l, u)) < 0)
                        break;
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = sq_err(rc);
        sqlite3_reset(all);
        return r;
}

static const struct store_ops sqlite_ops = {
        .lease_apply = sqlite_lease_apply,
        .lease_foreach = sqlite_lease_foreach,
        .machine_get = sq_machine_get,
        .machine_foreach = sq_machine_foreach,
        .machine_commit = sq_machine_commit,
        .machine_delete = sq_machine_delete,
        .event_foreach = sq_event_foreach,
        .session_get = sq_session_get,
        .session_find = sq_session_find,
        .inventory_get = sq_inventory_get,
        .close = sqlite_close,
};

static const char *const base_sql[] = {
        [SQ_BEGIN] = "BEGIN IMMEDIATE",
        [SQ_COMMIT] = "COMMIT",
        [SQ_ROLLBACK] = "ROLLBACK",
        [SQ_LEASE_PUT] = ("INSERT OR REPLACE INTO leases(address, state, client_id, mac, hostname, expires)"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"),
        [SQ_LEASE_DEL] = "DELETE FROM leases WHERE address = ?1",
        [SQ_LEASE_ALL] = "SELECT address, state, client_id, mac, hostname, expires FROM leases",
};

static int prepare_all(struct store_sqlite *s)
{
        for (size_t i = 0; i < _SQ_MAX; i++) {
                const char *sql = i < ARRAY_SIZE(base_sql) && base_sql[i] ? base_sql[i] : sq_machine_sql[i];

                if (!sql || sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK)
                        return -EIO;
        }
        return 0;
}

int store_sqlite_open(const char *path, struct store **ret)
{
        struct store_sqlite *s = calloc(1, sizeof(*s));
        int rc, r;

        if (!s)
                return -ENOMEM;
        s->base.ops = &sqlite_ops;
        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                r = sq_err(rc);
                goto fail;
        }
        sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
        /* WAL with synchronous=NORMAL: a commit survives the process dying (kill -9);
         * only a power loss can drop the newest commits. */
        if ((r = exec(s->db, "PRAGMA journal_mode=WAL")) < 0 ||
            (r = exec(s->db, "PRAGMA synchronous=NORMAL")) < 0 ||
            (r = exec(s->db, "PRAGMA foreign_keys=ON")) < 0 ||
            (r = migrate(s->db)) < 0 || (r = prepare_all(s)) < 0)
                goto fail;
        *ret = &s->base;
        return 0;
fail:
        sqlite_close(&s->base);
        return r;
}

/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/store.h"

int store_open(const char *path, struct store **ret)
{
        /* SQLite is the only backend today; a distributed one will be chosen by scheme. */
        return store_sqlite_open(path, ret);
}

void store_close(struct store *s)
{
        if (s)
                s->ops->close(s);
}

int store_lease_apply(struct store *s, const struct store_lease_change *c, size_t n)
{
        return n == 0 ? 0 : s->ops->lease_apply(s, c, n);
}

int store_lease_foreach(struct store *s, int (*cb)(const struct store_lease *l, void *u), void *u)
{
        return s->ops->lease_foreach(s, cb, u);
}

int store_machine_get(struct store *s, enum store_machine_key by, const void *key, struct store_machine *ret)
{
        return s->ops->machine_get(s, by, key, ret);
}

int store_machine_foreach(struct store *s, int (*cb)(const struct store_machine *m, void *u), void *u)
{
        return s->ops->machine_foreach(s, cb, u);
}

int store_machine_commit(struct store *s, struct store_machine_txn *t)
{
        return s->ops->machine_commit(s, t);
}

int store_machine_delete(struct store *s, int64_t id, int64_t generation)
{
        return s->ops->machine_delete(s, id, generation);
}

int store_event_foreach(struct store *s, int64_t id, int (*cb)(const struct store_event *e, void *u), void *u)
{
        return s->ops->event_foreach(s, id, cb, u);
}

int store_session_get(struct store *s, int64_t id, struct store_session *ret)
{
        return s->ops->session_get(s, id, ret);
}

int store_session_find(struct store *s, const uint8_t session_hash[32], int64_t *ret_id)
{
        return s->ops->session_find(s, session_hash, ret_id);
}

int store_inventory_get(struct store *s, int64_t id, char **ret_json)
{
        return s->ops->inventory_get(s, id, ret_json);
}

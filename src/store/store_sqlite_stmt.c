/* SPDX-License-Identifier: Apache-2.0 */
/* Statement and transaction helpers that both files of the SQLite backend use. */
#include <errno.h>

#include "store_sqlite.h"

int sq_err(int rc)
{
        switch (rc) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        default:
                return -EIO;
        }
}

int sq_step_reset(sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return sq_err(rc);
}

int sq_begin(struct store_sqlite *s) { return sq_step_reset(s->st[SQ_BEGIN]); }
int sq_commit(struct store_sqlite *s) { return sq_step_reset(s->st[SQ_COMMIT]); }
void sq_rollback(struct store_sqlite *s) { (void)sq_step_reset(s->st[SQ_ROLLBACK]); }

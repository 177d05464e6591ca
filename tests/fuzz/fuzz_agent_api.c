/* SPDX-License-Identifier: Apache-2.0 */
/* The agent API's request parsers: registration (with its inventory), heartbeat and event bodies. */
#include <stdint.h>
#include <stdlib.h>

#include "metald/api.h"
#include "metald/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char why[256], status[API_MAX_TEXT + 1], event[40], detail[API_MAX_TEXT + 1];
        struct agent_register_req req;
        int progress;

        log_set_level(LOG_EMERG);
        /* every parser sees every input: the JSON shapes overlap on purpose */
        if (agent_parse_register((const char *)data, size, &req, why, sizeof(why)) == 0 &&
            (req.inventory.len == 0 || req.inventory.data[0] != '{'))
                abort();
        buf_free(&req.inventory);
        if (agent_parse_heartbeat((const char *)data, size, &progress, status, sizeof(status), why, sizeof(why)) == 0 &&
            (progress < -1 || progress > 100))
                abort();
        if (agent_parse_event((const char *)data, size, event, sizeof(event), detail, sizeof(detail), &progress, why,
                              sizeof(why)) == 0 && !*event)
                abort();
        return 0;
}

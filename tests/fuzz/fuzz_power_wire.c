/* SPDX-License-Identifier: Apache-2.0 */
/* What power drivers read from others: QMP messages and ipmitool's output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metald/power_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *s = (const char *)data;
        struct power_qmp_msg m;
        enum power_state st;
        char summary[128];

        if (power_qmp_parse(s, size, &m) == 0) {
                if (m.kind == POWER_QMP_EVENT && !m.event[0])
                        abort();
                if (strlen(m.status) > POWER_QMP_MAX_STATUS || strlen(m.error) >= sizeof(m.error))
                        abort();
        }
        if (power_ipmi_parse_status(s, size, &st) == 0 && st != POWER_STATE_ON && st != POWER_STATE_OFF)
                abort();
        for (int op = POWER_OP_ON; op <= POWER_OP_SOFT_OFF; op++)
                power_ipmi_parse_control(s, size, (enum power_op)op);
        power_summarize(s, size, summary, sizeof(summary));
        if (strlen(summary) >= sizeof(summary))
                abort();
        return 0;
}

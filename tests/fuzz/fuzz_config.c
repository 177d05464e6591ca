/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration loader: YAML tree, schema and cross-checks, from bytes to a config or one error line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metald/config.h"
#include "metald/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[512] = "";
        struct config *c = NULL;
        char *text = malloc(size + 1);

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        log_set_level(LOG_EMERG);
        if (config_load_string(text, "fuzz.yaml", &c, err, sizeof(err)) == 0) {
                if (!c)
                        abort();
                config_free(c);
        } else if (c || !err[0] || !memchr(err, '\0', sizeof(err))) {
                abort();        /* a refused config always says why, in one bounded line */
        }
        free(text);
        return 0;
}

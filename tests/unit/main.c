/* SPDX-License-Identifier: Apache-2.0 */
#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include "metald/log.h"
#include "test.h"

struct test_case {
        const char *name, *file;
        void (*fn)(void);
};

static struct test_case cases[1024];
static size_t n_cases;
static bool current_failed;
static char tmpdir[256];

void test_register(const char *name, void (*fn)(void), const char *file)
{
        if (n_cases < sizeof(cases) / sizeof(cases[0]))
                cases[n_cases++] = (struct test_case){ name, file, fn };
}

void test_fail(const char *file, int line, const char *expr)
{
        fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, expr);
        current_failed = true;
}

void test_fail_int(const char *file, int line, const char *ea, const char *eb, long long a, long long b)
{
        fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld != %lld)\n", file, line, ea, eb, a, b);
        current_failed = true;
}

void test_fail_str(const char *file, int line, const char *ea, const char *eb, const char *a, const char *b)
{
        fprintf(stderr, "  FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", file, line, ea, eb, a ? a : "(null)",
                b ? b : "(null)");
        current_failed = true;
}

const char *test_tmpdir(void)
{
        if (!*tmpdir) {
                snprintf(tmpdir, sizeof(tmpdir), "/tmp/metald-unit-XXXXXX");
                if (!mkdtemp(tmpdir))
                        abort();
        }
        return tmpdir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void cleanup_tmpdir(void)
{
        if (*tmpdir)
                nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
}

int main(int argc, char **argv)
{
        unsigned passed = 0, failed = 0;

        log_setup("metald-unit");
        log_set_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_CRIT);
        for (size_t i = 0; i < n_cases; i++) {
                if (argc > 1 && !strstr(cases[i].name, argv[1]) && !strstr(cases[i].file, argv[1]))
                        continue;
                current_failed = false;
                cases[i].fn();
                cleanup_tmpdir();
                if (current_failed) {
                        fprintf(stderr, "FAIL %s (%s)\n", cases[i].name, cases[i].file);
                        failed++;
                } else {
                        passed++;
                }
        }
        printf("%u passed, %u failed\n", passed, failed);
        return failed ? 1 : 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Table-driven unit tests: TEST(name) { ... CHECK(cond); ... } registers itself. */
void test_register(const char *name, void (*fn)(void), const char *file);
void test_fail(const char *file, int line, const char *expr);
/* Path of a fresh scratch directory for the running test (removed afterwards). */
const char *test_tmpdir(void);

#define TEST(name)                                                             \
        static void test_##name(void);                                         \
        __attribute__((constructor)) static void register_##name(void)         \
        {                                                                      \
                test_register(#name, test_##name, __FILE__);                   \
        }                                                                      \
        static void test_##name(void)

#define CHECK(cond)                                                            \
        do {                                                                   \
                if (!(cond)) {                                                 \
                        test_fail(__FILE__, __LINE__, #cond);                  \
                        return;                                                \
                }                                                              \
        } while (0)

void test_fail_int(const char *file, int line, const char *ea, const char *eb, long long a, long long b);
void test_fail_str(const char *file, int line, const char *ea, const char *eb, const char *a, const char *b);

#define CHECK_EQ(a, b)                                                         \
        do {                                                                   \
                long long _a = (long long)(a), _b = (long long)(b);            \
                if (_a != _b) {                                                \
                        test_fail_int(__FILE__, __LINE__, #a, #b, _a, _b);     \
                        return;                                                \
                }                                                              \
        } while (0)

#define CHECK_STREQ(a, b)                                                      \
        do {                                                                   \
                const char *_a = (a), *_b = (b);                               \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                       \
                        test_fail_str(__FILE__, __LINE__, #a, #b, _a, _b);     \
                        return;                                                \
                }                                                              \
        } while (0)

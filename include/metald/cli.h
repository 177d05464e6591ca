/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Exit codes shared by every subcommand. */
#define EXIT_OK     0
#define EXIT_FAILED 1
#define EXIT_USAGE  2

int cli_main(int argc, char **argv);
/* One line naming what is wrong, a pointer to help; returns EXIT_USAGE. */
int cli_usage_error(const char *what, const char *arg);
/* status and machine subcommands, over the control socket. */
int cli_control(int argc, char **argv);

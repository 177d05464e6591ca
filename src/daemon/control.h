/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "metald/runtime.h"

/* The operator socket (control.socket). */
struct control_service;
int control_service_start(const struct runtime *rt, struct control_service **ret);
void control_service_stop(struct control_service *s);

/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/machine.h"
#include "test.h"

/* The lifecycle written out independently of the table in machine_fsm.c: every legal pair and its target. */
static const struct { enum machine_state from; enum machine_event ev; enum machine_state to; } legal[] = {
        { MS_DISCOVERED, ME_BOOT, MS_DISCOVERED }, { MS_DISCOVERED, ME_REGISTER, MS_REGISTERED },
        { MS_DISCOVERED, ME_DEADLINE, MS_FAILED }, { MS_DISCOVERED, ME_RETIRE, MS_RETIRED },
        { MS_REGISTERED, ME_BOOT, MS_REGISTERED }, { MS_REGISTERED, ME_REGISTER, MS_REGISTERED },
        { MS_REGISTERED, ME_APPROVE, MS_APPROVED }, { MS_REGISTERED, ME_DEADLINE, MS_FAILED },
        { MS_REGISTERED, ME_RETIRE, MS_RETIRED },
        { MS_APPROVED, ME_BOOT, MS_APPROVED }, { MS_APPROVED, ME_REGISTER, MS_APPROVED },
        { MS_APPROVED, ME_INSTALL_START, MS_IMAGING }, { MS_APPROVED, ME_DEADLINE, MS_FAILED },
        { MS_APPROVED, ME_RETIRE, MS_RETIRED },
        { MS_IMAGING, ME_BOOT, MS_FAILED }, { MS_IMAGING, ME_INSTALL_DONE, MS_IMAGED },
        { MS_IMAGING, ME_INSTALL_FAIL, MS_FAILED }, { MS_IMAGING, ME_DEADLINE, MS_FAILED },
        { MS_IMAGING, ME_RETIRE, MS_RETIRED },
        { MS_IMAGED, ME_TOKEN_ISSUED, MS_JOINING }, { MS_IMAGED, ME_NO_CLUSTER, MS_READY },
        { MS_IMAGED, ME_REIMAGE, MS_APPROVED },
        { MS_IMAGED, ME_DEADLINE, MS_FAILED }, { MS_IMAGED, ME_RESTART, MS_FAILED },
        { MS_IMAGED, ME_RETIRE, MS_RETIRED },
        { MS_JOINING, ME_NODE_JOINED, MS_READY }, { MS_JOINING, ME_REIMAGE, MS_APPROVED },
        { MS_JOINING, ME_DEADLINE, MS_FAILED }, { MS_JOINING, ME_RETIRE, MS_RETIRED },
        { MS_READY, ME_REIMAGE, MS_APPROVED }, { MS_READY, ME_RETIRE, MS_RETIRED },
        { MS_FAILED, ME_BOOT, MS_FAILED }, { MS_FAILED, ME_REGISTER, MS_REGISTERED },
        { MS_FAILED, ME_REIMAGE, MS_APPROVED }, { MS_FAILED, ME_RETIRE, MS_RETIRED },
};

static int expected(enum machine_state s, enum machine_event e)
{
        for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
                if (legal[i].from == s && legal[i].ev == e)
                        return (int)legal[i].to;
        return -1;
}

TEST(fsm_every_transition_legal_and_illegal)
{
        unsigned n_legal = 0;

        for (int s = 0; s < _MS_MAX; s++)
                for (int e = 0; e < _ME_MAX; e++) {
                        struct fsm_result res;
                        int want = expected((enum machine_state)s, (enum machine_event)e);
                        int r = fsm_step((enum machine_state)s, (enum machine_event)e, &res);

                        if (want < 0) {
                                if (r != -EPERM)
                                        fprintf(stderr, "  %s + %s should be illegal\n",
                                                machine_state_name((enum machine_state)s),
                                                machine_event_name((enum machine_event)e));
                                CHECK_EQ(r, -EPERM);
                        } else {
                                CHECK_EQ(r, 0);
                                CHECK_EQ(res.to, want);
                                n_legal++;
                        }
                }
        CHECK_EQ(n_legal, sizeof(legal) / sizeof(legal[0]));
}

TEST(fsm_sessions_end_when_leaving_enrollment)
{
        struct fsm_result res;

        CHECK_EQ(fsm_step(MS_REGISTERED, ME_BOOT, &res), 0);
        CHECK(res.actions & MA_END_SESSION);
        CHECK_EQ(fsm_step(MS_DISCOVERED, ME_REGISTER, &res), 0);
        CHECK(res.actions & MA_OPEN_SESSION);
        CHECK(res.actions & MA_AUTO_APPROVE);
        CHECK_EQ(fsm_step(MS_APPROVED, ME_REGISTER, &res), 0);
        CHECK(!(res.actions & MA_AUTO_APPROVE));
        CHECK_EQ(fsm_step(MS_IMAGING, ME_INSTALL_DONE, &res), 0);
        CHECK(res.actions & MA_END_SESSION);
        CHECK(!fsm_is_enrolling(MS_IMAGED));
        CHECK(fsm_is_enrolling(MS_IMAGING));
}

TEST(fsm_every_waiting_state_has_a_deadline)
{
        const struct lifecycle_timeouts t = { .enroll_s = 1800, .agent_s = 300, .imaging_s = 7200, .imaged_s = 1800,
                                              .join_s = 1800 };

        for (int s = 0; s < _MS_MAX; s++) {
                int64_t d = fsm_deadline((enum machine_state)s, &t, 1000, 1000);

                if (s == MS_READY || s == MS_FAILED || s == MS_RETIRED)
                        CHECK_EQ(d, 0);
                else
                        CHECK(d > 1000);
        }
        CHECK_EQ(fsm_deadline(MS_DISCOVERED, &t, 1000, 5000), 2800);
        /* agent states: refreshed by the agent's calls */
        CHECK_EQ(fsm_deadline(MS_REGISTERED, &t, 1000, 5000), 5300);
        /* imaging: liveness, but never past the imaging timeout */
        CHECK_EQ(fsm_deadline(MS_IMAGING, &t, 1000, 5000), 5300);
        CHECK_EQ(fsm_deadline(MS_IMAGING, &t, 1000, 8000), 8200);
        CHECK_EQ(fsm_deadline(MS_JOINING, &t, 1000, 9999), 2800);
}

TEST(fsm_names_roundtrip)
{
        for (int s = 0; s < _MS_MAX; s++)
                CHECK_EQ(machine_state_from_name(machine_state_name((enum machine_state)s)), s);
        CHECK(machine_state_from_name("bogus") < 0);
}

TEST(fsm_no_cluster_moves_imaged_to_ready)
{
        struct fsm_result res;

        CHECK_STREQ(machine_event_name(ME_NO_CLUSTER), "no-cluster");
        CHECK_EQ(fsm_step(MS_IMAGED, ME_NO_CLUSTER, &res), 0);
        CHECK_EQ(res.to, MS_READY);
        CHECK_EQ(res.actions, MA_NONE);
        CHECK_EQ(fsm_step(MS_IMAGING, ME_NO_CLUSTER, &res), -EPERM);
        CHECK_EQ(fsm_step(MS_JOINING, ME_NO_CLUSTER, &res), -EPERM);
}

/* test_tui_spec.c — the speculation statistics (tui/spec_stats.c) and the pane's lines
 * (tui/spec_view.c) from a hand-made event stream whose totals are worked out below. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "spec_view.h"

/* The text of the first line of v that contains key, or NULL. */
static const char *find_line(const styled_text *v, const char *key) {
    static char buf[512];
    for (int i = 0; i < v->n_lines; i++)
        if (strstr(styled_line_text(v, i, buf, sizeof buf), key)) return buf;
    return NULL;
}

static ss_step step(int proposed, int accepted, double draft, double verify, double calibrate) {
    ss_step s = {.proposed = proposed, .accepted = accepted, .emitted = accepted + 1,
                 .ms_draft = draft, .ms_verify = verify, .ms_calibrate = calibrate};
    for (int i = 0; i < accepted; i++) s.outcome[i] = 1;
    return s;
}

int main(void) {
    bool unicode = setlocale(LC_ALL, "C.UTF-8") && locale_is_utf8();
    spec_stats s;
    spec_stats_init(&s);
    ss_params p;
    ss_params_default(&p);
    p.k = 3;
    styled_text v;
    styled_init(&v);

    spec_view_build(&v, &s, &p, "model", 60, false);
    CHECK(find_line(&v, "no run yet") != NULL);
    CHECK(find_line(&v, "k 3, draft model, EasySpec off") != NULL);

    /* A speculative run: two steps arrive, then its DONE. */
    spec_stats_begin(&s, &p, true);
    ss_step a = step(3, 2, 1.0, 2.0, 0.0), b = step(3, 3, 1.0, 2.0, 1.0);
    spec_stats_step(&s, &a);
    spec_stats_step(&s, &b);
    spec_run *r = &s.run;
    CHECK(r->live && r->speculative && r->steps == 2 && r->proposed == 6 && r->accepted == 5 && r->emitted == 7);
    CHECK(r->pos_proposed[0] == 2 && r->pos_accepted[0] == 2 && r->pos_accepted[2] == 1 && r->pos_proposed[2] == 2);
    CHECK_NEAR(r->tokens_per_s, 7 / 7e-3, 1e-9); /* 7 tokens in 7 ms of steps */
    CHECK_NEAR(r->mean_accepted_length, 3.5, 1e-12);
    CHECK_NEAR(spec_run_acceptance(r), 5.0 / 6, 1e-12);
    spec_view_build(&v, &s, &p, "model", 60, false);
    CHECK(find_line(&v, "0.833 (5/6)") != NULL);
    CHECK(find_line(&v, "running") != NULL);
    CHECK(find_line(&v, "pos 3") && strstr(find_line(&v, "pos 3"), "0.500 (1/2)"));
    CHECK(find_line(&v, "pos 4") == NULL); /* k = 3: three positions */
    CHECK(find_line(&v, "not measured yet") != NULL);
    CHECK(find_line(&v, "29/57/14%") != NULL); /* 2 : 4 : 1 ms */

    ss_stats done = {.generated = 8, .steps = 2, .tokens_per_s = 120, .has_draft = true, .k = 3, .proposed = 6,
                     .accepted = 5, .mean_accepted_length = 3.5, .ms_draft = 2, .ms_verify = 4, .ms_calibrate = 1,
                     .pos_proposed = {2, 2, 2}, .pos_accepted = {2, 2, 1}};
    spec_stats_done(&s, &done, SS_OK);
    CHECK(!r->live && r->tokens_per_s == 120 && r->generated == 8);
    CHECK(s.easyspec_off.valid && !s.easyspec_on.valid && s.easyspec_off.tokens_per_s == 120);
    CHECK(spec_stats_speedup(&s, r) < 0); /* no plain rate yet */

    /* A plain run measures the rate speculative runs are compared with. */
    ss_params plain = p;
    plain.k = 0;
    spec_stats_begin(&s, &plain, true);
    CHECK(!s.run.speculative);
    ss_step c = step(0, 0, 0, 5, 0);
    spec_stats_step(&s, &c);
    ss_stats pd = {.generated = 10, .steps = 9, .tokens_per_s = 60};
    spec_stats_done(&s, &pd, SS_OK);
    CHECK(s.plain_measured && s.plain_tokens_per_s == 60 && strcmp(s.plain_how, "a plain run") == 0);
    CHECK_NEAR(spec_stats_speedup(&s, &s.easyspec_off), 2.0, 1e-12);

    /* An EasySpec run fills the other side; /baseline replaces the plain rate. */
    ss_params es = p;
    es.easyspec = 2;
    spec_stats_begin(&s, &es, true);
    ss_step d = step(3, 1, 0.5, 2.0, 0.5);
    spec_stats_step(&s, &d);
    ss_stats ed = {.generated = 3, .steps = 1, .tokens_per_s = 90, .has_draft = true, .k = 3, .proposed = 3,
                   .accepted = 1, .mean_accepted_length = 2, .ms_draft = 0.5, .ms_verify = 2, .ms_calibrate = 0.5,
                   .pos_proposed = {1, 1, 1}, .pos_accepted = {1, 0, 0}};
    spec_stats_done(&s, &ed, SS_ESTOPPED); /* stopped runs count too */
    CHECK(s.easyspec_on.valid && s.easyspec_on.easyspec == 2 && s.easyspec_off.tokens_per_s == 120);
    spec_stats_set_plain(&s, 45, "/baseline");
    CHECK_NEAR(spec_stats_speedup(&s, &s.easyspec_on), 2.0, 1e-12);
    spec_view_build(&v, &s, &es, "model", 60, false);
    CHECK(find_line(&v, "stopped") != NULL);
    CHECK(find_line(&v, "2.00x over plain 45.0 tok/s (/baseline)") != NULL);
    const char *row = find_line(&v, "  tokens/s");
    CHECK(row && strstr(row, "120.0") && strstr(row, "90.0")); /* off and on side by side */
    CHECK(find_line(&v, "on (G=2)") != NULL);
    CHECK(find_line(&v, "over 4 steps") != NULL); /* the session's sparkline covers every step */
    char sum[256];
    spec_view_summary(&s, sum, sizeof sum);
    CHECK(strstr(sum, "k=3, acceptance 0.333 (1/3)") && strstr(sum, "speedup 2.00x"));

    /* A failed run records nothing; a target change forgets the plain rate and the comparison. */
    spec_stats_begin(&s, &p, true);
    ss_stats bad = {.generated = 5, .has_draft = true, .tokens_per_s = 1};
    spec_stats_done(&s, &bad, SS_EIO);
    CHECK(s.easyspec_off.tokens_per_s == 120);
    spec_stats_models_changed(&s, false);
    CHECK(s.plain_measured && !s.easyspec_off.valid && !s.easyspec_on.valid);
    spec_stats_models_changed(&s, true);
    CHECK(!s.plain_measured);
    CHECK(s.n_steps == 4 && s.session_proposed == 9 && s.session_accepted == 6);

    /* A script's generations: k unknown, positions shown where steps reached. */
    spec_stats_begin_script(&s);
    ss_step e = step(2, 1, 1, 1, 0);
    spec_stats_step(&s, &e);
    spec_stats_end_script(&s, SS_OK, 3);
    spec_view_build(&v, &s, &p, "model", 60, unicode);
    CHECK(find_line(&v, unicode ? "#5 done (script) · 3 tokens · 1 step" : "#5 done (script), 3 tokens, 1 step") != NULL);
    CHECK(find_line(&v, "pos 2") != NULL && find_line(&v, "pos 3") == NULL);

    styled_free(&v);
    spec_stats_free(&s);
    return check_done();
}

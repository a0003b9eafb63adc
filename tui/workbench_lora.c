/* workbench_lora.c — LoRA adapters in the interface and the REPL: the --lora adapters loaded when
 * the session opens, and /lora load, scale, on, off, unload and list. Adapters change what the
 * target computes, so every change waits until no generation or script runs (the worker thread
 * reads them during a forward). Loading also computes the norms the lora pane draws: the first
 * call reads each targeted W0 from the checkpoint, which for a large model takes a moment, once. */
#include <stdio.h>

#include "workbench.h"

static ss_model *target(workbench *wb) { return wb->session ? ss_session_target(wb->session) : NULL; }

ss_lora *workbench_lora_selected(workbench *wb) {
    ss_model *m = target(wb);
    return m && ss_model_lora_count(m) ? ss_model_lora(m, ss_model_lora_count(m) - 1) : NULL;
}

/* One line on an adapter: name, rank, s, scale, state, and how much of the model it targets. */
static void describe(workbench *wb, const char *verb, ss_lora *a) {
    const ss_lora_norm *rows;
    int n = 0;
    ss_error err = {0};
    double largest = 0;
    if (ss_lora_norms(a, &rows, &n, &err) == SS_OK)
        for (int i = 0; i < n; i++)
            if (rows[i].rel > largest) largest = rows[i].rel;
    workbench_say(wb, OUT_INFO, "LoRA %s %s: r %d, s %.4g, scale %g, %s%s; %d projections, largest |s*BA|/|W0| %.3g",
                  ss_lora_name(a), verb, ss_lora_rank(a), ss_lora_scaling(a), ss_lora_scale(a),
                  ss_lora_enabled(a) ? "on" : "off", ss_model_lora_merged(target(wb)) ? ", merged" : "", n, largest);
    if (err.msg[0]) workbench_say(wb, OUT_ERROR, "LoRA %s: norms: %s", ss_lora_name(a), err.msg);
    wb->changed = true;
}

ss_status workbench_lora_open(workbench *wb, ss_error *err) {
    ss_status st = lora_args_load(&wb->loras, target(wb), err);
    for (int i = 0; st == SS_OK && i < ss_model_lora_count(target(wb)); i++)
        describe(wb, "loaded", ss_model_lora(target(wb), i));
    return st;
}

/* The selected adapter, when the state may change now. */
static ss_lora *changeable(workbench *wb, const char *what) {
    const char *why = workbench_refusal(wb);
    ss_lora *a = why ? NULL : workbench_lora_selected(wb);
    if (why) workbench_say(wb, OUT_ERROR, "/lora %s: %s", what, why);
    else if (!a) workbench_say(wb, OUT_ERROR, "/lora %s: no adapter is loaded (/lora load DIR)", what);
    return a;
}

bool workbench_lora_load(workbench *wb, const char *dir, float scale) {
    const char *why = workbench_refusal(wb);
    if (why) {
        workbench_say(wb, OUT_ERROR, "/lora load: %s", why);
        return false;
    }
    ss_lora *a;
    ss_error err = {0};
    if (ss_lora_load(target(wb), dir, scale, &a, &err)) {
        workbench_say(wb, OUT_ERROR, "/lora load: %s", err.msg);
        return false;
    }
    char base[64];
    snprintf(base, sizeof base, "%s", ss_lora_name(a));
    for (int n = 2; ss_model_lora_find(target(wb), ss_lora_name(a)) != a; n++) { /* the same folder twice */
        char name[80];
        snprintf(name, sizeof name, "%.56s#%d", base, n);
        ss_lora_set_name(a, name);
    }
    describe(wb, "loaded", a);
    return true;
}

bool workbench_lora_scale(workbench *wb, float scale) {
    ss_lora *a = changeable(wb, "scale");
    if (a) ss_lora_set_scale(a, scale), describe(wb, "scaled", a);
    return a != NULL;
}

bool workbench_lora_enable(workbench *wb, bool on) {
    ss_lora *a = changeable(wb, on ? "on" : "off");
    if (a) ss_lora_set_enabled(a, on), describe(wb, on ? "switched on" : "switched off", a);
    return a != NULL;
}

bool workbench_lora_unload(workbench *wb) {
    ss_lora *a = changeable(wb, "unload");
    if (!a) return false;
    workbench_say(wb, OUT_INFO, "LoRA %s unloaded", ss_lora_name(a));
    ss_lora_unload(a);
    wb->changed = true;
    return true;
}

void workbench_lora_list(workbench *wb) {
    ss_model *m = target(wb);
    if (!m || !ss_model_lora_count(m)) workbench_say(wb, OUT_INFO, "no LoRA adapter is loaded (/lora load DIR [SCALE])");
    for (int i = 0; m && i < ss_model_lora_count(m); i++) {
        ss_lora *a = ss_model_lora(m, i);
        workbench_say(wb, OUT_INFO, "%s %s (%s): r %d, s %.4g, scale %g, %s", i == ss_model_lora_count(m) - 1 ? "*" : " ",
                      ss_lora_name(a), ss_lora_dir(a), ss_lora_rank(a), ss_lora_scaling(a), ss_lora_scale(a),
                      ss_lora_enabled(a) ? "on" : "off");
    }
}

bool workbench_lora_merge(workbench *wb, bool on) {
    const char *why = workbench_refusal(wb);
    if (why) {
        workbench_say(wb, OUT_ERROR, "/lora merge: %s", why);
        return false;
    }
    ss_error err = {0};
    if (ss_model_lora_merge(target(wb), on, &err)) {
        workbench_say(wb, OUT_ERROR, "/lora merge: %s", err.msg);
        return false;
    }
    workbench_say(wb, OUT_INFO, on ? "LoRA adapters merged into the weights: no cost per token; a change refolds them"
                                   : "LoRA adapters unmerged: applied after each projection");
    wb->changed = true;
    return true;
}

/* pane_chat.c — the conversation, each generated token coloured by where it came from: a draft
 * token the target accepted, or a token of the target itself (a correction or the bonus token). */
#include <stdio.h>

#include "app.h"

static theme_role chat_role(char source) {
    switch (source) {
    case SRC_USER: return TH_USER;
    case SRC_DRAFT: return TH_DRAFT;
    case SRC_TARGET: return TH_TARGET;
    case SRC_ERROR: return TH_ERROR;
    default: return TH_NOTICE;
    }
}

static void legend(WINDOW *w, int width) {
    static const struct {
        const wchar_t *text;
        theme_role role;
    } items[] = {{L"legend: ", TH_LABEL}, {L"draft accepted", TH_DRAFT}, {L"  ", TH_NORMAL},
                 {L"target (correction/bonus)", TH_TARGET}, {L"  ", TH_NORMAL}, {L"> you", TH_USER}};
    int col = 0;
    for (size_t i = 0; i < sizeof items / sizeof *items; i++)
        col += pane_put(w, 1, 1 + col, width - col, items[i].text, (int)wcslen(items[i].text), items[i].role);
}

void pane_chat_draw(tui *ui, pane_state *ps) {
    WINDOW *w = ps->win;
    int h, wd;
    getmaxyx(w, h, wd);
    int width = wd - 2, view = h - 3;
    transcript *t = &ui->wb.chat;
    char note[48] = "";
    if (transcript_empty(t)) {
        ps->content_lines = ps->view_lines = 0;
        pane_frame(w, layout_pane_title(PANE_CHAT), ui->focus == PANE_CHAT, NULL);
        legend(w, width);
        pane_message(w, "Type a message below and press Enter; /help lists the commands.", TH_NOTICE);
        return;
    }
    int lines = transcript_wrap(t, width);
    if (ps->scroll > 0 && lines > ps->content_lines) ps->scroll += lines - ps->content_lines; /* stay put */
    ps->content_lines = lines;
    ps->view_lines = view;
    ps->scroll = pane_clamp_scroll(ps->scroll, lines, view);
    int first = lines - view - ps->scroll;
    if (first < 0) first = 0;
    if (ps->scroll > 0) snprintf(note, sizeof note, "%d more lines below", ps->scroll);
    pane_frame(w, layout_pane_title(PANE_CHAT), ui->focus == PANE_CHAT, note);
    legend(w, width);
    pane_draw_transcript(w, t, 2, 1, width, first, view, chat_role);
}

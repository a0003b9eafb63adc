/* app.c — the interface's loop: wait for a key or the next frame, hand keys to the focused pane
 * or the command line, drain the workbench's events, draw at most 30 frames a second.
 *
 * Generation never waits for the interface: the worker only blocks when its queue of 4096 events
 * is full, and the loop drains it at least every frame while a job runs. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <readline/readline.h>

#include <math.h>

#include "app.h"
#include "commands_console.h"
#include "console_input.h"
#include "history_file.h"

#define FRAME_MS (1000.0 / 30)
#define CTRL_KEY(c) ((c) & 0x1f)

static tui *active; /* readline's callbacks carry no user pointer */
static volatile sig_atomic_t got_sigint, got_sigterm;

static void on_signal(int sig) {
    if (sig == SIGINT) got_sigint = 1;
    else got_sigterm = 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ layout and windows */

static void free_windows(tui *ui) {
    for (int i = 0; i < N_PANES; i++) {
        if (ui->panes[i].win) delwin(ui->panes[i].win);
        ui->panes[i].win = NULL;
    }
    if (ui->status) delwin(ui->status);
    if (ui->overlay) delwin(ui->overlay);
    ui->status = ui->overlay = NULL;
}

static void relayout(tui *ui) {
    getmaxyx(stdscr, ui->rows, ui->cols);
    free_windows(ui);
    layout_compute(&ui->lay, ui->rows, ui->cols, ui->zoom);
    for (int i = 0; i < N_PANES; i++) {
        const rect *r = &ui->lay.pane[i];
        if (ui->lay.visible[i]) ui->panes[i].win = newwin(r->h, r->w, r->y, r->x);
    }
    if (!ui->lay.too_small) ui->status = newwin(1, ui->cols, ui->lay.status.y, 0);
    if (ui->focus < 0 || !ui->lay.visible[ui->focus]) ui->focus = PANE_CONSOLE;
    clearok(curscr, TRUE);
    ui->dirty = true;
}

/* ------------------------------------------------------------------ drawing */

static void draw_status(tui *ui) {
    WINDOW *w = ui->status;
    theme_set(w, TH_STATUS);
    werase(w);
    for (int x = 0; x < ui->cols; x++) mvwaddch(w, 0, x, ' ');
    char desc[256], left[400];
    workbench_describe(&ui->wb, desc, sizeof desc);
    const char *state = ui->wb.job == JOB_CHAT       ? "generating (Ctrl-C stops)"
                        : ui->wb.job == JOB_BASELINE ? "measuring plain decoding (Ctrl-C stops)"
                        : lua_runner_busy(&ui->wb.lua) ? "script running (Ctrl-C interrupts)"
                                                       : "idle";
    snprintf(left, sizeof left, " %s | %s%s", state, desc,
             ui->lay.cramped ? " | smaller than 80x24: F3-F5 show the other panes" : "");
    const wchar_t *keys = ui->unicode ? L"F1 help · Tab focus · F2-F6 zoom · F10 quit " : L"F1 help | Tab focus | F2-F6 zoom | F10 quit ";
    int keys_w = wcswidth(keys, wcslen(keys));
    mvwaddnstr(w, 0, 0, left, ui->cols);
    if ((int)strlen(left) + keys_w + 2 <= ui->cols) mvwaddwstr(w, 0, ui->cols - keys_w, keys);
    theme_set(w, TH_NORMAL);
    wnoutrefresh(w);
}

static const char *const help_lines[] = {
    "Keys",
    "  Enter          send a message, or run a /command",
    "  Tab            complete a command (focus the next pane when the line is empty)",
    "  Shift-Tab      focus the previous pane",
    "  F2 .. F6       zoom chat, speculation, timeline, lora, console (again: back)",
    "  PgUp / PgDn    scroll the focused pane; Shift-Up / Shift-Down a line",
    "  mouse wheel    scroll the pane under the pointer; a click focuses it",
    "  + - space      (lora pane focused) the selected adapter's scale by 0.1, on/off",
    "  Up / Down      command history (kept across runs); Ctrl-R searches it",
    "  Ctrl-C         stop the generation or the script (else clear the line)",
    "  Ctrl-L         redraw        F1 or ? (empty line)  this help",
    "  F10, Ctrl-Q    quit          Esc  leave a zoom or this help",
    "",
    "Chat colours: draft accepted | target (correction or bonus) | > you",
    "",
    "Commands (/help prints them in the console)",
};

static void draw_help(tui *ui) {
    int n_keys = (int)(sizeof help_lines / sizeof *help_lines);
    int h = n_keys + console_n_commands + 4, w = 100;
    if (h > ui->rows - 2) h = ui->rows - 2;
    if (w > ui->cols - 2) w = ui->cols - 2;
    if (h < 5 || w < 20) return;
    ui->overlay = newwin(h, w, (ui->rows - h) / 2, (ui->cols - w) / 2);
    WINDOW *o = ui->overlay;
    werase(o);
    pane_frame(o, "help: any key closes", true, NULL);
    int row = 1;
    for (int i = 0; i < n_keys && row < h - 1; i++, row++) {
        theme_set(o, i == 0 || help_lines[i][0] == 'C' ? TH_VALUE : TH_NORMAL);
        mvwaddnstr(o, row, 2, help_lines[i], w - 4);
    }
    theme_set(o, TH_NORMAL);
    for (int i = 0; i < console_n_commands && row < h - 1; i++, row++) {
        char line[160];
        const console_command *c = &console_commands[i];
        snprintf(line, sizeof line, "  %s %s", c->name, c->args);
        mvwprintw(o, row, 2, "%-.*s", w - 4, line);
        int x = 40;
        if (x < w - 4) mvwaddnstr(o, row, x, c->help, w - 2 - x);
    }
    wnoutrefresh(o);
}

static void draw(tui *ui) {
    if (ui->overlay) {
        delwin(ui->overlay);
        ui->overlay = NULL;
    }
    if (ui->lay.too_small) {
        erase();
        mvaddnstr(0, 0, "specscope: the terminal is too small (80x24 wanted); F10 quits", ui->cols);
        refresh();
        return;
    }
    static void (*const drawers[N_PANES])(tui *, pane_state *) = {pane_chat_draw, pane_spec_draw, pane_timeline_draw,
                                                                   pane_lora_draw, pane_console_draw};
    ui->cursor_y = ui->cursor_x = -1;
    for (int i = 0; i < N_PANES; i++) {
        if (!ui->panes[i].win) continue;
        werase(ui->panes[i].win);
        drawers[i](ui, &ui->panes[i]);
        wnoutrefresh(ui->panes[i].win);
    }
    draw_status(ui);
    if (ui->help) draw_help(ui);
    if (!ui->help && ui->cursor_y >= 0) {
        curs_set(1);
        /* the cursor goes where the last refreshed window leaves it: the command line */
        WINDOW *c = ui->panes[PANE_CONSOLE].win;
        int by, bx;
        getbegyx(c, by, bx);
        wmove(c, ui->cursor_y - by, ui->cursor_x - bx);
        wnoutrefresh(c);
    } else {
        curs_set(0);
    }
    doupdate();
    ui->dirty = false;
}

/* ------------------------------------------------------------------ workbench and readline hooks */

static void print_hook(void *ud, out_kind kind, const char *text) { pane_console_print(ud, kind, text); }

static void on_line(char *line) {
    if (!line) return; /* Ctrl-D on an empty line: not a way out of the interface */
    history_remember(line);
    char echo[4096];
    snprintf(echo, sizeof echo, "%s%s", active->unicode ? "› " : "> ", line);
    pane_console_print(active, OUT_ECHO, echo);
    console_execute(&active->wb, line);
    free(line);
    active->dirty = true;
}

static void on_matches(char **matches, int n) {
    char buf[1024];
    size_t used = 0;
    for (int i = 0; i < n && used + 2 < sizeof buf; i++) {
        int k = snprintf(buf + used, sizeof buf - used, "%s%s", i ? "  " : "", matches[i]);
        if (k < 0) break;
        used += (size_t)k;
    }
    pane_console_print(active, OUT_INFO, buf);
}

static void on_redisplay(void) { active->dirty = true; }

/* ------------------------------------------------------------------ keys and mouse */

static void scroll_pane(tui *ui, int id, int lines) {
    pane_state *p = &ui->panes[id];
    bool from_bottom = id == PANE_CHAT || id == PANE_CONSOLE;
    p->scroll = pane_clamp_scroll(p->scroll + (from_bottom ? lines : -lines), p->content_lines, p->view_lines);
    ui->dirty = true;
}

static void cycle_focus(tui *ui, int step) {
    for (int i = 1; i <= N_PANES; i++) {
        int id = ((ui->focus + step * i) % N_PANES + N_PANES) % N_PANES;
        if (ui->lay.visible[id]) {
            ui->focus = id;
            break;
        }
    }
    ui->dirty = true;
}

static void set_zoom(tui *ui, int id) {
    ui->zoom = ui->zoom == id ? -1 : id;
    ui->focus = ui->zoom >= 0 ? ui->zoom : ui->focus;
    relayout(ui);
}

static void on_mouse(tui *ui) {
    MEVENT ev;
    if (getmouse(&ev) != OK) return;
    int id = layout_pane_at(&ui->lay, ev.y, ev.x);
    if (id < 0) return;
    if (ev.bstate & BUTTON4_PRESSED) scroll_pane(ui, id, 3);
#ifdef BUTTON5_PRESSED
    else if (ev.bstate & BUTTON5_PRESSED) scroll_pane(ui, id, -3);
#endif
    else if (ev.bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED)) {
        ui->focus = id;
        ui->dirty = true;
    }
}

static void interrupt(tui *ui) {
    if (workbench_stop(&ui->wb)) pane_console_print(ui, OUT_INFO, "stopping...");
    else console_input_clear();
}

/* With the lora pane focused and an empty command line, + and - step the selected adapter's scale
 * by 0.1 and space switches it on or off (the same as /lora scale, on, off). */
static bool lora_key(tui *ui, int key) {
    if (ui->focus != PANE_LORA || !console_input_empty() || (key != L'+' && key != L'-' && key != L' ')) return false;
    ss_lora *a = workbench_lora_selected(&ui->wb);
    if (!a) return false;
    if (key == L' ') workbench_lora_enable(&ui->wb, !ss_lora_enabled(a));
    else workbench_lora_scale(&ui->wb, roundf((ss_lora_scale(a) + (key == L'+' ? 0.1f : -0.1f)) * 10.0f) / 10.0f);
    return true;
}

static bool quit_key(int key, bool is_code) {
    return (is_code && key == KEY_F(10)) || (!is_code && key == CTRL_KEY('q'));
}

static void on_key(tui *ui, int key, bool is_code) {
    if (quit_key(key, is_code)) {
        ui->wb.quit = true;
        return;
    }
    if (is_code && key == KEY_RESIZE) {
        relayout(ui);
        return;
    }
    if (ui->help) { /* any other key closes the overlay */
        ui->help = false;
        ui->dirty = true;
        return;
    }
    if (is_code) {
        if (key == KEY_F(1)) ui->help = true;
        else if (key >= KEY_F(2) && key <= KEY_F(6)) set_zoom(ui, key - KEY_F(2));
        else if (key == KEY_BTAB) cycle_focus(ui, -1);
        else if (key == KEY_PPAGE) scroll_pane(ui, ui->focus, ui->panes[ui->focus].view_lines - 1);
        else if (key == KEY_NPAGE) scroll_pane(ui, ui->focus, -(ui->panes[ui->focus].view_lines - 1));
        else if (key == KEY_SR) scroll_pane(ui, ui->focus, 1);
        else if (key == KEY_SF) scroll_pane(ui, ui->focus, -1);
        else if (key == KEY_MOUSE) on_mouse(ui);
        else console_input_key(key);
        ui->dirty = true;
        return;
    }
    switch (key) {
    case CTRL_KEY('c'): interrupt(ui); break;
    case CTRL_KEY('l'): clearok(curscr, TRUE); break;
    case 27: /* Esc: leave the zoom; never handed to readline, whose meta prefix would wait */
        if (ui->zoom >= 0) set_zoom(ui, ui->zoom);
        break;
    case L'\t':
        if (console_input_empty()) cycle_focus(ui, 1);
        else console_input_char(L'\t');
        break;
    case L'?':
        if (console_input_empty()) ui->help = true;
        else console_input_char(L'?');
        break;
    default:
        if (!lora_key(ui, key)) console_input_char((wchar_t)key);
    }
    ui->dirty = true;
}

static void read_keys(tui *ui) {
    wint_t ch;
    int r;
    while (!ui->wb.quit && (r = wget_wch(stdscr, &ch)) != ERR) on_key(ui, (int)ch, r == KEY_CODE_YES);
}

/* ------------------------------------------------------------------ the loop */

static void start_curses(tui *ui) {
    console_input_prepare();
    initscr();
    raw(); /* Ctrl-C, Ctrl-Q and Ctrl-Z arrive as keys */
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    mousemask(BUTTON1_PRESSED | BUTTON1_CLICKED | BUTTON4_PRESSED
#ifdef BUTTON5_PRESSED
                  | BUTTON5_PRESSED
#endif
              ,
              NULL);
    mouseinterval(0);
    theme_init();
    history_load();
    console_input_start(on_line, on_matches, on_redisplay);
    rl_attempted_completion_function = console_completion;
    relayout(ui);
}

static void stop_curses(tui *ui) {
    console_input_stop();
    free_windows(ui);
    endwin();
}

bool app_init(tui *ui, const gen_options *o) {
    memset(ui, 0, sizeof *ui);
    ui->zoom = -1;
    ui->focus = PANE_CONSOLE;
    ui->unicode = locale_is_utf8();
    transcript_init(&ui->console);
    styled_init(&ui->spec);
    styled_init(&ui->timeline);
    styled_init(&ui->lora);
    workbench_view view = {.print = print_hook, .ud = ui};
    return workbench_init(&ui->wb, o, &view);
}

void app_free(tui *ui) {
    workbench_free(&ui->wb);
    transcript_free(&ui->console);
    styled_free(&ui->spec);
    styled_free(&ui->timeline);
    styled_free(&ui->lora);
}

int app_run(tui *ui) {
    active = ui;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    start_curses(ui);
    pane_console_print(ui, OUT_INFO, "specscope: type a message, or /help. F1 shows the keys.");
    double last_frame = 0;
    while (!ui->wb.quit && !got_sigterm) {
        bool busy = workbench_busy(&ui->wb);
        double wait = ui->dirty || busy ? last_frame + FRAME_MS - now_ms() : 500;
        if (wait < 0) wait = 0;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&pfd, 1, (int)(wait + 0.5)) < 0 && errno != EINTR) break;
        if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) break; /* the terminal went away */
        read_keys(ui);
        if (got_sigint) {
            got_sigint = 0;
            interrupt(ui);
        }
        if (workbench_pump(&ui->wb) || ui->wb.changed) ui->dirty = true;
        ui->wb.changed = false;
        if (ui->dirty && now_ms() - last_frame >= FRAME_MS) {
            draw(ui);
            last_frame = now_ms();
        }
    }
    stop_curses(ui);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    active = NULL;
    return 0;
}

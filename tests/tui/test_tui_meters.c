/* test_tui_meters.c — bars, sparklines, proportional splits and step buckets (tui/meters.c)
 * against values worked out by hand. */
#include <math.h>
#include <wchar.h>

#include "check.h"
#include "meters.h"

static void test_bars(void) {
    wchar_t b[64];
    CHECK(meter_bar(b, 10, 0.5, true) == 5);
    CHECK(wcscmp(b, L"█████·····") == 0);
    CHECK(meter_bar(b, 10, 0.55, true) == 6); /* 5.5 cells: five full and a half block */
    CHECK(wcscmp(b, L"█████▌····") == 0);
    CHECK(meter_bar(b, 8, 1.0 / 64, true) == 1); /* one eighth of one cell */
    CHECK(wcscmp(b, L"▏·······") == 0);
    CHECK(meter_bar(b, 4, 0, true) == 0 && wcscmp(b, L"····") == 0);
    CHECK(meter_bar(b, 4, 1, true) == 4 && wcscmp(b, L"████") == 0);
    CHECK(meter_bar(b, 4, 7.5, true) == 4);  /* clamped */
    CHECK(meter_bar(b, 4, -2, true) == 0);   /* clamped */
    CHECK(meter_bar(b, 4, NAN, true) == 0);  /* not a number shows as empty */
    CHECK(meter_bar(b, 10, 0.34, false) == 3 && wcscmp(b, L"###.......") == 0);
    CHECK(meter_bar(b, 0, 0.5, true) == 0 && b[0] == 0);
}

static void test_sparkline(void) {
    wchar_t s[16];
    double v[] = {0, 0.5, 1, -1, 0.99, 0.124};
    meter_sparkline(s, v, 6, true);
    CHECK(wcscmp(s, L"▁▅█ █▁") == 0);
    meter_sparkline(s, v, 6, false);
    CHECK(wcscmp(s, L"_-# #_") == 0);
    meter_sparkline(s, v, 0, true);
    CHECK(s[0] == 0);
}

static void test_split(void) {
    int c[3];
    meter_split((double[]){1, 2, 1}, 3, 8, c);
    CHECK(c[0] == 2 && c[1] == 4 && c[2] == 2);
    meter_split((double[]){3, 0, 1}, 3, 7, c); /* 5.25, 0, 1.75: the largest remainder gets the 7th */
    CHECK(c[0] == 5 && c[1] == 0 && c[2] == 2);
    meter_split((double[]){1, 1, 1}, 3, 10, c);
    CHECK(c[0] + c[1] + c[2] == 10 && c[0] >= 3 && c[1] >= 3 && c[2] >= 3);
    meter_split((double[]){0, 0, 0}, 3, 10, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    meter_split((double[]){-5, 2, 0}, 3, 6, c); /* negative shares count as none */
    CHECK(c[0] == 0 && c[1] == 6 && c[2] == 0);
}

static void test_buckets(void) {
    unsigned char acc[] = {1, 2, 3, 0}, prop[] = {2, 2, 4, 0};
    double out[8];
    CHECK(meter_buckets(acc, prop, 4, 8, out) == 4);
    CHECK_NEAR(out[0], 0.5, 1e-12);
    CHECK_NEAR(out[1], 1.0, 1e-12);
    CHECK_NEAR(out[2], 0.75, 1e-12);
    CHECK(out[3] == -1); /* a plain step proposes nothing: a gap */
    CHECK(meter_buckets(acc, prop, 4, 2, out) == 2);
    CHECK_NEAR(out[0], 3.0 / 4, 1e-12);
    CHECK_NEAR(out[1], 3.0 / 4, 1e-12);
    CHECK(meter_buckets(acc, prop, 4, 3, out) == 3); /* steps [0,1) [1,2) [2,4) */
    CHECK_NEAR(out[2], 3.0 / 4, 1e-12);
    CHECK(meter_buckets(acc, prop, 0, 3, out) == 0);
}

int main(void) {
    test_bars();
    test_sparkline();
    test_split();
    test_buckets();
    return check_done();
}

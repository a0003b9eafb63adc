/* meters.c — bars, sparklines and proportional splits. */
#include <math.h>

#include "meters.h"

static double clamp01(double x) { return x != x ? 0 : x < 0 ? 0 : x > 1 ? 1 : x; }

int meter_bar(wchar_t *out, int width, double fraction, bool unicode) {
    static const wchar_t eighths[] = L" ▏▎▍▌▋▊▉";
    if (width < 0) width = 0;
    double f = clamp01(fraction);
    int filled;
    if (unicode) {
        long units = lround(f * width * 8); /* eighth-cells */
        int full = (int)(units / 8), part = (int)(units % 8);
        for (int i = 0; i < width; i++) out[i] = i < full ? L'█' : L'·';
        if (part && full < width) out[full] = eighths[part];
        filled = full + (part > 0);
    } else {
        filled = (int)lround(f * width);
        for (int i = 0; i < width; i++) out[i] = i < filled ? L'#' : L'.';
    }
    out[width] = 0;
    return filled;
}

void meter_sparkline(wchar_t *out, const double *values, int n, bool unicode) {
    static const wchar_t blocks[] = L"▁▂▃▄▅▆▇█";
    static const wchar_t ascii[] = L"_.,:-=*#";
    const wchar_t *levels = unicode ? blocks : ascii;
    for (int i = 0; i < n; i++) {
        if (values[i] < 0) {
            out[i] = L' ';
            continue;
        }
        int level = (int)floor(clamp01(values[i]) * 8);
        out[i] = levels[level > 7 ? 7 : level];
    }
    out[n > 0 ? n : 0] = 0;
}

void meter_split(const double *parts, int n, int width, int *cells) {
    double total = 0;
    for (int i = 0; i < n; i++) total += parts[i] > 0 ? parts[i] : 0;
    for (int i = 0; i < n; i++) cells[i] = 0;
    if (total <= 0 || width <= 0) return;
    int given = 0;
    double rest[16] = {0};
    for (int i = 0; i < n && i < 16; i++) {
        double exact = (parts[i] > 0 ? parts[i] : 0) / total * width;
        cells[i] = (int)floor(exact);
        rest[i] = exact - cells[i];
        given += cells[i];
    }
    while (given < width) { /* the largest remainders get the cells left over */
        int best = 0;
        for (int i = 1; i < n && i < 16; i++)
            if (rest[i] > rest[best]) best = i;
        cells[best]++;
        rest[best] = -1;
        given++;
    }
}

int meter_buckets(const unsigned char *accepted, const unsigned char *proposed, long n, int width, double *out) {
    if (n <= 0 || width <= 0) return 0;
    int buckets = n < width ? (int)n : width;
    for (int b = 0; b < buckets; b++) {
        long from = b * n / buckets, to = (b + 1) * n / buckets;
        long acc = 0, prop = 0;
        for (long i = from; i < to; i++) {
            acc += accepted[i];
            prop += proposed[i];
        }
        out[b] = prop ? (double)acc / prop : -1;
    }
    return buckets;
}

/* meters.h — bars and sparklines as strings of wide characters: block elements in a UTF-8 locale,
 * ASCII otherwise. Pure functions; the panes add the colours. */
#ifndef SPECSCOPE_METERS_H
#define SPECSCOPE_METERS_H

#include <stdbool.h>
#include <wchar.h>

/* A bar of exactly `width` cells showing fraction (clamped to [0, 1]); with unicode the filled part
 * has eighth-cell resolution. out must hold width + 1 characters. Returns the filled cells
 * (a partial cell counts as filled). */
int meter_bar(wchar_t *out, int width, double fraction, bool unicode);

/* One character per value in [0, 1] (8 levels); a negative value is a gap (a space).
 * out must hold n + 1 characters. */
void meter_sparkline(wchar_t *out, const double *values, int n, bool unicode);

/* Splits `width` cells among n (at most 16) shares in proportion to parts[] (largest remainder, so the cells
 * always add up to width when any part is positive; all zero when none is). */
void meter_split(const double *parts, int n, int width, int *cells);

/* Averages per-step counts into at most `width` buckets, oldest first: bucket b covers steps
 * [b*n/buckets, (b+1)*n/buckets) and holds sum(accepted)/sum(proposed), or -1 when nothing was
 * proposed there. Returns the number of buckets (min(n, width)). */
int meter_buckets(const unsigned char *accepted, const unsigned char *proposed, long n, int width, double *out);

#endif

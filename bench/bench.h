/*
** bench/bench.h — helpers for benchmarks: a monotonic timer and one line per
** figure, printed beside the baseline measured in the same run:
**   <name>: <value> <unit>  baseline <name>: <value> <unit>  ratio <r>
*/
#ifndef MDW_BENCH_H
#define MDW_BENCH_H

#include <stdio.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void bench_report(const char *name, double value, const char *unit,
                                const char *base_name, double base_value)
{
    printf("%-44s %12.0f %-10s | baseline %-30s %12.0f %-10s | ratio %.2f\n", name, value, unit,
           base_name, base_value, unit, base_value > 0 ? value / base_value : 0.0);
    fflush(stdout);
}

#endif

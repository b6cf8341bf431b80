package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// summary is the distribution of a set of durations.
type summary struct {
	N                     int
	Median, P90, P99, Max time.Duration
}

// summarize returns the distribution of ds by nearest rank: the q-quantile
// is the smallest sample with at least q of the samples at or below it, so
// every figure is a measured sample. With 200 samples the p99 is the third
// largest. ds is not modified.
func summarize(ds []time.Duration) summary {
	s := summary{N: len(ds)}
	if len(ds) == 0 {
		return s
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(sorted)))) - 1
		return sorted[max(i, 0)]
	}
	s.Median, s.P90, s.P99, s.Max = rank(0.5), rank(0.9), rank(0.99), sorted[len(sorted)-1]
	return s
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// writeRow writes one row of a latency table: name, samples, median, p90,
// p99 and max in milliseconds, then any extra columns.
func writeRow(w io.Writer, name string, s summary, extra ...string) {
	fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |", name, s.N, ms(s.Median), ms(s.P90), ms(s.P99), ms(s.Max))
	for _, e := range extra {
		fmt.Fprintf(w, " %s |", e)
	}
	fmt.Fprintln(w)
}

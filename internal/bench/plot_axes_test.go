package bench

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var tickText = regexp.MustCompile(`<text class="(xtick|ytick)" x="([0-9.]+)" y="[0-9.]+"[^>]*>([^<]*)</text>`)

// parseTick reads a label such as "1.25k" back into a number.
func parseTick(t *testing.T, label string) float64 {
	t.Helper()
	mult := 1.0
	switch {
	case strings.HasSuffix(label, "k"):
		label, mult = strings.TrimSuffix(label, "k"), 1e3
	case strings.HasSuffix(label, "M"):
		label, mult = strings.TrimSuffix(label, "M"), 1e6
	}
	v, err := strconv.ParseFloat(label, 64)
	if err != nil {
		t.Fatalf("tick label %q: %v", label, err)
	}
	return v * mult
}

// TestPlotAxisLabelsSayTheTruth draws runs at several scales and reads the
// SVG's tick labels back: every y label is the value its grid line stands
// for (a quarter of the axis each), and every x label sits where its second
// falls on the time axis.
func TestPlotAxisLabelsSayTheTruth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rate    float64
		latency time.Duration
		seconds int
	}{
		{4600, 1300 * time.Microsecond, 10}, // 5k axis: 1.25k, 2.5k, 3.75k
		{42, 37 * time.Millisecond, 7},      // 50: 12.5, 37.5
		{1.1e6, 120 * time.Microsecond, 3},  // 2M; 0.2 ms: 0.05, 0.15
		{0.4, 4 * time.Second, 61},          // 0.5 msg/s; 5000 ms
	} {
		r := &Result{}
		for s := 1; s <= tc.seconds; s++ {
			r.Timeline = append(r.Timeline, Sample{At: time.Duration(s)*time.Second + 3*time.Millisecond,
				SentRate: tc.rate, RecvRate: tc.rate * 0.9, P50: tc.latency / 2, P99: tc.latency})
		}
		doc := svg(r)
		cs := charts(r)
		ticks := tickText.FindAllStringSubmatch(doc, -1)
		var y, x [][]string
		for _, m := range ticks {
			if m[1] == "ytick" {
				y = append(y, m)
			} else {
				x = append(x, m)
			}
		}
		if len(y) != 5*len(cs) || len(x) < 2*len(cs) {
			t.Fatalf("rate %v: %d y ticks, %d x ticks in %s", tc.rate, len(y), len(x), doc)
		}
		for i, c := range cs {
			my, mx := c.maxY(), c.maxX()
			if my < maxOf(c) {
				t.Errorf("%s: axis top %v below the data's %v", c.title, my, maxOf(c))
			}
			for k := 0; k <= 4; k++ {
				want := my * float64(k) / 4
				if got := parseTick(t, y[i*5+k][3]); math.Abs(got-want) > want*1e-9 {
					t.Errorf("%s: y tick %d labelled %q, stands for %v", c.title, k, y[i*5+k][3], want)
				}
			}
			for _, m := range x[i*len(c.xTicks()) : (i+1)*len(c.xTicks())] {
				v := parseTick(t, m[3])
				pos, _ := strconv.ParseFloat(m[2], 64)
				if want := float64(margin) + v/mx*plotW; math.Abs(pos-want) > 0.1 || v > mx {
					t.Errorf("%s: x tick %q at %.1f, %v s belongs at %.1f (axis to %v s)", c.title, m[3], pos, v, want, mx)
				}
			}
		}
		if !strings.Contains(doc, ">msg/s</text>") || !strings.Contains(doc, ">ms</text>") || !strings.Contains(doc, "seconds since the start") {
			t.Errorf("axis titles missing")
		}
	}
}

func maxOf(c chart) float64 {
	m := 0.0
	for _, l := range c.lines {
		for _, v := range l.ys {
			m = max(m, v)
		}
	}
	return m
}

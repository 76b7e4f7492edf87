package bench

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one line of a chart.
type series struct {
	name  string
	color color.RGBA
	ys    []float64
}

type chart struct {
	title, unit string
	xs          []float64 // seconds
	lines       []series
}

func charts(r *Result) []chart {
	var xs, sent, conf, recv, p50, p99 []float64
	for _, s := range r.Timeline {
		xs = append(xs, s.At.Seconds())
		sent, conf, recv = append(sent, s.SentRate), append(conf, s.ConfirmedRate), append(recv, s.RecvRate)
		p50, p99 = append(p50, float64(s.P50.Microseconds())/1000), append(p99, float64(s.P99.Microseconds())/1000)
	}
	rates := chart{title: "throughput", unit: "msg/s", xs: xs, lines: []series{
		{"sent", color.RGBA{0x1f, 0x77, 0xb4, 0xff}, sent},
		{"received", color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, recv},
	}}
	if r.Config.Confirm > 0 {
		rates.lines = append(rates.lines, series{"confirmed", color.RGBA{0xff, 0x7f, 0x0e, 0xff}, conf})
	}
	lat := chart{title: "end-to-end latency", unit: "ms", xs: xs, lines: []series{
		{"p50", color.RGBA{0x94, 0x67, 0xbd, 0xff}, p50},
		{"p99", color.RGBA{0xd6, 0x27, 0x28, 0xff}, p99},
	}}
	return []chart{rates, lat}
}

func (c chart) maxY() float64 {
	m := 0.0
	for _, l := range c.lines {
		for _, y := range l.ys {
			m = max(m, y)
		}
	}
	if m == 0 {
		return 1
	}
	return niceCeil(m)
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func (c chart) maxX() float64 {
	if len(c.xs) == 0 {
		return 1
	}
	return math.Max(c.xs[len(c.xs)-1], 1)
}

const plotW, plotH, margin = 800, 260, 60

// CheckPlotPath reports whether path names a plot format WritePlot can
// draw, so a run is refused before it starts rather than after minutes of
// load with nothing to show.
func CheckPlotPath(path string) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg", ".html", ".htm", ".png":
		return nil
	}
	return fmt.Errorf("bench: --plot %s: use .svg, .html or .png", path)
}

// WritePlot draws rates and latency over time to path, as SVG, HTML (the
// SVG in a page with the summary) or PNG, chosen by the extension.
func WritePlot(path string, r *Result) error {
	if err := CheckPlotPath(path); err != nil {
		return err
	}
	if len(r.Timeline) == 0 {
		return fmt.Errorf("bench: nothing to plot (the run has no timeline)")
	}
	var data []byte
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		data = []byte(svg(r))
	case ".html", ".htm":
		var sum bytes.Buffer
		WriteSummary(&sum, r)
		data = []byte("<!doctype html><meta charset=utf-8><title>tern bench</title><body style=\"font-family:sans-serif\">" +
			"<h1>tern bench</h1><pre>" + html.EscapeString(sum.String()) + "</pre>" + svg(r) + "</body>")
	case ".png":
		var buf bytes.Buffer
		if err := png.Encode(&buf, raster(r)); err != nil {
			return err
		}
		data = buf.Bytes()
	}
	return os.WriteFile(path, data, 0o644)
}

// xTicks are the time axis's labelled seconds: multiples of a 1-2-5 step,
// about six of them, up to the last sample.
func (c chart) xTicks() []float64 {
	mx := c.maxX()
	step := niceCeil(mx / 6)
	var ticks []float64
	for k := 0; k <= 12; k++ {
		v := float64(k) * step
		if v > mx*(1+1e-9) {
			break
		}
		ticks = append(ticks, v)
	}
	return ticks
}

func svg(r *Result) string {
	cs := charts(r)
	var b strings.Builder
	h := len(cs) * (plotH + 2*margin)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, plotW+2*margin, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	for i, c := range cs {
		oy := i*(plotH+2*margin) + margin
		mx, my := c.maxX(), c.maxY()
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s (%s)</text>`, margin, oy-20, c.title, c.unit)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, margin, oy, plotW, plotH)
		for t := 0; t <= 4; t++ {
			y := oy + plotH - t*plotH/4
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/><text class="ytick" x="%d" y="%d" text-anchor="end">%s</text>`,
				margin, y, margin+plotW, y, margin-5, y+4, fmtNum(my*float64(t)/4))
		}
		fmt.Fprintf(&b, `<text class="ylabel" x="%d" y="%d" text-anchor="middle" transform="rotate(-90 %d %d)">%s</text>`,
			14, oy+plotH/2, 14, oy+plotH/2, c.unit)
		for _, v := range c.xTicks() {
			x := float64(margin) + v/mx*plotW
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/><text class="xtick" x="%.1f" y="%d" text-anchor="middle">%s</text>`,
				x, oy+plotH, x, oy+plotH+5, x, oy+plotH+18, fmtNum(v))
		}
		fmt.Fprintf(&b, `<text class="xlabel" x="%d" y="%d" text-anchor="middle">seconds since the start</text>`, margin+plotW/2, oy+plotH+40)
		for li, l := range c.lines {
			var pts []string
			for k, y := range l.ys {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(margin)+c.xs[k]/mx*plotW, float64(oy+plotH)-y/my*plotH))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="rgb(%d,%d,%d)" stroke-width="2" points="%s"/>`, l.color.R, l.color.G, l.color.B, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="rgb(%d,%d,%d)">%s</text>`, margin+plotW-90, oy+16+li*16, l.color.R, l.color.G, l.color.B, l.name)
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// fmtNum labels a tick with its exact value (to six significant digits),
// shortened with k or M: 1250 is "1.25k", never a rounded "1k".
func fmtNum(v float64) string {
	unit := ""
	switch {
	case math.Abs(v) >= 1e6:
		v, unit = v/1e6, "M"
	case math.Abs(v) >= 1e3:
		v, unit = v/1e3, "k"
	}
	return strconv.FormatFloat(v, 'g', 6, 64) + unit
}

func raster(r *Result) image.Image {
	cs := charts(r)
	img := image.NewRGBA(image.Rect(0, 0, plotW+2*margin, len(cs)*(plotH+2*margin)))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	grey := color.RGBA{0x99, 0x99, 0x99, 0xff}
	text := func(x, y int, s string, c color.Color) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	for i, c := range cs {
		oy := i*(plotH+2*margin) + margin
		mx, my := c.maxX(), c.maxY()
		text(margin, oy-20, fmt.Sprintf("%s (%s)", c.title, c.unit), color.Black)
		line(img, margin, oy, margin+plotW, oy, grey)
		line(img, margin, oy+plotH, margin+plotW, oy+plotH, grey)
		line(img, margin, oy, margin, oy+plotH, grey)
		line(img, margin+plotW, oy, margin+plotW, oy+plotH, grey)
		for t := 0; t <= 4; t++ {
			y := oy + plotH - t*plotH/4
			text(4, y+4, fmtNum(my*float64(t)/4), color.Black)
		}
		for _, v := range c.xTicks() {
			x := margin + int(v/mx*plotW)
			line(img, x, oy+plotH, x, oy+plotH+5, grey)
			label := fmtNum(v)
			text(x-len(label)*7/2, oy+plotH+18, label, color.Black)
		}
		text(margin+plotW/2-80, oy+plotH+40, "seconds since the start", color.Black)
		for li, l := range c.lines {
			px := func(k int) (int, int) {
				return margin + int(c.xs[k]/mx*plotW), oy + plotH - int(l.ys[k]/my*plotH)
			}
			for k := 1; k < len(l.ys); k++ {
				x0, y0 := px(k - 1)
				x1, y1 := px(k)
				line(img, x0, y0, x1, y1, l.color)
				line(img, x0, y0+1, x1, y1+1, l.color)
			}
			text(margin+plotW-90, oy+16+li*16, l.name, l.color)
		}
	}
	return img
}

// line draws with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	for {
		img.Set(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

package console_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tern-broker/tern/internal/testkit"
)

// BenchmarkConsoleLoad measures, in headless Chromium, a full page load
// of the console (a fresh document, logged in already) until the page
// shows the API's data: the overview until its tiles, its first chart
// sample and its deepest-queues table are filled; the queue list until
// its first page of 100 rows is drawn. With 0 and 10,000 queues.
//
//	go test -run '^$' -bench ConsoleLoad -benchtime 20x ./internal/console/
func BenchmarkConsoleLoad(b *testing.B) {
	for _, n := range []int{0, 10000} {
		b.Run("queues="+strconv.Itoa(n), func(b *testing.B) {
			s := testkit.Start(b)
			_, ch := s.Channel(b)
			for i := range n {
				if _, err := ch.QueueDeclare(fmt.Sprintf("bench-%05d", i), false, false, false, false, nil); err != nil {
					b.Fatal(err)
				}
			}
			ctx := newBrowser(b, 10*time.Minute)
			if err := login(ctx, s.HTTPURL); err != nil {
				b.Fatal(err)
			}
			want := min(n, 10)
			pages := []struct{ name, hash, ready string }{
				{"overview", "#/", fmt.Sprintf(`document.querySelector("#ov-queues")?.textContent === %q &&
					document.querySelector("#chart-rates")?.dataset.samples === "1" &&
					document.querySelectorAll("#top-queues tbody tr td.num").length === %d`, fmtThousands(n), 4*want)},
				{"queues", "#/queues", fmt.Sprintf(`document.querySelector("#list-queues")?.parentElement.parentElement.querySelector(".count")?.dataset.total === "%d" &&
					document.querySelectorAll("#list-queues tbody tr").length === %d`, n, max(1, min(n, 100)))},
			}
			// The API calls behind those pages, alone, for comparison.
			for _, api := range []struct{ name, path string }{
				{"api-overview", "/api/overview"},
				{"api-queues-page", "/api/queues?page=1&page_size=100&sort=name&columns=" + queueListColumns},
			} {
				b.Run(api.name, func(b *testing.B) {
					for b.Loop() {
						if code := apiGet(b, s.HTTPURL, api.path, nil); code != http.StatusOK {
							b.Fatalf("GET %s: %d", api.path, code)
						}
					}
				})
			}
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) {
					var pageMS float64
					for b.Loop() {
						b.StopTimer()
						if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
						if err := chromedp.Do(ctx, chromedp.Navigate(s.HTTPURL+"/"+p.hash)); err != nil {
							b.Fatalf("%s: %v", p.name, err)
						}
						// The page's own clock: milliseconds from the start of
						// the navigation to the data on screen, without the
						// DevTools round trips of the Go side's ns/op.
						// Right after a navigation the DevTools may still name
						// the old document's context: try again, at most 3 times.
						var ms float64
						var err error
						for try := 0; try < 3; try++ {
							ms, err = chromedp.Run(ctx, chromedp.Poll[float64]("("+p.ready+") && performance.now()",
								chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
							if err == nil || !strings.Contains(err.Error(), "Cannot find context") {
								break
							}
						}
						if err != nil {
							b.Fatalf("%s: %v", p.name, err)
						}
						pageMS += ms
					}
					b.ReportMetric(pageMS/float64(b.N), "page-ms/op")
				})
			}
		})
	}
}

// queueListColumns are the columns the console's queue list asks for
// (lists.js).
const queueListColumns = "name,vhost,type,state,durable,auto_delete,exclusive,arguments,consumers,messages,messages_ready,messages_unacknowledged,message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate"

// fmtThousands writes n as the console does (en-US grouping).
func fmtThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

package mgmt_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// BenchmarkListQueuesInProcess is GET /api/queues on 10,000 queues through
// the handler, without a network or a second process: the API's own cost.
func BenchmarkListQueuesInProcess(b *testing.B) {
	h, br := fuzzHandler(b)
	v := br.VHost("/")
	for i := range 10_000 {
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: fmt.Sprintf("q%05d", i)}, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	serve(h, "GET", "/api/queues", "")
	req := httptest.NewRequest("GET", "/api/queues", nil)
	req.SetBasicAuth("admin", "pw")
	req.RemoteAddr = "127.0.0.1:1"
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK || w.n < 10_000*500 {
			b.Fatal(w.code, w.n)
		}
	}
	reportCPU(b, cpu0)
}

// processCPU is the test process's user and system CPU time: on a shared
// machine the wall time per request says more about the neighbours than
// about the request, the CPU time does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per request since cpu0 (GC included).
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkListQueuesPageInProcess is the console's requests for one page
// of 10,000 queues: the queue list's first page of 100 by name, the
// overview's ten deepest queues, and a name search.
func BenchmarkListQueuesPageInProcess(b *testing.B) {
	h, br := fuzzHandler(b)
	v := br.VHost("/")
	for i := range 10_000 {
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: fmt.Sprintf("q%05d", i)}, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct{ name, path string }{
		{"by-name", "/api/queues?page=1&page_size=100&sort=name&columns=name,vhost,type,state,consumers,messages_ready,messages_unacknowledged,messages,message_stats.publish_details.rate"},
		{"page-50", "/api/queues?page=50&page_size=100"},
		{"deepest", "/api/queues?page=1&page_size=10&sort=messages&sort_reverse=true&columns=name,vhost,consumers,messages_ready,messages_unacknowledged,message_stats.publish_details.rate"},
		{"search", "/api/queues?page=1&page_size=100&name=q012&sort=name"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", bc.path, nil)
			req.SetBasicAuth("admin", "pw")
			req.RemoteAddr = "127.0.0.1:1"
			serve(h, "GET", bc.path, "")
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.n < 500 {
					b.Fatal(w.code, w.n)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// discardWriter is a ResponseWriter that counts the body and keeps none.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(c int)   { d.code = c }
func (d *discardWriter) Write(p []byte) (int, error) {
	d.n += len(p)
	return len(p), nil
}

package mgmt_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

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
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK || w.n < 10_000*500 {
			b.Fatal(w.code, w.n)
		}
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

package checker

import (
	"bytes"
	"testing"
)

// FuzzReadHistory feeds arbitrary bytes to the history decoder and the
// checker: neither may panic, and a history that decodes re-encodes to one
// that decodes to the same ops.
func FuzzReadHistory(f *testing.F) {
	f.Add([]byte(`{"process":"p","op":"publish","queue":"q","value":"p-1","hash":"x","outcome":"ok","start":1,"end":2}` + "\n"))
	f.Add([]byte(`{"process":"r","op":"subscribe","queue":"s","type":"stream","outcome":"ok","offset":3,"start":1,"end":2}` + "\n" + `{"process":"r","op":"consume","queue":"s","type":"stream","value":"p-1","outcome":"ok","offset":3,"start":3,"end":4}`))
	f.Add([]byte(`{"process":"m","op":"exists","queue":"m0","outcome":"ok","exists":true,"start":1,"end":2}` + "\n" + `{"process":"m","op":"declare","queue":"m0","outcome":"unknown","start":1}`))
	f.Add([]byte(`{"process":"n","op":"fault","fault":"torn-tail","destroyed":["p-1"],"outcome":"ok","start":1,"end":2}` + "\n\n"))
	f.Add([]byte(`{"process":"runner","op":"empty","queue":"q","outcome":"fail","error":"left","detail":"n1: ready 0 unacked 1","start":1,"end":2,"deadline_ms":5}` + "\n" +
		`{"process":"n","op":"fault","fault":"partition","node":2,"outcome":"fail","error":"nft","start":1,"end":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := ReadHistory(bytes.NewReader(b))
		if err != nil {
			return
		}
		_ = Check(ops, Options{LinearizabilityTimeout: 100_000_000})
		var buf bytes.Buffer
		for _, op := range ops {
			if err := WriteOp(&buf, op); err != nil {
				t.Fatal(err)
			}
		}
		again, err := ReadHistory(&buf)
		if err != nil || len(again) != len(ops) {
			t.Fatalf("re-read: %v, %d ops of %d", err, len(again), len(ops))
		}
	})
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintClusterStatusSummarises(t *testing.T) {
	doc := `{"node":"n1","nodes":[{"name":"n1","id":"0x1","address":"127.0.0.1:25672","role":"voter","self":true,"reachable":true},` +
		`{"name":"n2","id":"0x2","address":"127.0.0.1:25673","role":"voter","reachable":false}],` +
		`"groups":[{"id":"0xa","kind":"metadata","state":"leader","leader":"n1","term":3,"commit":40,"applied":40,"voters":["n1","n2"],"learners":[],` +
		`"followers":[{"node":"n2","match":30,"lag":10,"state":"probe","active":false}]},` +
		`{"id":"0xb","kind":"quorum","vhost":"/","queue":"orders","state":"follower","leader":"","term":2,"commit":7,"applied":7,"voters":["n1","n2"],"learners":["n3"]}]}`
	var b bytes.Buffer
	if err := printClusterStatus(&b, doc); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"as node n1 sees it", "n1 (this node)", "127.0.0.1:25673", "no", "metadata", "n2 10 (inactive)",
		"queue orders in vhost /", "(none known)", "n3"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if err := printClusterStatus(&b, "<html>"); err == nil {
		t.Error("a document that is not a cluster status was printed without an error")
	}
}

func TestPrintGrowResultsOneLinePerQueue(t *testing.T) {
	var b bytes.Buffer
	if err := printGrowResults(&b, `[{"vhost":"/","queue":"a","result":"grown","voters":4}, {"vhost":"/","queue":"b","result":"skipped: 3 voters"}]`); err != nil {
		t.Fatal(err)
	}
	want := `{"vhost":"/","queue":"a","result":"grown","voters":4}` + "\n" + `{"vhost":"/","queue":"b","result":"skipped: 3 voters"}` + "\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

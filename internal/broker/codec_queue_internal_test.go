package broker

import (
	"encoding/json"
	"testing"
)

// queueCmdCases are declares and deletes with every field set or not, and
// names needing every kind of JSON escape.
var queueCmdCases = []cmdJSON{
	{Op: "declare_queue", VHost: "/", Name: "mqtt-subscription-dev1qos1", ID: "0123abcd", Args: "AAAAEw14LW1lc3NhZ2UtdHRsSQAAAAU="},
	{Op: "declare_queue", VHost: "v", Name: "e", ID: "a", AutoDelete: true, Transient: true, Exclusive: true, Owner: 17, Node: 2},
	{Op: "delete_queue", VHost: "/", Name: "q"},
	{Op: "delete_queue", VHost: "/", Name: "q", ID: "x"},
	{Op: "declare_queue", VHost: "<&>", Name: "a\"b\\c\n\r\t\b\f\x00\x1f\x7f<script>&amp;"},
	{Op: "declare_queue", Name: "caf\u00e9 \u2028\u2029 \U0001F600 \xff\xfe bad utf8 \xe2\x82"},
	{Op: "delete_queue"},
}

// A queue's declare and delete encode to exactly the bytes json.Marshal
// gives for the same record: the log's format does not depend on which
// encoder wrote it.
func TestQueueCommandsEncodeAsJSON(t *testing.T) {
	for _, j := range queueCmdCases {
		want, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendQueueCmd(nil, &j); string(got) != string(want) {
			t.Errorf("%+v:\n got %s\nwant %s", j, got, want)
		}
	}
}

// FuzzQueueCommandEncoding: for any names, ids and flags, the appended
// record is json.Marshal's.
func FuzzQueueCommandEncoding(f *testing.F) {
	for _, j := range queueCmdCases {
		f.Add(j.VHost, j.Name, j.ID, j.Args, j.AutoDelete, j.Exclusive, j.Owner)
	}
	f.Fuzz(func(t *testing.T, vhost, name, id, args string, autoDelete, exclusive bool, owner uint64) {
		j := cmdJSON{Op: "declare_queue", VHost: vhost, Name: name, ID: id, Args: args, AutoDelete: autoDelete,
			Exclusive: exclusive, Transient: exclusive, Owner: owner, Node: owner >> 3}
		want, _ := json.Marshal(j)
		if got := appendQueueCmd(nil, &j); string(got) != string(want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEncodeDeclareQueue(b *testing.B) {
	c := DeclareQueue{QueueDef{VHost: "/", ID: "0123456789abcdef", QueueConfig: QueueConfig{Name: "mqtt-subscription-tern-bench-storm-1234-5678qos1",
		Durable: true, Args: map[string]any{"x-mqtt-owner": "guest"}}}}
	b.ReportAllocs()
	for b.Loop() {
		EncodeCommand(c)
	}
}

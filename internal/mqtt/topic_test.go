package mqtt

import "testing"

func TestTopicMapping(t *testing.T) {
	t.Parallel()
	for topic, key := range map[string]string{
		"sensors/kitchen/temp": "sensors.kitchen.temp",
		"v1.2/x":               "v1/2.x",
		"sensors/+/temp":       "sensors.*.temp",
		"a/#":                  "a.#",
		"/leading":             ".leading",
	} {
		if got := topicToKey(topic); got != key {
			t.Errorf("%q → %q, want %q", topic, got, key)
		}
		if topic[len(topic)-1] != '#' && !containsPlus(topic) && keyToTopic(key) != topic {
			t.Errorf("%q does not map back", key)
		}
	}
}

func containsPlus(s string) bool {
	for _, c := range s {
		if c == '+' {
			return true
		}
	}
	return false
}

func TestMQTTMatching(t *testing.T) {
	t.Parallel()
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"+/+", "/x", true},
		{"a/+/c", "a//c", true},
	}
	for _, c := range cases {
		if got := matches(c.filter, c.topic); got != c.want {
			t.Errorf("%q vs %q: %v", c.filter, c.topic, got)
		}
	}
	if g, f, ok := shared("$share/workers/jobs/#"); !ok || g != "workers" || f != "jobs/#" {
		t.Errorf("shared: %q %q %v", g, f, ok)
	}
	if _, _, ok := shared("$share/x"); ok {
		t.Error("$share without a filter accepted")
	}
}

// Which mapped routing keys may go to a client as topic names: empty
// levels are fine ("." is "/", two empty levels), an empty key, wildcards,
// U+0000 and invalid UTF-8 are not.
func TestSendableTopic(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"a.b": true, ".": true, "a..b": true, "$SYS.x": true, "a/b": true, "é.ü": true,
		"": false, "#": false, "a.#": false, "x.+": false, "a.b+c": false, "nul\x00": false, "\xff": false,
	} {
		if got := sendableTopic(keyToTopic(key)); got != want {
			t.Errorf("key %q (topic %q): sendable %v, want %v", key, keyToTopic(key), got, want)
		}
	}
}

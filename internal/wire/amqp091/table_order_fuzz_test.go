package amqp091

import (
	"bytes"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// FuzzEachField: the ordered field-table walk never panics, fails exactly
// when the map decoder does, and where both succeed sees the same keys,
// each key's last value (the one a map keeps) encoding as the map's does.
func FuzzEachField(f *testing.F) {
	content := func(t Table) []byte { return AppendTable(nil, t)[4:] }
	f.Add(content(Table{
		"s": "str", "i": int32(-1), "I": uint32(7), "l": int64(1 << 40), "b": true, "d": 2.5, "f": float32(1.5),
		"D": Decimal{Scale: 2, Value: 314}, "x": []byte{1}, "A": []any{"a", int16(2), Table{"n": nil}},
		"T": time.Unix(1700000000, 0).UTC(), "F": Table{"k": uint8(1)}, "V": nil, "bb": int8(-3), "u": uint16(4),
	}))
	var dup []byte
	dup = AppendField(dup, "k", "first")
	dup = AppendField(dup, "a", int32(1))
	dup = AppendField(dup, "k", "second")
	f.Add(dup)
	f.Add([]byte{1, 'k', 'Z'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		last := map[string]any{}
		n := 0
		walkErr := EachField(raw, func(key string, v any) {
			last[key] = v
			n++
		})
		tbl, mapErr := message.DecodeTable(raw)
		if (walkErr == nil) != (mapErr == nil) {
			t.Fatalf("the walk says %v, the map decoder %v", walkErr, mapErr)
		}
		if walkErr != nil {
			return
		}
		if len(last) != len(tbl) || len(last) > n {
			t.Fatalf("the walk saw %d keys (%d fields), the map decoder %d", len(last), n, len(tbl))
		}
		for k, v := range last {
			mv, ok := tbl[k]
			if !ok {
				t.Fatalf("key %q walked, not in the map", k)
			}
			if a, b := AppendField(nil, k, v), AppendField(nil, k, mv); !bytes.Equal(a, b) {
				t.Fatalf("key %q: the walk's value %v, the map's %v", k, v, mv)
			}
		}
	})
}

package route

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/tern-broker/tern/internal/message"
)

// headers matches message headers against binding arguments. x-match is
// "all" (the default), "any", "all-with-x" or "any-with-x"; without "-with-x"
// arguments starting with "x-" are ignored. A binding argument with a void
// (nil) value matches when the header is present, whatever its value.
type headers[D comparable] []headerBinding[D]

type headerBinding[D comparable] struct {
	all   bool
	args  map[string]any
	dest  D
	empty bool // no argument to match: "all" matches everything, "any" nothing
}

func newHeaders[D comparable](bs []Binding[D]) headers[D] {
	var t headers[D]
	for _, b := range bs {
		mode, _ := b.Args["x-match"].(string)
		withX := strings.HasSuffix(mode, "-with-x")
		hb := headerBinding[D]{all: !strings.HasPrefix(mode, "any"), args: map[string]any{}, dest: b.Dest}
		for k, v := range b.Args {
			if k == "x-match" || (!withX && strings.HasPrefix(k, "x-")) {
				continue
			}
			hb.args[k] = v
		}
		hb.empty = len(hb.args) == 0
		t = append(t, hb)
	}
	return t
}

func (t headers[D]) Route(dst []D, _ string, hdrs map[string]any) []D {
	for _, b := range t {
		if b.matches(hdrs) {
			dst = append(dst, b.dest)
		}
	}
	return dst
}

func (b *headerBinding[D]) matches(hdrs map[string]any) bool {
	if b.empty {
		return b.all
	}
	for k, want := range b.args {
		got, ok := hdrs[k]
		hit := ok && (want == nil || Equal(want, got))
		if hit && !b.all {
			return true
		}
		if !hit && b.all {
			return false
		}
	}
	return b.all
}

// ValidMatch reports whether x-match holds a value RabbitMQ accepts.
func ValidMatch(args map[string]any) error {
	v, ok := args["x-match"]
	if !ok {
		return nil
	}
	s, _ := v.(string)
	switch s {
	case "all", "any", "all-with-x", "any-with-x":
		return nil
	}
	return fmt.Errorf("invalid x-match field value %v; expected all, any, all-with-x, or any-with-x", v)
}

// Equal compares two field-table values. Integers compare by value whatever
// their width, since clients disagree on which width to send.
func Equal(a, b any) bool {
	if ai, ok := message.TableInt(a); ok {
		bi, ok := message.TableInt(b)
		return ok && ai == bi
	}
	return reflect.DeepEqual(a, b)
}

package broker

import (
	"slices"
	"strconv"
	"strings"
)

// Argument tables equal in content share one map. A Go map costs about
// 300 bytes however few its entries, and a fleet's objects repeat the same
// few tables: every MQTT session queue of a user carries {x-mqtt-user:
// name}, every MQTT subscription's binding one of a dozen option sets.
// Declared arguments are never changed in place (a policy or a redeclare
// makes a new map), so sharing is safe. Only small tables of plain values
// are interned, and at most maxInterned distinct ones per vhost: when the
// index is full it starts afresh (maps already shared stay shared), so
// tables unique to one object neither grow it without bound nor keep the
// common ones out.

const (
	maxInterned     = 4096
	maxInternedArgs = 8  // entries
	maxInternedStr  = 64 // bytes of a string value
)

// internArgs returns a map equal to m that other objects may share. v.mu
// is held.
func (v *VHost) internArgs(m map[string]any) map[string]any {
	if len(m) == 0 || len(m) > maxInternedArgs {
		return m
	}
	k, ok := argsKey(m)
	if !ok {
		return m
	}
	if have, ok := v.interned[k]; ok {
		return have
	}
	if v.interned == nil || len(v.interned) >= maxInterned {
		v.interned = map[string]map[string]any{}
	}
	v.interned[k] = m
	return m
}

// argsKey encodes m canonically (sorted names, typed values); ok is false
// for a table holding anything but short strings, booleans and integers.
func argsKey(m map[string]any) (string, bool) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(strconv.Quote(n))
		switch x := m[n].(type) {
		case string:
			if len(x) > maxInternedStr {
				return "", false
			}
			b.WriteString("s")
			b.WriteString(strconv.Quote(x))
		case bool:
			b.WriteString("b")
			b.WriteString(strconv.FormatBool(x))
		case int32:
			b.WriteString("i32:")
			b.WriteString(strconv.FormatInt(int64(x), 10))
		case int64:
			b.WriteString("i64:")
			b.WriteString(strconv.FormatInt(x, 10))
		case int:
			b.WriteString("i:")
			b.WriteString(strconv.Itoa(x))
		default:
			return "", false
		}
		b.WriteByte(';')
	}
	return b.String(), true
}

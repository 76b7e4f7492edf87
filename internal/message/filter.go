package message

// HeaderStreamFilter is the header a publisher sets for stream filtering.
const HeaderStreamFilter = "x-stream-filter-value"

// FilterHash hashes a stream filter value for a log's index (FNV-1a,
// never 0, which means "no filter value"). The hash is stored on disk, so
// it must not change.
func FilterHash(v string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(v); i++ {
		h ^= uint32(v[i])
		h *= 16777619
	}
	return h | 1
}

// StreamFilterHash is the FilterHash of m's stream filter value, 0 when it
// has none.
func (m *Message) StreamFilterHash() uint32 {
	v, ok := m.Props.Headers[HeaderStreamFilter].(string)
	if !ok {
		return 0
	}
	return FilterHash(v)
}

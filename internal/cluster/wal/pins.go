package wal

// recMeta is what the segment bookkeeping needs of a record, known when it
// is encoded (and again when recovery decodes it).
type recMeta struct {
	typ      byte
	hasHS    bool
	hasSnap  bool
	first, n uint64 // entries carried: first index and count
	index    uint64 // recCompact's index, recCheckpoint's base, a snapshot's index
}

func metaOf(r *record) recMeta {
	m := recMeta{typ: r.typ, hasHS: r.hs != nil, hasSnap: r.snap != nil, n: uint64(len(r.ents)), index: r.index}
	if len(r.ents) > 0 {
		m.first = r.ents[0].GetIndex()
	}
	if r.snap != nil && r.typ != recCheckpoint {
		m.index = r.snap.GetMetadata().GetIndex()
	}
	return m
}

// pins records which segments hold what a group still needs, as of the
// records written (not the live state, which runs ahead of the disk): the
// segment of its last hard state, last snapshot and last base (snapshot
// or compaction), and of each run of live entries. A segment older than
// every group's oldest pin holds nothing anyone needs.
type pins struct {
	hs, snap, base uint64 // segment ids; 0: none
	runs           []run  // ascending by first
	durBase        uint64 // the base the written records establish
	durLast        uint64 // the last index they hold
}

// run: entries from first on (to the next run) were written to seg.
type run struct{ first, seg uint64 }

// note accounts for record m written to segment seg.
func (p *pins) note(m recMeta, seg uint64) {
	switch m.typ {
	case recSave:
		if m.hasSnap {
			p.snap, p.base = seg, seg
			p.durBase, p.durLast = m.index, m.index
			p.runs = p.runs[:0]
		}
		if m.n > 0 {
			first, last := m.first, m.first+m.n-1
			if last > p.durBase {
				first = max(first, p.durBase+1)
				i := len(p.runs)
				for i > 0 && p.runs[i-1].first >= first {
					i--
				}
				p.runs = p.runs[:i]
				if i == 0 || p.runs[i-1].seg != seg {
					p.runs = append(p.runs, run{first, seg})
				}
				p.durLast = last
			}
		}
		if m.hasHS {
			p.hs = seg
		}
	case recSnapshot:
		p.snap = seg
	case recCompact:
		p.base = seg
		if m.index > p.durBase {
			p.durBase = m.index
			p.durLast = max(p.durLast, m.index)
		}
	case recRemove:
		*p = pins{} // nothing of the group is needed any more
	case recCheckpoint:
		*p = pins{base: seg, durBase: m.index, durLast: m.index + m.n, runs: p.runs[:0]}
		if m.hasHS {
			p.hs = seg
		}
		if m.hasSnap {
			p.snap = seg
		}
		if m.n > 0 {
			p.runs = append(p.runs, run{m.index + 1, seg})
		}
	}
}

// oldest returns the oldest segment the group needs, 0 if none.
func (p *pins) oldest() uint64 {
	for len(p.runs) > 1 && p.runs[1].first <= p.durBase+1 {
		p.runs = p.runs[1:]
	}
	var o uint64
	for _, s := range []uint64{p.hs, p.snap, p.base} {
		if s != 0 && (o == 0 || s < o) {
			o = s
		}
	}
	if p.durLast > p.durBase && len(p.runs) > 0 && (o == 0 || p.runs[0].seg < o) {
		o = p.runs[0].seg
	}
	return o
}

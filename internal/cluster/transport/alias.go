package transport

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Appends arrive as Raft frames of tens to hundreds of KiB, nearly all of
// it entries' data. proto.Unmarshal copies every entry's Data into an
// allocation of its own (protobuf-go never aliases its input), which was
// the largest part of a quorum queue follower's transport CPU; the frame
// had already been copied once into the reader's buffer. So a Raft frame
// of aliasFrom bytes or more is read into a buffer of its own, which no
// later frame reuses, and decodeMessageAlias decodes its messages with
// Data and Context pointing into it: the entries' bytes are copied once,
// by the kernel, into memory that lives as long as they do.
//
// decodeMessageAlias handles what appends, heartbeats, votes and their
// responses carry: the scalar fields, entries and context. Anything else
// (a snapshot, storage responses, an unknown field or enum value, a wire
// type other than the field's, malformed bytes) makes it report false,
// and the caller decodes the message with proto.Unmarshal instead, which
// settles what such bytes mean. For bytes it accepts, the result equals
// proto.Unmarshal's (FuzzDecodeMessageAlias holds it to that).

// aliasFrom is the frame size from which a Raft frame gets a buffer of its
// own and its entries alias it. Below it (heartbeats, responses, small
// appends) copying a few bytes costs less than a new buffer per frame.
const aliasFrom = 4 << 10

// decodeMessageAlias decodes b into m (which must be empty), aliasing b
// for byte fields. False: b holds something it does not handle (m is then
// to be discarded).
func decodeMessageAlias(b []byte, m *raftpb.Message) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 1:
				t := raftpb.MessageType(int32(v))
				if _, ok := raftpb.MessageType_name[int32(t)]; !ok || v >= 1<<31 {
					return false
				}
				m.Type = &t
			case 2:
				m.To = new(v)
			case 3:
				m.From = new(v)
			case 4:
				m.Term = new(v)
			case 5:
				m.LogTerm = new(v)
			case 6:
				m.Index = new(v)
			case 8:
				m.Commit = new(v)
			case 10:
				m.Reject = new(protowire.DecodeBool(v))
			case 11:
				m.RejectHint = new(v)
			case 13:
				m.Vote = new(v)
			default:
				return false
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 7:
				e := &raftpb.Entry{}
				if !decodeEntryAlias(v, e) {
					return false
				}
				m.Entries = append(m.Entries, e)
			case 12:
				m.Context = v[:len(v):len(v)]
			default:
				return false
			}
		default:
			return false
		}
	}
	return true
}

// decodeEntryAlias decodes b into e, aliasing b for Data; false as
// decodeMessageAlias.
func decodeEntryAlias(b []byte, e *raftpb.Entry) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			switch num {
			case 1:
				t := raftpb.EntryType(int32(v))
				if _, ok := raftpb.EntryType_name[int32(t)]; !ok || v >= 1<<31 {
					return false
				}
				e.Type = &t
			case 2:
				e.Term = new(v)
			case 3:
				e.Index = new(v)
			default:
				return false
			}
		case typ == protowire.BytesType && num == 4:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			e.Data = v[:len(v):len(v)]
		default:
			return false
		}
	}
	return true
}

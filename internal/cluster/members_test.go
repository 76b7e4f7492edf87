package cluster

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func member(name, addr string, standby bool) Member {
	return Member{ID: MemberID(name), Name: name, Addr: addr, Standby: standby}
}

func TestMemberStateApply(t *testing.T) {
	var s memberState
	n1, n2, n3 := member("n1", "127.0.0.1:1", false), member("n2", "127.0.0.1:2", false), member("n3", "127.0.0.1:3", false)
	n4 := member("n4", "127.0.0.1:4", false)
	if err := s.apply(memberOp{Op: opAdd, Member: &n4}); err == nil {
		t.Fatal("an add before the founders record was applied")
	}
	must := func(op memberOp) {
		t.Helper()
		if err := s.apply(op); err != nil {
			t.Fatalf("%+v: %v", op, err)
		}
	}
	must(memberOp{Op: opFounders, Members: []Member{n1, n2, n3}})
	must(memberOp{Op: opFounders, Members: []Member{n1}}) // the first founders record wins
	if len(s.Members) != 3 {
		t.Fatalf("members %v", s.Members)
	}
	must(memberOp{Op: opAdd, Member: &n4})
	must(memberOp{Op: opAdd, Member: &n4}) // again: nothing changes
	if len(s.Members) != 4 {
		t.Fatalf("members after adding n4 twice: %v", s.Members)
	}
	for _, bad := range []Member{
		member("n4", "127.0.0.1:9", false),  // another address
		member("n5", "127.0.0.1:4", false),  // n4's address
		member("n 5", "127.0.0.1:5", false), // a bad name
		member("n5", "127.0.0.1", false),    // no port
		{ID: 7, Name: "n5", Addr: "127.0.0.1:5"},
	} {
		before := s.clone()
		if err := s.apply(memberOp{Op: opAdd, Member: &bad}); err == nil {
			t.Errorf("add %+v accepted", bad)
		}
		if !reflect.DeepEqual(before, s) {
			t.Errorf("a refused add changed the state: %+v", s)
		}
	}
	must(memberOp{Op: opRemove, Member: &Member{Name: "n3"}})
	must(memberOp{Op: opRemove, Member: &Member{Name: "n3"}}) // again: nothing changes
	if _, ok := s.find("n3"); ok || len(s.Removed) != 1 {
		t.Fatalf("after removing n3: %+v", s)
	}
	if err := s.apply(memberOp{Op: opAdd, Member: &n3}); !errors.Is(err, ErrNodeRemoved) {
		t.Fatalf("re-adding n3: %v, want ErrNodeRemoved", err)
	}
	other := member("n3", "127.0.0.1:33", true)
	if err := s.apply(memberOp{Op: opAdd, Member: &other}); !errors.Is(err, ErrNodeRemoved) {
		t.Fatalf("re-adding n3 at another address: %v, want ErrNodeRemoved", err)
	}
	if err := s.apply(memberOp{Op: opRemove, Member: &Member{Name: "n9"}}); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("removing a stranger: %v", err)
	}
	n5 := member("n5", "127.0.0.1:5", true)
	must(memberOp{Op: opAdd, Member: &n5})
	must(memberOp{Op: opPromote, Member: &Member{Name: "n5"}})
	if m, _ := s.find("n5"); m.Standby {
		t.Fatalf("n5 promoted is still standby: %+v", m)
	}
	if err := s.apply(memberOp{Op: opPromote, Member: &Member{Name: "n9"}}); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("promoting a stranger: %v", err)
	}
	must(memberOp{Op: opRemove, Member: &Member{Name: "n2"}})
	must(memberOp{Op: opRemove, Member: &Member{Name: "n4"}})
	must(memberOp{Op: opRemove, Member: &Member{Name: "n5"}})
	if err := s.apply(memberOp{Op: opRemove, Member: &Member{Name: "n1"}}); err == nil {
		t.Fatal("the last voter was removed")
	}
}

func TestMemberOpRoundTrip(t *testing.T) {
	n4 := member("n4", "127.0.0.1:4", true)
	for _, op := range []memberOp{
		{Op: opFounders, Members: []Member{member("n1", "127.0.0.1:1", false)}},
		{Op: opAdd, Member: &n4},
		{Op: opRemove, Member: &Member{Name: "n4"}},
		{Op: opPromote, Member: &Member{Name: "n4"}},
	} {
		got, err := decodeMemberOp(encodeMemberOp(op))
		if err != nil || !reflect.DeepEqual(got, op) {
			t.Fatalf("%+v came back as %+v, %v", op, got, err)
		}
	}
	for _, bad := range []string{"", "\x03", "\x03{}", `\x03{"op":"add"}`, "\x03{\"op\":\"founders\"}", "\x03{\"op\":\"x\",\"member\":{}}",
		"\x03{\"op\":\"add\",\"member\":{},\"extra\":1}", "\x03{\"op\":\"remove\",\"member\":{}} {}", "\x01{}"} {
		if _, err := decodeMemberOp([]byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestSplitSnapshot(t *testing.T) {
	st, ok, inner, err := splitSnapshot([]byte{1, 'x'})
	if err != nil || ok || !bytes.Equal(inner, []byte{1, 'x'}) || st.Set {
		t.Fatalf("a snapshot without membership: %+v %v %q %v", st, ok, inner, err)
	}
	for _, bad := range [][]byte{{membershipSnapshot}, {membershipSnapshot, 0, 0, 0, 9, '{'}, {membershipSnapshot, 0, 0, 0, 1, '{'}} {
		if _, _, _, err := splitSnapshot(bad); err == nil {
			t.Errorf("%q split", bad)
		}
	}
}

func FuzzDecodeMemberOp(f *testing.F) {
	n4 := member("n4", "127.0.0.1:4", false)
	f.Add(encodeMemberOp(memberOp{Op: opAdd, Member: &n4}))
	f.Add(encodeMemberOp(memberOp{Op: opFounders, Members: []Member{n4}}))
	f.Add(encodeMemberOp(memberOp{Op: opRemove, Member: &Member{Name: "n4"}}))
	f.Add([]byte{kindMembership})
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := decodeMemberOp(data)
		if err != nil {
			return
		}
		again, err := decodeMemberOp(encodeMemberOp(op))
		if err != nil || !reflect.DeepEqual(again, op) {
			t.Fatalf("%+v re-decoded as %+v, %v", op, again, err)
		}
		// Applying what decodes never panics, and a refusal changes nothing.
		s := memberState{Set: true, Members: []Member{member("n1", "127.0.0.1:1", false)}}
		before := s.clone()
		if err := s.apply(op); err != nil && !reflect.DeepEqual(before, s) {
			t.Fatalf("refused %+v changed the state", op)
		}
	})
}

func FuzzSplitSnapshot(f *testing.F) {
	f.Add([]byte{membershipSnapshot, 0, 0, 0, 2, '{', '}', 1})
	f.Add([]byte{1, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, ok, inner, err := splitSnapshot(data)
		if err != nil {
			return
		}
		if !ok && !bytes.Equal(inner, data) {
			t.Fatal("a snapshot without membership lost bytes")
		}
		_ = st
	})
}

package transport

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// TestFrameBufClasses: a buffer from getFrameBuf holds what was asked,
// goes back to the class its capacity fills, and comes out again for any
// size of that class.
func TestFrameBufClasses(t *testing.T) {
	for _, n := range []int{0, 1, minPooled - 1, minPooled, minPooled + 1, 64 << 10, 3<<20 + 5, minPooled << (poolClasses - 1), 40 << 20} {
		b := getFrameBuf(n)
		if cap(*b) < n || len(*b) != 0 {
			t.Fatalf("getFrameBuf(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		if k := classUp(n); k < poolClasses && cap(*b) > 2*max(n, minPooled) {
			t.Fatalf("getFrameBuf(%d): cap %d, over twice the size", n, cap(*b))
		}
		putFrameBuf(b)
	}
	// A buffer of an odd capacity serves the class below it only.
	odd := make([]byte, 5, 3*minPooled)
	putFrameBuf(&odd)
	for range 100 {
		b := getFrameBuf(2 * minPooled)
		if cap(*b) < 2*minPooled {
			t.Fatalf("class of 8 KiB handed out a buffer of %d", cap(*b))
		}
		if len(*b) != 0 {
			t.Fatalf("pooled buffer handed out with %d bytes in it", len(*b))
		}
	}
}

// TestFrameReaderLargeFrames: frames of every size read back whole and
// in order, a buffer up to keepBuf is reused by the next frame it holds
// (no allocation), and a frame over keepBuf does not keep its buffer.
// Raft frames of aliasFrom bytes or more get a buffer of their own
// (alias.go), so the frames of the reuse checks are notifies.
func TestFrameReaderLargeFrames(t *testing.T) {
	sizes := []int{10, 3 << 20, 100, 3<<20 + 1, 5 << 20, keepBuf + 1, 20, readAhead * 4}
	var stream bytes.Buffer
	var want [][]byte
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i + 1)}, n)
		f, err := appendRaftBatch(nil, Group(i), []*raftpb.Message{msg(1, 2, uint64(i), data)})
		if i%2 == 1 {
			f, err = appendFrame(nil, frameNotify, 0, uint64(i), nil, data)
		}
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(f)
		want = append(want, f[headerLen:])
	}
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(stream.Bytes())), maxFrame: 64 << 20}
	for i := range sizes {
		h, body, err := fr.next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if h.id != uint64(i) || !bytes.Equal(body, want[i]) {
			t.Fatalf("frame %d: group %d, %d bytes; want group %d, %d bytes equal", i, h.id, len(body), i, len(want[i]))
		}
		if sizes[i] == keepBuf+1 && cap(fr.buf) <= keepBuf {
			t.Fatalf("frame %d: buffer of %d for %d bytes", i, cap(fr.buf), len(body))
		}
		if want := i%2 == 0 && len(body) >= aliasFrom; fr.own != want {
			t.Fatalf("frame %d (%d bytes): own buffer %v, want %v", i, len(body), fr.own, want)
		}
	}
	if _, _, err := fr.next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
	// A second frame that fits the buffer of the first allocates nothing.
	f, _ := appendFrame(nil, frameNotify, 0, 1, nil, make([]byte, 2<<20))
	src := bytes.NewReader(nil)
	fr = frameReader{r: bufio.NewReader(src), maxFrame: 64 << 20}
	read := func() {
		src.Reset(f)
		fr.r.Reset(src)
		if _, _, err := fr.next(); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if a := testing.AllocsPerRun(5, read); a > 0 {
		t.Fatalf("reading a 2 MiB frame into the buffer of the last one: %v allocations", a)
	}
}

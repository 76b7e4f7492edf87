package amqp091

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func TestAdaptiveReaderGrowsAndReadsEverything(t *testing.T) {
	t.Parallel()
	src := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	r := NewAdaptiveReader(bytes.NewReader(src), 64, 4096)
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	if len(r.buf) != 4096 {
		t.Fatalf("buffer %d bytes after a long stream, want grown to 4096", len(r.buf))
	}
	r2 := NewAdaptiveReader(iotest.HalfReader(bytes.NewReader(src)), 16, 1024)
	if err := iotest.TestReader(r2, src); err != nil {
		t.Fatal(err)
	}
}

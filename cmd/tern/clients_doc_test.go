package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// quoteMarker precedes a fenced block in docs/clients.md that is copied
// from a tested recipe.
var quoteMarker = regexp.MustCompile(`^<!-- quote: (\S+) -->$`)

// docs/clients.md quotes the recipes the tests run; a quoted block that no
// longer appears verbatim in its file means the doc drifted from the code.
func TestClientsDocQuotesTheTestedCode(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "clients.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(doc), "\n")
	quotes := 0
	for i := 0; i < len(lines); i++ {
		m := quoteMarker.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("docs/clients.md:%d: a quote marker must be followed by a fenced block", i+1)
		}
		end := i + 2
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			t.Fatalf("docs/clients.md:%d: unterminated block", i+2)
		}
		block := strings.Join(lines[i+2:end], "\n") + "\n"
		src, err := os.ReadFile(filepath.Join(root, m[1]))
		if err != nil {
			t.Fatalf("docs/clients.md:%d: %v", i+1, err)
		}
		if !strings.Contains(string(src), block) {
			t.Errorf("docs/clients.md:%d: the block is not in %s any more; copy it again", i+2, m[1])
		}
		quotes++
		i = end
	}
	if quotes < 10 {
		t.Fatalf("docs/clients.md quotes %d tested blocks, want at least 10", quotes)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
)

// field reads a dotted path ("queue.name") from a decoded JSON object.
func field(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// cell prints a JSON value for a table: strings bare, lists of strings
// comma-separated, other lists and objects as compact JSON.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return compactJSON(v)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ",")
	}
	return compactJSON(v)
}

// escapeControls writes control characters and line separators as Go
// escapes (\n, \t, \x00, \u2028); everything else is kept.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r) // '\n', '\x00', '\u2028'
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// printTable writes rows as an aligned table with a header of the column
// names (the JSON field names, so a script can pass them to --columns).
// Cells are single-line: control characters in a value (a name may hold
// any) are escaped, so a value can neither forge a row nor break the
// alignment (tabwriter takes \f and \v as line and cell breaks).
func printTable(w io.Writer, cols []string, rows []map[string]any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = escapeControls(c)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			if v, ok := field(row, c); ok {
				cells[i] = escapeControls(cell(v))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// project keeps only cols of each row, for --json with --columns; a
// dotted column keeps its dotted name as the key.
func project(cols []string, rows []map[string]any) []map[string]any {
	out := make([]map[string]any, 0, len(rows))
	for _, row := range rows {
		m := map[string]any{}
		for _, c := range cols {
			if v, ok := field(row, c); ok {
				m[c] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// writeJSONOut prints v indented.
func writeJSONOut(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// emitRows prints rows as --json and --columns ask, else as a table of
// the default columns.
func (r *ctlRun) emitRows(defaults []string, rows []map[string]any) error {
	cols := defaults
	if r.g.columns != "" {
		cols = splitList(r.g.columns)
	}
	if r.g.json {
		if r.g.columns != "" {
			return writeJSONOut(r.stdout, project(cols, rows))
		}
		return writeJSONOut(r.stdout, rows)
	}
	return printTable(r.stdout, cols, rows)
}

package checker

import (
	"encoding/json"
	"io"
)

// maxExamples bounds the findings kept per verdict; counts stay exact.
const maxExamples = 20

// Finding is one violation, with the history lines that show it.
type Finding struct {
	Queue  string `json:"queue,omitempty"`
	Value  string `json:"value,omitempty"`
	Detail string `json:"detail"`
	Lines  []int  `json:"lines,omitempty"`
}

// Verdict is one check's result.
type Verdict struct {
	Name     string    `json:"name"`
	Passed   bool      `json:"passed"`
	Count    int       `json:"count"` // violations (or, for counted verdicts, occurrences)
	Detail   string    `json:"detail,omitempty"`
	Examples []Finding `json:"examples,omitempty"`
}

// Recovery summarizes the recover ops of one fault kind, in milliseconds.
type Recovery struct {
	Count int   `json:"count"`
	P50MS int64 `json:"p50_ms"`
	MaxMS int64 `json:"max_ms"`
}

// Stats are the run's counts.
type Stats struct {
	Ops        int            `json:"ops"`
	Published  int            `json:"published"`  // publish ops
	Confirmed  int            `json:"confirmed"`  // outcome ok
	Nacked     int            `json:"nacked"`     // outcome fail
	Unknown    int            `json:"unknown"`    // outcome unknown
	Delivered  int            `json:"delivered"`  // distinct values delivered
	Deliveries int            `json:"deliveries"` // consume ops, redeliveries included
	Duplicates int            `json:"duplicates"` // deliveries beyond the first of a value
	Recovered  int            `json:"recovered"`  // unknown outcome, delivered
	NackedSeen int            `json:"nacked_delivered"`
	Destroyed  int            `json:"destroyed"` // confirmed values a fault destroyed on disk
	Faults     map[string]int `json:"faults"`
	// Recovery is the time from a fault's end to the first confirm after it.
	Recovery map[string]Recovery `json:"recovery"`
	MetaOps  int                 `json:"meta_ops"`
	// Skipped counts scheduled faults that were not injected, per kind,
	// and SkipReasons says why (the last reason seen per kind).
	Skipped     map[string]int    `json:"skipped,omitempty"`
	SkipReasons map[string]string `json:"skip_reasons,omitempty"`
}

// Report is report.json.
type Report struct {
	Passed   int       `json:"passed"`
	Failed   int       `json:"failed"`
	Verdicts []Verdict `json:"verdicts"`
	Stats    Stats     `json:"stats"`
}

// OK says whether every verdict passed.
func (r *Report) OK() bool { return r.Failed == 0 }

// Write writes the report as indented JSON.
func (r *Report) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// verdicts collects findings per check.
type verdicts struct {
	list []Verdict
}

// add records a check: failing when it has findings and fails is true.
func (v *verdicts) add(name string, findings []Finding, fails bool, detail string) {
	vd := Verdict{Name: name, Count: len(findings), Passed: !fails || len(findings) == 0, Detail: detail}
	if len(findings) > maxExamples {
		findings = findings[:maxExamples]
	}
	vd.Examples = findings
	v.list = append(v.list, vd)
}

package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
)

// export and import: GET and POST /api/definitions, RabbitMQ's JSON
// format, whole or (with --vhost) one vhost's.

func init() {
	ctlCommands = append(ctlCommands,
		&ctlCommand{name: "export", args: "FILE|-", min: 1, max: 1,
			summary: "write the definitions (GET /api/definitions, RabbitMQ's JSON) to FILE or standard output; --vhost for one vhost's",
			def:     func(*flag.FlagSet) func(*ctlRun, []string) error { return runExport }},
		&ctlCommand{name: "import", args: "FILE|-", min: 1, max: 1,
			summary: "load definitions in RabbitMQ's JSON format (all or nothing); --vhost loads into that vhost; the server's warnings (users imported unable to log in, keys with no effect) go to standard error, and --fail-on-warnings makes them exit 6",
			def:     defImport},
	)
}

func (r *ctlRun) definitionsPath() string {
	if r.g.vhostSet {
		return apiPath("definitions", r.g.vhost)
	}
	return "/api/definitions"
}

func runExport(r *ctlRun, args []string) error {
	cl, err := r.client()
	if err != nil {
		return err
	}
	body, _, err := cl.do(http.MethodGet, r.definitionsPath(), nil, nil)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		return &ctlError{code: exitServer, msg: "the server's definitions are not JSON: " + err.Error()}
	}
	pretty.WriteByte('\n')
	if args[0] == "-" {
		_, err := r.stdout.Write(pretty.Bytes())
		return err
	}
	// 0600: the file holds the users' password hashes.
	if err := os.WriteFile(args[0], pretty.Bytes(), 0o600); err != nil {
		return &ctlError{code: exitUsage, msg: err.Error()}
	}
	if !r.g.json {
		fmt.Fprintf(r.stdout, "Exported definitions to %s.\n", args[0])
	}
	return nil
}

func defImport(fs *flag.FlagSet) func(*ctlRun, []string) error {
	strict := fs.Bool("fail-on-warnings", false, "exit 6 when the server answers with warnings (the import was still applied)")
	return func(r *ctlRun, args []string) error { return runImport(r, args, *strict) }
}

func runImport(r *ctlRun, args []string, strict bool) error {
	var raw []byte
	var err error
	if args[0] == "-" {
		raw, err = io.ReadAll(r.stdin)
	} else {
		raw, err = os.ReadFile(args[0])
	}
	if err != nil {
		return usageErr("%v", err)
	}
	if !json.Valid(raw) {
		return usageErr("%s is not JSON", args[0])
	}
	cl, err := r.client()
	if err != nil {
		return err
	}
	answer, _, err := cl.do(http.MethodPost, r.definitionsPath(), raw, nil)
	if err != nil {
		return err
	}
	// 204, or 200 with the warnings of an import that was applied: what
	// it did that the person running it must know (a user imported
	// without a password cannot log in). The server logs them too, but
	// that is not where this person looks.
	var w struct {
		Warnings []string `json:"warnings"`
	}
	if len(bytes.TrimSpace(answer)) > 0 {
		if err := json.Unmarshal(answer, &w); err != nil {
			return &ctlError{code: exitServer, msg: "the server's answer is not JSON: " + err.Error()}
		}
	}
	for _, line := range w.Warnings {
		fmt.Fprintf(r.stderr, "tern ctl import: warning: %s\n", line)
	}
	if !r.g.json {
		if len(w.Warnings) > 0 {
			fmt.Fprintf(r.stdout, "Imported definitions from %s, with %d warning(s).\n", args[0], len(w.Warnings))
		} else {
			fmt.Fprintf(r.stdout, "Imported definitions from %s.\n", args[0])
		}
	}
	if strict && len(w.Warnings) > 0 {
		return &ctlError{code: exitWarnings, msg: fmt.Sprintf("%d warning(s) (--fail-on-warnings); the definitions were imported", len(w.Warnings))}
	}
	return nil
}

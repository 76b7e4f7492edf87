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
			summary: "load definitions in RabbitMQ's JSON format (all or nothing); --vhost loads into that vhost",
			def:     func(*flag.FlagSet) func(*ctlRun, []string) error { return runImport }},
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

func runImport(r *ctlRun, args []string) error {
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
	return r.change(http.MethodPost, r.definitionsPath(), raw, nil, fmt.Sprintf("Imported definitions from %s.", args[0]))
}

package main

import (
	"flag"
	"fmt"
	"net/http"
)

// set-policy and clear-policy: PUT and DELETE /api/policies/V/NAME (or
// /api/operator-policies with --operator), docs/policies.md.

func init() {
	ctlCommands = append(ctlCommands,
		&ctlCommand{name: "set-policy", args: "NAME PATTERN DEFINITION_JSON [--priority N] [--apply-to queues] [--vhost V]", min: 3, max: 3,
			summary: "create or replace a policy: queues (or exchanges) whose names match PATTERN take DEFINITION",
			def:     defSetPolicy},
		&ctlCommand{name: "clear-policy", args: "NAME [--vhost V] [--operator]", min: 1, max: 1,
			summary: "remove a policy",
			def: func(fs *flag.FlagSet) func(*ctlRun, []string) error {
				op := fs.Bool("operator", false, "an operator policy")
				return func(r *ctlRun, args []string) error {
					return r.change(http.MethodDelete, apiPath(policiesBase(*op), r.g.vhost, args[0]), nil, nil,
						fmt.Sprintf("Cleared %s %q in vhost %q.", policyWord(*op), args[0], r.g.vhost))
				}
			}},
	)
}

func policyWord(operator bool) string {
	if operator {
		return "operator policy"
	}
	return "policy"
}

func policiesBase(operator bool) string {
	if operator {
		return "operator-policies"
	}
	return "policies"
}

func defSetPolicy(fs *flag.FlagSet) func(*ctlRun, []string) error {
	priority := fs.Int("priority", 0, "the highest priority policy of those matching applies")
	applyTo := fs.String("apply-to", "all", "queues, classic_queues, quorum_queues, streams, exchanges or all")
	op := fs.Bool("operator", false, "an operator policy (caps that apply whatever the policies say)")
	return func(r *ctlRun, args []string) error {
		def, err := jsonObject("definition", args[2])
		if err != nil {
			return usageErr("DEFINITION_JSON must be a JSON object, like '{\"max-length\": 1000}'")
		}
		body := map[string]any{"pattern": args[1], "definition": def, "priority": *priority, "apply-to": *applyTo}
		return r.change(http.MethodPut, apiPath(policiesBase(*op), r.g.vhost, args[0]), body, nil,
			fmt.Sprintf("Set %s %q in vhost %q.", policyWord(*op), args[0], r.g.vhost))
	}
}

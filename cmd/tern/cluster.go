package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const clusterUsage = `Usage:
  tern cluster status [flags]          the nodes and every Raft group as a node sees them
                                       (--json: GET /api/cluster's document)
  tern cluster promote [flags] NODE    make the standby NODE a voter that serves clients
  tern cluster add-node [flags] NAME ADDR [--standby]
                                       add the node NAME (cluster address ADDR), started
                                       with --join, to the running cluster
  tern cluster remove-node [flags] NAME
                                       remove the node NAME from the cluster for good
                                       (its name can never be added again)
  tern cluster remove [flags] NODE     the same as remove-node
  tern cluster grow [flags] NODE [all|even]
                                       make NODE a voter of the matching quorum queues
                                       (all, or those with an even number of voters)
  tern cluster shrink [flags] NODE     make NODE a learner again in the matching quorum
                                       queues that have more voters than their size

Flags:
  --http URL     the node's HTTP address (default http://127.0.0.1:15672); --url URL is
                 the same (tern ctl's spelling)
  --json         status, promote, add-node, remove-node: print GET /api/cluster's JSON
                 document instead of the summary or sentence
  --standby      add-node: the node joins as a non-voting standby
  --vhost-pattern RE, --queue-pattern RE
                 grow, shrink: only queues whose vhost and name match (default all)
  --all, --even  grow: the strategy (default all)
  --user NAME    an administrator (default guest); the password is read from
                 TERN_API_PASSWORD (default guest)
`

// runCluster is `tern cluster`: the cluster's HTTP API from the command line.
func runCluster(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, clusterUsage)
		return 0
	}
	cmd := args[0]
	fs := flag.NewFlagSet("tern cluster "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("http", "http://127.0.0.1:15672", "the node's HTTP address")
	fs.StringVar(base, "url", *base, "the same as --http (tern ctl's name for it)")
	user := fs.String("user", "guest", "an administrator's user name (password from TERN_API_PASSWORD)")
	asJSON := fs.Bool("json", false, "status, promote, add-node, remove-node: print GET /api/cluster's JSON document")
	standby := fs.Bool("standby", false, "add-node: the node joins as a non-voting standby")
	vhostPattern := fs.String("vhost-pattern", "", "grow, shrink: a regular expression for vhost names")
	queuePattern := fs.String("queue-pattern", "", "grow, shrink: a regular expression for queue names")
	all := fs.Bool("all", false, "grow: every matching queue")
	even := fs.Bool("even", false, "grow: only queues with an even number of voters")
	if err := fs.Parse(trailingFlags(args[1:])); err != nil { // cluster_nodes.go
		return 2
	}
	password, ok := os.LookupEnv("TERN_API_PASSWORD")
	if !ok {
		password = "guest"
	}
	var (
		method, path, body string
	)
	switch {
	case cmd == "status" && fs.NArg() == 0:
		method, path = http.MethodGet, "/api/cluster"
	case cmd == "promote" && fs.NArg() == 1:
		method, path, body = http.MethodPost, "/api/cluster/promote", fmt.Sprintf(`{"node":%q}`, fs.Arg(0))
	case cmd == "add-node" && fs.NArg() == 2, (cmd == "remove-node" || cmd == "remove") && fs.NArg() == 1:
		method, path, body = nodesRequest(cmd, fs.Args(), *standby) // cluster_nodes.go
	case (cmd == "grow" && (fs.NArg() == 1 || fs.NArg() == 2)) || (cmd == "shrink" && fs.NArg() == 1):
		var err error
		method, path, body, err = growRequest(cmd, fs.Args(), *vhostPattern, *queuePattern, *all, *even) // cluster_grow.go
		if err != nil {
			fmt.Fprintln(stderr, "tern cluster "+cmd+":", err)
			return 2
		}
	default:
		fmt.Fprint(stderr, clusterUsage)
		return 2
	}
	out, err := callAPI(method, strings.TrimSuffix(*base, "/")+path, *user, password, body)
	if err != nil {
		fmt.Fprintln(stderr, "tern cluster "+cmd+":", err)
		return 1
	}
	switch {
	case cmd == "status" && !*asJSON:
		err = printClusterStatus(stdout, out) // cluster_print.go
	case cmd == "grow" || cmd == "shrink":
		err = printGrowResults(stdout, out)
	case !*asJSON && cmd != "status":
		err = printMembershipChange(stdout, cmd, fs.Arg(0), out, *standby) // cluster_change_print.go
	default:
		_, err = fmt.Fprint(stdout, out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tern cluster "+cmd+":", err)
		return 1
	}
	return 0
}

// callAPI makes one request and returns the body of a 2xx answer, or the
// status and body as the error.
func callAPI(method, url, user, password, body string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(user, password)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", errors.New(resp.Status + ": " + strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// `tern ctl` is the command line over the RabbitMQ-compatible HTTP API
// (internal/mgmt, docs/http-api.md), in the style of rabbitmqctl and
// rabbitmqadmin: every command is one or a few HTTP requests, so it works
// against a remote node exactly as against a local one, and against a
// RabbitMQ node too for the parts the two APIs share. docs/ctl.md lists
// every command with an example.

// Exit codes, for scripts (docs/ctl.md):
const (
	exitOK       = 0
	exitUsage    = 1 // bad command line: unknown command or flag, wrong arguments
	exitNotFound = 2 // the server answered 404: no such vhost, queue, user…
	exitRefused  = 3 // 401, 403 or 429: wrong credentials, or the user may not do this
	exitRejected = 4 // another 4xx: the request was refused as it stands (400 precondition, 405 locked, 409, 413)
	exitServer   = 5 // a 5xx answer, or the server could not be reached or spoke nonsense
	exitWarnings = 6 // done, with warnings (import --fail-on-warnings)
)

// ctlError carries an exit code to runCtl.
type ctlError struct {
	code int
	msg  string
}

func (e *ctlError) Error() string { return e.msg }

func usageErr(format string, a ...any) error {
	return &ctlError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

// ctlGlobals are the flags every command takes, before or after its name.
type ctlGlobals struct {
	url, user, password, passwordFile, cacert, vhost, columns string
	json                                                      bool
	timeout                                                   time.Duration
	vhostSet, passwordFlagUsed                                bool
}

// register adds the global flags to fs with their current values as
// defaults, so flags given before the command name survive the command's
// own FlagSet. passwordFile is false for the commands whose own
// --password-file names a new user's password (add-user,
// change-password): their login password then comes from
// TERN_CTL_PASSWORD or a --password-file before the command name.
func (g *ctlGlobals) register(fs *flag.FlagSet, passwordFile bool) {
	fs.StringVar(&g.url, "url", g.url, "the broker's HTTP API (https:// with --cacert for TLS)")
	fs.StringVar(&g.url, "http", g.url, "the same as --url (tern cluster's name for it)")
	fs.StringVar(&g.user, "user", g.user, "the user to log in as")
	fs.StringVar(&g.password, "password", g.password, "the password (visible in ps and shell history: prefer TERN_CTL_PASSWORD or --password-file)")
	if passwordFile {
		fs.StringVar(&g.passwordFile, "password-file", g.passwordFile, "read the login password from the first line of this file")
	}
	fs.StringVar(&g.cacert, "cacert", g.cacert, "PEM file of the CA that signed the server's certificate (https)")
	fs.StringVar(&g.vhost, "vhost", g.vhost, "the virtual host (list: show only this vhost's objects)")
	fs.BoolVar(&g.json, "json", g.json, "print the API's JSON instead of a table or a sentence")
	fs.StringVar(&g.columns, "columns", g.columns, "list, get: the columns to show, comma-separated JSON field names (a.b for nested fields)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up on a request after this long")
}

// ctlCommand is one `tern ctl` command.
type ctlCommand struct {
	name     string
	args     string // the synopsis after the name
	summary  string
	min, max int  // positional arguments; max -1 for any number
	ownPass  bool // its --password-file is the new user's (see register)
	// def registers the command's flags and returns what runs it.
	def func(fs *flag.FlagSet) func(c *ctlRun, args []string) error
}

// ctlRun is what a running command uses.
type ctlRun struct {
	g              *ctlGlobals
	stdin          io.Reader
	stdout, stderr io.Writer
	cl             *ctlClient
}

var ctlCommands []*ctlCommand

func ctlCommandNamed(name string) *ctlCommand {
	for _, c := range ctlCommands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const ctlIntro = `tern ctl — manage a Tern broker over its HTTP API (as rabbitmqctl and rabbitmqadmin do)

Usage:
  tern ctl [global flags] COMMAND [arguments] [flags]
  tern ctl COMMAND --help      a command's arguments and flags

`

const ctlOutro = `
Global flags (before or after the command):
  --url URL             the HTTP API (default http://127.0.0.1:15672; https://… with --cacert);
                        --http URL is the same (tern cluster's spelling)
  --user NAME           log in as NAME (default guest)
  --password-file FILE  the login password, from the file's first line
                        (or the environment variable TERN_CTL_PASSWORD; the user guest
                        without either logs in with the password guest)
  --password PASS       the password on the command line (visible in ps: avoid)
  --cacert FILE         the CA certificate to trust for https
  --vhost NAME          the virtual host (default "/"; list shows every vhost without it)
  --json                print JSON (lists: the API's objects) instead of a table or sentence
  --columns a,b         list and get: the columns to show (JSON field names, a.b for nested)
  --timeout DURATION    per request (default 30s)

Exit codes:
  0 ok   1 usage error   2 not found (404)   3 refused (401, 403, 429)
  4 rejected by the server (another 4xx, e.g. 400 inequivalent arguments)
  5 server error (5xx) or the server could not be reached
`

// ctlOrder is the order of the commands in the help, by topic.
var ctlOrder = []string{"list", "declare", "delete", "purge", "close-connection", "publish", "get", "export", "import",
	"add-user", "change-password", "set-user-tags", "delete-user", "add-vhost", "delete-vhost",
	"set-permissions", "clear-permissions", "set-topic-permissions", "clear-topic-permissions",
	"set-policy", "clear-policy", "set-vhost-limit", "clear-vhost-limit", "set-user-limit", "clear-user-limit", "status"}

func ctlUsage(w io.Writer) {
	fmt.Fprint(w, ctlIntro+"Commands:\n")
	sorted := slices.Clone(ctlCommands)
	sort.SliceStable(sorted, func(i, j int) bool { return ctlRank(sorted[i].name) < ctlRank(sorted[j].name) })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %s %s\n", c.name, c.args)
		for _, l := range wrapText(c.summary, 72) {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
	fmt.Fprint(w, ctlOutro)
}

func ctlRank(name string) int {
	if i := slices.Index(ctlOrder, name); i >= 0 {
		return i
	}
	return len(ctlOrder)
}

// wrapText breaks s into lines of at most width runes at spaces.
func wrapText(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// runCtl is `tern ctl`.
func runCtl(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &ctlGlobals{url: "http://127.0.0.1:15672", user: "guest", vhost: "/", timeout: 30 * time.Second}
	gfs := flag.NewFlagSet("tern ctl", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	g.register(gfs, true)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			ctlUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "tern ctl: %v\n\n", err)
		ctlUsage(stderr)
		return exitUsage
	}
	gfs.Visit(g.visit)
	if gfs.NArg() == 0 || gfs.Arg(0) == "help" {
		if gfs.NArg() > 1 {
			if c := ctlCommandNamed(gfs.Arg(1)); c != nil {
				ctlCommandHelp(c, stdout)
				return exitOK
			}
		}
		if gfs.NArg() == 0 {
			ctlUsage(stderr)
			return exitUsage
		}
		ctlUsage(stdout)
		return exitOK
	}
	c := ctlCommandNamed(gfs.Arg(0))
	if c == nil {
		fmt.Fprintf(stderr, "tern ctl: unknown command %q (tern ctl --help lists them)\n", gfs.Arg(0))
		return exitUsage
	}
	fs := flag.NewFlagSet("tern ctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs, !c.ownPass)
	run := c.def(fs)
	pos, err := parseInterleaved(fs, gfs.Args()[1:])
	if errors.Is(err, flag.ErrHelp) {
		ctlCommandHelp(c, stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "tern ctl %s: %v (tern ctl %s --help)\n", c.name, err, c.name)
		return exitUsage
	}
	fs.Visit(g.visit)
	if len(pos) < c.min || (c.max >= 0 && len(pos) > c.max) {
		fmt.Fprintf(stderr, "tern ctl %s: wrong number of arguments\nUsage: tern ctl %s %s\n", c.name, c.name, c.args)
		return exitUsage
	}
	if g.passwordFlagUsed {
		fmt.Fprintln(stderr, "tern ctl: warning: --password is visible to other users in ps and stays in shell history; prefer TERN_CTL_PASSWORD or --password-file")
	}
	r := &ctlRun{g: g, stdin: stdin, stdout: stdout, stderr: stderr}
	if err := run(r, pos); err != nil {
		code := exitServer
		var ce *ctlError
		if errors.As(err, &ce) {
			code = ce.code
		}
		fmt.Fprintf(stderr, "tern ctl %s: %v\n", c.name, err)
		return code
	}
	return exitOK
}

func (g *ctlGlobals) visit(f *flag.Flag) {
	switch f.Name {
	case "vhost":
		g.vhostSet = true
	case "password":
		g.passwordFlagUsed = true
	}
}

func ctlCommandHelp(c *ctlCommand, w io.Writer) {
	fmt.Fprintf(w, "Usage: tern ctl %s %s\n\n%s\n", c.name, c.args, strings.Join(wrapText(c.summary, 78), "\n"))
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.def(fs)
	own := 0
	fs.VisitAll(func(*flag.Flag) { own++ })
	if own > 0 {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprint(w, ctlOutro)
}

// parseInterleaved parses flags anywhere among the positional arguments
// (`list queues --json` as well as `--json list queues`); after "--"
// everything is positional (a negative number, a name starting with -).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// splitList splits "a,b, c" into its non-empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// readSecretFile reads a password from the first line of a file ("-" is
// standard input).
func readSecretFile(path string, stdin io.Reader, stderr io.Writer) (string, error) {
	if path == "-" {
		return readPassword(stdin, stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

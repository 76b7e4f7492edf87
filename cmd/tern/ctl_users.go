package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"golang.org/x/term"
)

// Users, vhosts, permissions and limits: issue 14's run-time changes from
// the command line, over /api/users, /api/vhosts, /api/permissions,
// /api/topic-permissions, /api/vhost-limits and /api/user-limits.

func init() {
	ctlCommands = append(ctlCommands,
		&ctlCommand{name: "add-user", args: "NAME [--password-stdin|--password-file FILE|--no-password] [--tags a,b]", min: 1, max: 1, ownPass: true,
			summary: "create a user (exit 4 if it exists); the password is prompted for on a terminal",
			def:     defAddUser},
		&ctlCommand{name: "change-password", args: "NAME [--password-stdin|--password-file FILE]", min: 1, max: 1, ownPass: true,
			summary: "set a user's password (its tags stay)",
			def:     defChangePassword},
		&ctlCommand{name: "set-user-tags", args: "NAME [TAG...]", min: 1, max: -1,
			summary: "replace a user's tags (administrator, monitoring, management, policymaker; none clears them)",
			def: func(*flag.FlagSet) func(*ctlRun, []string) error {
				return func(r *ctlRun, args []string) error {
					if _, err := r.userTags(args[0]); err != nil {
						return err
					}
					tags := args[1:]
					if tags == nil {
						tags = []string{}
					}
					return r.change(http.MethodPut, apiPath("users", args[0]), map[string]any{"tags": tags}, nil,
						fmt.Sprintf("Set the tags of user %q to %v.", args[0], tags))
				}
			}},
		&ctlCommand{name: "delete-user", args: "NAME", min: 1, max: 1, summary: "delete a user (its connections stay open until they close)",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				return http.MethodDelete, apiPath("users", a[0]), nil, fmt.Sprintf("Deleted user %q.", a[0])
			})},
		&ctlCommand{name: "add-vhost", args: "NAME", min: 1, max: 1, summary: "create a vhost (an existing one is left as it is)",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				return http.MethodPut, apiPath("vhosts", a[0]), map[string]any{}, fmt.Sprintf("Added vhost %q.", a[0])
			})},
		&ctlCommand{name: "delete-vhost", args: "NAME", min: 1, max: 1, summary: "delete a vhost with its queues, messages and permissions",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				return http.MethodDelete, apiPath("vhosts", a[0]), nil, fmt.Sprintf("Deleted vhost %q and everything in it.", a[0])
			})},
		&ctlCommand{name: "set-permissions", args: "USER CONFIGURE WRITE READ [--vhost V]", min: 4, max: 4,
			summary: "grant USER the three regular expressions in the vhost (\".*\" allows all, \"\" nothing)",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				return http.MethodPut, apiPath("permissions", r.g.vhost, a[0]), map[string]string{"configure": a[1], "write": a[2], "read": a[3]},
					fmt.Sprintf("Set the permissions of user %q in vhost %q.", a[0], r.g.vhost)
			})},
		&ctlCommand{name: "clear-permissions", args: "USER [--vhost V]", min: 1, max: 1, summary: "take USER's permissions in the vhost away",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				return http.MethodDelete, apiPath("permissions", r.g.vhost, a[0]), nil,
					fmt.Sprintf("Cleared the permissions of user %q in vhost %q.", a[0], r.g.vhost)
			})},
		&ctlCommand{name: "set-topic-permissions", args: "USER EXCHANGE WRITE READ [--vhost V]", min: 4, max: 4,
			summary: "limit the routing keys USER may publish (WRITE) and bind (READ) on a topic EXCHANGE",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				return http.MethodPut, apiPath("topic-permissions", r.g.vhost, a[0]), map[string]string{"exchange": a[1], "write": a[2], "read": a[3]},
					fmt.Sprintf("Set the topic permissions of user %q on exchange %q in vhost %q.", a[0], a[1], r.g.vhost)
			})},
		&ctlCommand{name: "clear-topic-permissions", args: "USER [EXCHANGE] [--vhost V]", min: 1, max: 2,
			summary: "remove USER's topic permissions in the vhost (all, or EXCHANGE's)",
			def: simple(func(r *ctlRun, a []string) (string, string, any, string) {
				p := apiPath("topic-permissions", r.g.vhost, a[0])
				if len(a) == 2 {
					p += "?exchange=" + esc(a[1])
				}
				return http.MethodDelete, p, nil, fmt.Sprintf("Cleared topic permissions of user %q in vhost %q.", a[0], r.g.vhost)
			})},
		&ctlCommand{name: "set-vhost-limit", args: "NAME VALUE [--vhost V]", min: 2, max: 2,
			summary: "set a vhost limit: max-connections or max-queues (a negative VALUE, after --, removes it)",
			def:     limitCmd(false, false)},
		&ctlCommand{name: "clear-vhost-limit", args: "NAME [--vhost V]", min: 1, max: 1, summary: "remove a vhost limit",
			def: limitCmd(false, true)},
		&ctlCommand{name: "set-user-limit", args: "USER NAME VALUE", min: 3, max: 3,
			summary: "set a user limit: max-connections or max-channels",
			def:     limitCmd(true, false)},
		&ctlCommand{name: "clear-user-limit", args: "USER NAME", min: 2, max: 2, summary: "remove a user limit",
			def: limitCmd(true, true)},
	)
}

// simple makes a command of one request.
func simple(f func(r *ctlRun, args []string) (method, path string, body any, done string)) func(*flag.FlagSet) func(*ctlRun, []string) error {
	return func(*flag.FlagSet) func(*ctlRun, []string) error {
		return func(r *ctlRun, args []string) error {
			m, p, b, done := f(r, args)
			return r.change(m, p, b, nil, done)
		}
	}
}

func limitCmd(user, clear bool) func(*flag.FlagSet) func(*ctlRun, []string) error {
	return simple(func(r *ctlRun, a []string) (string, string, any, string) {
		scope, owner, what := "vhost-limits", r.g.vhost, "vhost"
		if user {
			scope, owner, what, a = "user-limits", a[0], "user", a[1:]
		}
		p := apiPath(scope, owner, a[0])
		if clear {
			return http.MethodDelete, p, nil, fmt.Sprintf("Cleared the %s limit %s of %s %q.", what, a[0], what, owner)
		}
		// A value that is not a number goes as a string, for the server
		// to refuse with its reason (400, exit 4).
		var body any = map[string]string{"value": a[1]}
		if v, err := strconv.ParseInt(a[1], 10, 64); err == nil {
			body = map[string]int64{"value": v}
		}
		return http.MethodPut, p, body, fmt.Sprintf("Set the %s limit %s of %s %q to %s.", what, a[0], what, owner, a[1])
	})
}

// userTags is a user's current tags (404 when there is no such user).
func (r *ctlRun) userTags(name string) ([]string, error) {
	cl, err := r.client()
	if err != nil {
		return nil, err
	}
	var u struct {
		Tags []string `json:"tags"`
	}
	if err := cl.getJSON(apiPath("users", name), &u); err != nil {
		return nil, err
	}
	if u.Tags == nil {
		u.Tags = []string{}
	}
	return u.Tags, nil
}

// newPassword is the password for add-user and change-password: from
// --password-file, standard input, or a prompt on a terminal.
type newPassword struct {
	file  *string
	stdin *bool
}

func newPasswordFlags(fs *flag.FlagSet) newPassword {
	return newPassword{
		file:  fs.String("password-file", "", "the new password, from the first line of FILE (the login password then comes from TERN_CTL_PASSWORD or a --password-file before the command name)"),
		stdin: fs.Bool("password-stdin", false, "read the new password from the first line of standard input"),
	}
}

func (n newPassword) read(r *ctlRun) (string, error) {
	var p string
	var err error
	switch {
	case *n.file != "" && *n.stdin:
		return "", usageErr("give --password-file or --password-stdin, not both")
	case *n.file != "":
		p, err = readSecretFile(*n.file, r.stdin, r.stderr)
	case *n.stdin:
		p, err = readPassword(r.stdin, r.stderr)
	default:
		f, ok := r.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", usageErr("no password: give --password-stdin, --password-file FILE or --no-password")
		}
		p, err = readPassword(r.stdin, r.stderr)
	}
	if err != nil {
		return "", usageErr("%v", err)
	}
	if p == "" {
		return "", usageErr("empty password")
	}
	return p, nil
}

func defAddUser(fs *flag.FlagSet) func(*ctlRun, []string) error {
	np := newPasswordFlags(fs)
	noPassword := fs.Bool("no-password", false, "a user without a password (client certificate logins only)")
	tags := fs.String("tags", "", "comma-separated tags: administrator, monitoring, management, policymaker")
	loopback := fs.Bool("loopback-only", false, "the user may log in from loopback addresses only")
	return func(r *ctlRun, args []string) error {
		body := map[string]any{"tags": splitList(*tags)}
		if body["tags"] == nil {
			body["tags"] = []string{}
		}
		if *loopback {
			body["loopback_only"] = true
		}
		if *noPassword {
			if *np.file != "" || *np.stdin {
				return usageErr("--no-password with a password?")
			}
			body["password_hash"] = ""
		} else {
			p, err := np.read(r)
			if err != nil {
				return err
			}
			body["password"] = p
		}
		_, err := r.userTags(args[0])
		switch {
		case err == nil:
			return &ctlError{code: exitRejected, msg: fmt.Sprintf("user %q already exists (change-password and set-user-tags change it)", args[0])}
		case !isNotFound(err):
			return err
		}
		return r.change(http.MethodPut, apiPath("users", args[0]), body, nil, fmt.Sprintf("Added user %q.", args[0]))
	}
}

func defChangePassword(fs *flag.FlagSet) func(*ctlRun, []string) error {
	np := newPasswordFlags(fs)
	return func(r *ctlRun, args []string) error {
		p, err := np.read(r)
		if err != nil {
			return err
		}
		// PUT replaces the tags too, so send the ones the user has.
		tags, err := r.userTags(args[0])
		if err != nil {
			if isNotFound(err) {
				return &ctlError{code: exitNotFound, msg: fmt.Sprintf("no user %q", args[0])}
			}
			return err
		}
		return r.change(http.MethodPut, apiPath("users", args[0]), map[string]any{"password": p, "tags": tags}, nil,
			fmt.Sprintf("Changed the password of user %q.", args[0]))
	}
}

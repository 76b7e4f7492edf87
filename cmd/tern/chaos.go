package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/tern-broker/tern/internal/chaos"
	"github.com/tern-broker/tern/internal/chaos/checker"
)

const chaosUsage = `Usage:
  tern chaos run [--seed N] [--nodes 1|3|5] [--profile ci|long] [--out DIR] [--schedule FILE] [--mqtt-qos2=false] [--bin FILE]
      run a fault campaign inside private network, mount and pid namespaces (needs root
      and unshare): nodes on 127.0.0.11.., clients on 127.0.0.2x, faults from the seed
      (or replayed from a schedule.json); writes DIR/history.jsonl, schedule.json,
      report.json and node logs; exit 1 when a verdict fails, 2 on bad input.
      Delay and clock-skew faults need nodes built with -tags chaos (this binary, or
      --bin); bandwidth faults need tc with htb and u32; otherwise they are skipped,
      with the reason in the output and report.json
  tern chaos check DIR
      re-check DIR/history.jsonl and rewrite DIR/report.json
  tern chaos hooks
      exit 0 if this binary was built with -tags chaos (delay and clock-skew hooks), 1 if not
`

func runChaos(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, chaosUsage)
		return 2
	}
	switch args[0] {
	case "run":
		return chaosRun(args[1:], stdout, stderr)
	case "check":
		return chaosCheck(args[1:], stdout, stderr)
	case "hooks":
		if chaosHooksBuilt {
			fmt.Fprintln(stdout, "chaos hooks: built in (-tags chaos): delay and clock-skew faults run")
			return 0
		}
		fmt.Fprintln(stdout, "chaos hooks: not built in; "+chaos.HooksHint)
		return 1
	case "help", "-h", "--help":
		fmt.Fprint(stdout, chaosUsage)
		return 0
	}
	fmt.Fprintf(stderr, "tern chaos: unknown command %q\n%s", args[0], chaosUsage)
	return 2
}

func chaosRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern chaos run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seedFlag := fs.String("seed", "", "the run's seed, a number (default: a random one, printed)")
	nodes := fs.Int("nodes", 1, "1, 3 or 5 nodes")
	profile := fs.String("profile", "ci", "ci (about a minute: each single-node fault once; on 3 or 5 nodes kill, kill-leader, kill-all, pause, two partitions, loss, bandwidth, delay, clock-skew) or long")
	out := fs.String("out", "", "output directory (default ./chaos-SEED)")
	schedFile := fs.String("schedule", "", "replay this schedule.json instead of generating one")
	qos2 := fs.Bool("mqtt-qos2", true, "one node: run the MQTT QoS 2 producer and subscriber (a replayed schedule keeps its own choice)")
	binFlag := fs.String("bin", "", "the tern binary the nodes run (default: this one); built with -tags chaos it runs delay and clock-skew faults")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "tern chaos:", err)
		return 2
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	var sched chaos.Schedule
	var err error
	if *schedFile != "" {
		if sched, err = chaos.LoadSchedule(*schedFile); err != nil {
			return fail(err)
		}
	} else {
		seed := rand.Uint64() >> 1
		if *seedFlag != "" {
			if seed, err = strconv.ParseUint(*seedFlag, 10, 64); err != nil {
				return fail(fmt.Errorf("--seed %q is not a number", *seedFlag))
			}
		}
		if sched, err = chaos.Generate(seed, *nodes, *profile); err != nil {
			return fail(err)
		}
		sched.NoMQTTQoS2 = !*qos2
	}
	inside := os.Getenv(chaos.SandboxEnv) == "1"
	if !inside {
		fmt.Fprintf(stdout, "seed %d\n", sched.Seed)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	bin, hooks := self, chaosHooksBuilt
	if *binFlag != "" {
		if bin, err = filepath.Abs(*binFlag); err != nil {
			return fail(err)
		}
		if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fail(fmt.Errorf("--bin %q is not an executable file", *binFlag))
		}
		// Exit 0 and the answer's words: /bin/true has no hooks.
		hookOut, err := exec.Command(bin, "chaos", "hooks").Output()
		hooks = err == nil && strings.HasPrefix(string(hookOut), "chaos hooks: built in")
	}
	if sched.Nodes > 1 {
		if err := chaos.ClusterSupported(bin); err != nil {
			return fail(err)
		}
	}
	if *out == "" {
		*out = fmt.Sprintf("chaos-%d", sched.Seed)
	}
	if !inside {
		return chaosEnterSandbox(self, bin, sched, *out, stdout, stderr)
	}
	if err := chaos.EnterSandbox(); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, chaos.Config{Schedule: sched, Out: *out, Bin: bin, Hooks: hooks, Log: stdout})
	if err != nil {
		fmt.Fprintln(stderr, "tern chaos: the run failed before a verdict:", err)
		fmt.Fprintln(stdout, "0 passed, 1 failed")
		return 1
	}
	return printReport(stdout, rep, *out)
}

// chaosEnterSandbox saves the schedule and re-executes tern under unshare,
// replaying exactly that schedule inside.
func chaosEnterSandbox(self, bin string, sched chaos.Schedule, out string, stdout, stderr io.Writer) int {
	if err := chaos.SandboxPreflight(); err != nil {
		fmt.Fprintln(stderr, "tern chaos:", err)
		return 2
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintln(stderr, "tern chaos:", err)
		return 2
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		fmt.Fprintln(stderr, "tern chaos:", err)
		return 2
	}
	path := filepath.Join(abs, "schedule.json")
	if err := sched.Save(path); err != nil {
		fmt.Fprintln(stderr, "tern chaos:", err)
		return 2
	}
	cmd := chaos.SandboxCommand(self, []string{"chaos", "run", "--schedule", path, "--out", abs, "--bin", bin})
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	default:
		fmt.Fprintln(stderr, "tern chaos: unshare:", err)
		return 2
	}
}

func chaosCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "tern chaos check: give one directory holding history.jsonl")
		return 2
	}
	rep, err := chaos.CheckDir(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "tern chaos check:", err)
		return 2
	}
	return printReport(stdout, rep, args[0])
}

// printReport prints the counts and every verdict, ending with the
// "N passed, N failed" line; it returns the exit status.
func printReport(w io.Writer, rep *checker.Report, dir string) int {
	s := rep.Stats
	kinds := make([]string, 0, len(s.Faults))
	for k := range s.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "faults:")
	for _, k := range kinds {
		rec := s.Recovery[k]
		fmt.Fprintf(w, " %s×%d (recovery p50 %d ms, max %d ms)", k, s.Faults[k], rec.P50MS, rec.MaxMS)
	}
	if len(s.Skipped) > 0 {
		skipped := make([]string, 0, len(s.Skipped))
		for k := range s.Skipped {
			skipped = append(skipped, k)
		}
		sort.Strings(skipped)
		for _, k := range skipped {
			fmt.Fprintf(w, "\nskipped: %s×%d: %s", k, s.Skipped[k], s.SkipReasons[k])
		}
	}
	fmt.Fprintf(w, "\npublished %d: confirmed %d, nacked %d (delivered anyway %d), unknown %d; delivered %d distinct (%d deliveries), duplicates %d, recovered %d, destroyed by faults %d; metadata ops %d\n",
		s.Published, s.Confirmed, s.Nacked, s.NackedSeen, s.Unknown, s.Delivered, s.Deliveries, s.Duplicates, s.Recovered, s.Destroyed, s.MetaOps)
	for _, v := range rep.Verdicts {
		mark := "PASS"
		if !v.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %-14s %d  %s\n", mark, v.Name, v.Count, v.Detail)
		if !v.Passed {
			for _, e := range v.Examples {
				fmt.Fprintf(w, "     %s %s: %s (history lines %v)\n", e.Queue, e.Value, e.Detail, e.Lines)
			}
		}
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.json"))
	fmt.Fprintf(w, "%d passed, %d failed\n", rep.Passed, rep.Failed)
	if rep.OK() {
		return 0
	}
	return 1
}

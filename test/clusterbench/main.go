package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	bin := flag.String("tern", "/tmp/tern", "the tern binary (go build -o /tmp/tern ./cmd/tern)")
	dir := flag.String("dir", "/tmp/clusterbench", "data directories and logs of the Tern nodes (emptied first)")
	base := flag.Int("base-port", 5780, "single node: AMQP base+0 (HTTP 10000+, cluster 20000+); cluster nodes base+10+i")
	rabbit := flag.String("rabbit", "", "the directory of rabbitmq-cluster.sh's running RabbitMQ cluster (empty: no RabbitMQ)")
	phases := flag.String("phases", "throughput,failover,idle", "what to measure, comma-separated")
	rounds := flag.Int("rounds", 2, "throughput: interleaved rounds of every broker")
	dur := flag.Duration("duration", 10*time.Second, "throughput: publishing time per run")
	trials := flag.Int("trials", 20, "failover: kill -9 trials on Tern")
	rabbitTrials := flag.Int("rabbit-trials", 5, "failover: kill -9 trials on RabbitMQ")
	idleQueues := flag.Int("idle-queues", 1000, "idle: quorum queues to declare")
	idleWindow := flag.Duration("idle-window", 30*time.Second, "idle: CPU measuring window")
	pprof := flag.Bool("pprof", false, "start the Tern nodes with --pprof")
	flag.StringVar(&nodeLogLevel, "log-level", "warn", "the Tern nodes' --log-level (info logs every Raft leader change)")
	flag.Parse()
	if err := run(*bin, *dir, *base, *rabbit, strings.Split(*phases, ","), *rounds, *dur, *trials, *rabbitTrials, *idleQueues, *idleWindow, *pprof); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

func run(bin, dir string, base int, rabbitDir string, phases []string, rounds int, dur time.Duration, trials, rabbitTrials, idleQueues int, idleWindow time.Duration, pprof bool) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	single, err := ternCluster(filepath.Join(dir, "single"), base, 1, pprof)
	if err != nil {
		return err
	}
	cluster, err := ternCluster(filepath.Join(dir, "cluster"), base+10, 3, pprof)
	if err != nil {
		return err
	}
	all := append(slices.Clone(single), cluster...)
	defer func() {
		for _, n := range all {
			n.stop()
		}
	}()
	if err := startAll(bin, all); err != nil {
		return err
	}
	fmt.Printf("Tern single node pid %d (%s); cluster pids %d %d %d (%s); data under %s\n",
		single[0].pid(), single[0].amqpAddr, cluster[0].pid(), cluster[1].pid(), cluster[2].pid(),
		strings.Join([]string{cluster[0].amqpAddr, cluster[1].amqpAddr, cluster[2].amqpAddr}, ","), dir)
	ternSingle, ternQuorum := ternBroker("Tern single", single), ternBroker("Tern cluster", cluster)
	var rmq, rmqN1 *broker
	if rabbitDir != "" {
		if rmq, err = rabbitBroker(rabbitDir); err != nil {
			return err
		}
		rmqN1 = &broker{name: "RabbitMQ node 1", urls: rmq.urls[:1], pids: func() []int { return rmq.pids()[:1] }}
	}
	for _, ph := range phases {
		switch ph {
		case "throughput":
			fmt.Printf("\n## throughput (%s each, %d rounds; load %s)\n\n", dur, rounds, loadavg())
			fmt.Println("| run | confirmed / received msg/s | confirm p50 / p99 | end-to-end p50 / p99 | broker CPU per msg | WAL fsyncs | load |")
			fmt.Println("|---|---|---|---|---|---|---|")
			var cmds []string
			for r := 0; r < rounds; r++ {
				rows := []throughputRow{
					runThroughput(bin, "Tern 1 node, durable classic", ternSingle, ternSingle.urls, "classic", dur),
					runThroughput(bin, "Tern 3 nodes, quorum (3 replicas)", ternQuorum, ternQuorum.urls, "quorum", dur),
				}
				if rmq != nil {
					rows = append(rows,
						runThroughput(bin, "RabbitMQ node 1, durable classic", rmqN1, rmqN1.urls, "classic", dur),
						runThroughput(bin, "RabbitMQ 3 nodes, quorum (3 replicas)", rmq, rmq.urls, "quorum", dur))
				}
				for _, row := range rows {
					fmt.Println(row.String())
					if r == 0 {
						cmds = append(cmds, row.cmd)
					}
				}
			}
			fmt.Println("\ncommands:")
			for _, c := range cmds {
				fmt.Println("  " + c)
			}
		case "idle":
			fmt.Printf("\n## %d idle quorum queues\n\n", idleQueues)
			res, err := idleQuorumQueues(ternQuorum, idleQueues, idleWindow)
			if err != nil {
				fmt.Println("Tern:", err)
			} else {
				fmt.Print(res.report("Tern"))
			}
			deleteIdle(ternQuorum.urls[0], idleQueues)
			if rmq != nil {
				res, err := idleQuorumQueues(rmq, idleQueues, idleWindow)
				if err != nil {
					fmt.Println("RabbitMQ:", err)
				} else {
					fmt.Print(res.report("RabbitMQ"))
				}
				deleteIdle(rmq.urls[0], idleQueues)
			}
		case "failover":
			fmt.Printf("\n## failover: kill -9 of the queue's leader → first confirm from the new one\n\n")
			if err := declareQuorum(ternQuorum.urls[0], "failover"); err != nil {
				return err
			}
			report("Tern", runTrials(ternTarget(bin, cluster), trials))
			if rmq != nil {
				if err := declareQuorum(rmq.urls[0], "failover"); err != nil {
					return err
				}
				report("RabbitMQ", runTrials(rabbitTarget(rabbitDir, rmq), rabbitTrials))
				deleteQueue(rmq.urls[0], "failover")
			}
			deleteQueue(ternQuorum.urls[0], "failover")
		default:
			return fmt.Errorf("unknown phase %q", ph)
		}
	}
	return nil
}

func declareQuorum(url, name string) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	return err
}

func deleteQueue(url, name string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_, _ = ch.QueueDelete(name, false, false, false)
	}
}

func runTrials(tg failoverTarget, n int) []trial {
	var out []trial
	for i := 0; i < n; i++ {
		tr := failoverTrial(tg, "failover")
		fmt.Printf("  trial %2d: leader n%d killed, publishing via n%d: first confirm after %v (probe %v), %d nacked, load %s %v %v\n",
			i+1, tr.leader+1, tr.via+1, tr.failover.Round(time.Millisecond), tr.probe.Round(time.Millisecond), tr.nacked, loadavg(), errOrEmpty(tr.err), errOrEmpty(tr.probeErr))
		out = append(out, tr)
		if tr.err != nil && tr.failover == 0 && tr.probe == 0 && tr.leader == 0 && tr.via == 0 {
			continue // no kill happened
		}
		if err := tg.restart(tr.leader); err != nil {
			fmt.Printf("  restart of n%d: %v\n", tr.leader+1, err)
			break
		}
	}
	return out
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return "ERROR " + err.Error()
}

func report(name string, trials []trial) {
	var main, pr []time.Duration
	for _, t := range trials {
		if t.err == nil && t.failover > 0 {
			main = append(main, t.failover)
		}
		if t.probe > 0 {
			pr = append(pr, t.probe)
		}
	}
	fmt.Printf("%s: %d trials; main publisher p50 %v max %v; probe p50 %v max %v\n", name, len(trials),
		pct(main, 50), pct(main, 100), pct(pr, 50), pct(pr, 100))
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(time.Millisecond)
}

func ternTarget(bin string, nodes []*ternNode) failoverTarget {
	tg := failoverTarget{kill9: func(i int) { nodes[i].kill9() }}
	for _, n := range nodes {
		tg.urls = append(tg.urls, n.url())
	}
	tg.leader = func(queue string) (int, error) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for _, n := range nodes {
				st, err := status(n.httpAddr)
				if err != nil {
					continue
				}
				for _, g := range st.Groups {
					if g.Kind == "quorum" && g.Queue == queue && g.Leader != "" {
						for i, m := range nodes {
							if m.name == g.Leader {
								return i, nil
							}
						}
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return 0, errors.New("no leader known for the queue after 30s")
	}
	// restart: start the node again, then wait until the queue's leader
	// reports no follower lagging and leadership has settled (it moves back
	// to the preferred node by transfer once that node caught up). An idle
	// quorum queue's group is quiet and does not bring a restarted replica
	// up to date until its next write (its follower stays in "probe" at
	// match 0), so a message is published every 200 ms while waiting.
	tg.restart = func(i int) error {
		if err := nodes[i].start(bin); err != nil {
			return err
		}
		nudge := newNudger(nodes[(i+1)%len(nodes)].url(), "failover")
		defer nudge.close()
		deadline := time.Now().Add(60 * time.Second)
		stable, last := 0, ""
		for n := 0; time.Now().Before(deadline) && stable < 10; n++ {
			time.Sleep(100 * time.Millisecond)
			if n%2 == 0 {
				nudge.publish()
			}
			l, err := tg.leader("failover")
			if err != nil {
				return err
			}
			st, err := status(nodes[l].httpAddr)
			if err != nil {
				stable = 0
				continue
			}
			caughtUp := false
			for _, g := range st.Groups {
				if g.Kind == "quorum" && g.Queue == "failover" && len(g.Followers) == 2 {
					caughtUp = g.Followers[0].Lag == 0 && g.Followers[1].Lag == 0
				}
			}
			if caughtUp && nodes[l].name == last {
				stable++
			} else {
				stable = 0
			}
			last = nodes[l].name
		}
		if stable < 10 {
			return errors.New("the cluster did not settle within 60s of the restart")
		}
		return nil
	}
	return tg
}

func rabbitTarget(dir string, b *broker) failoverTarget {
	script := filepath.Join(filepath.Dir(os.Args[0]), "rabbitmq-cluster.sh")
	if _, err := os.Stat(script); err != nil {
		script = "test/clusterbench/rabbitmq-cluster.sh"
	}
	tg := failoverTarget{urls: b.urls}
	tg.leader = func(queue string) (int, error) {
		out, err := exec.Command(script, "leader", queue, dir).Output()
		if err != nil {
			return 0, fmt.Errorf("rabbitmq leader of %s: %v", queue, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		return n - 1, err
	}
	tg.kill9 = func(i int) {
		pid := b.pids()[i]
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for j := 0; j < 200; j++ {
			if syscall.Kill(pid, 0) != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	tg.restart = func(i int) error {
		if out, err := exec.Command(script, "start-node", strconv.Itoa(i+1), dir).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		nb, err := rabbitBroker(dir)
		if err != nil {
			return err
		}
		pids := nb.pids()
		b.pids = func() []int { return pids }
		time.Sleep(3 * time.Second) // the queue's member on the node rejoins
		return nil
	}
	return tg
}

// nudger publishes single messages to a queue, ignoring failures.
type nudger struct {
	conn  *amqp.Connection
	ch    *amqp.Channel
	queue string
}

func newNudger(url, queue string) *nudger {
	n := &nudger{queue: queue}
	if c, err := amqp.Dial(url); err == nil {
		n.conn = c
		n.ch, _ = c.Channel()
	}
	return n
}

func (n *nudger) publish() {
	if n.ch != nil {
		_ = n.ch.Publish("", n.queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("nudge")})
	}
}

func (n *nudger) close() {
	if n.conn != nil {
		_ = n.conn.Close()
	}
}

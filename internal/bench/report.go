package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// WriteSummary prints the final table, and says loudly when messages were
// lost, duplicated or refused.
func WriteSummary(w io.Writer, r *Result) {
	c := r.Config
	if r.IdleConnections > 0 {
		fmt.Fprintf(w, "idle connections    %d held for %v\n", r.IdleConnections, c.Duration)
		if r.IdleWorkers > 0 {
			fmt.Fprintf(w, "client side         %d worker processes, %d source addresses\n", r.IdleWorkers, r.IdleSources)
			fmt.Fprintf(w, "connect time        %v (%.0f connections/s)\n", r.IdleConnectTime.Round(time.Millisecond), float64(r.IdleConnections)/r.IdleConnectTime.Seconds())
		}
		if r.IdleLimitedBy != "" {
			fmt.Fprintf(w, "limited by          %s\n", r.IdleLimitedBy)
		}
		if r.ServerRSSBefore > 0 {
			fmt.Fprintf(w, "server RSS          %.1f MiB → %.1f MiB\n", float64(r.ServerRSSBefore)/(1<<20), float64(r.ServerRSSAfter)/(1<<20))
			fmt.Fprintf(w, "per connection      %.2f KiB%s\n", r.BytesPerIdleConn/1024, gcNote(c))
			fmt.Fprintf(w, "server CPU idle     %.2f%% of a core\n", r.IdleCPUPercent)
			if r.BytesPerIdleConn > 0 {
				fmt.Fprintf(w, "1M projected        %.1f GiB\n", r.BytesPerIdleConn*1e6/(1<<30))
			}
		}
		if c.ConnectRate > 0 {
			l := r.ConnackLatency
			fmt.Fprintf(w, "connect storm       %.0f/s asked, %v for all (%.0f/s)\n", c.ConnectRate, r.IdleConnectTime.Round(time.Millisecond), float64(r.IdleConnections)/r.IdleConnectTime.Seconds())
			fmt.Fprintf(w, "CONNACK latency     p50 %v  p99 %v  p99.9 %v  max %v\n", l.P50, l.P99, l.P999, l.Max)
			if r.ServerCPU > 0 {
				fmt.Fprintf(w, "server CPU          %v (%.0f µs per connect)\n", r.ServerCPU.Round(time.Millisecond), float64(r.ServerCPU.Microseconds())/float64(r.IdleConnections))
			}
			if r.ClientCPU > 0 && r.IdleConnections > 0 {
				fmt.Fprintf(w, "bench CPU           %v (%.0f µs per connect, this process)\n", r.ClientCPU.Round(time.Millisecond), float64(r.ClientCPU.Microseconds())/float64(r.IdleConnections))
			}
		}
		if c.IdleRetained {
			fmt.Fprintf(w, "retained received   %d of %d\n", r.IdleRetainedReceived, r.IdleConnections)
		}
		return
	}
	fmt.Fprintf(w, "scenario            %s: %d producers, %d consumers, %d %s queues (%s), %d-byte messages, %s%s\n",
		orDash(c.Scenario), c.Producers, c.Consumers, c.Queues, c.Exchange, orClassic(c.QueueType), c.Size, persistence(c), confirmMode(c))
	if n := len(c.URLs()); n > 1 {
		fmt.Fprintf(w, "brokers             %d: %s\n", n, Redacted(c.URL))
	}
	if r.ServerCPU > 0 && r.Received > 0 {
		fmt.Fprintf(w, "server CPU          %v (%.2f µs per delivered message)\n", r.ServerCPU.Round(time.Millisecond), float64(r.ServerCPU.Microseconds())/float64(r.Received))
	}
	fmt.Fprintf(w, "duration            %v\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "sent                %d  (%.0f msg/s, %.1f MB/s)\n", r.Sent, r.SentRate, r.SentMBps)
	if c.Confirm > 0 {
		fmt.Fprintf(w, "confirmed           %d  (%.0f msg/s), nacked %d\n", r.Confirmed, r.ConfirmedRate, r.Nacked)
	}
	if c.Consumers > 0 {
		fmt.Fprintf(w, "received            %d of %d expected  (%.0f msg/s, %.1f MB/s)\n", r.Received, r.Expected, r.ReceivedRate, r.ReceivedMBps)
	}
	if r.Latency.Count > 0 {
		fmt.Fprintf(w, "latency end-to-end  p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
			roundDur(r.Latency.P50), roundDur(r.Latency.P90), roundDur(r.Latency.P99), roundDur(r.Latency.P999), roundDur(r.Latency.Max))
	}
	if r.ConfirmLatency.Count > 0 {
		fmt.Fprintf(w, "latency confirm     p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
			roundDur(r.ConfirmLatency.P50), roundDur(r.ConfirmLatency.P90), roundDur(r.ConfirmLatency.P99), roundDur(r.ConfirmLatency.P999), roundDur(r.ConfirmLatency.Max))
	}
	fmt.Fprintf(w, "lost %d  duplicated %d  reordered %d  returned %d\n", r.Lost, r.Duplicates, r.Reordered, r.Returned)
	if r.Redelivered > 0 {
		fmt.Fprintf(w, "redelivered         %d deliveries marked redelivered\n", r.Redelivered)
	}
	if !r.OK() {
		fmt.Fprintf(w, "\n!!! THIS RUN LOST OR REFUSED MESSAGES: lost %d, duplicated %d, nacked %d, returned %d !!!\n",
			r.Lost, r.Duplicates, r.Nacked, r.Returned)
	}
}

func orDash(s string) string {
	if s == "" {
		return "custom"
	}
	return s
}

func orClassic(s string) string {
	if s == "" {
		return "classic"
	}
	return s
}

func persistence(c Config) string {
	if c.Persistent {
		return "persistent"
	}
	return "transient"
}

func confirmMode(c Config) string {
	s := ""
	if c.Rate > 0 {
		s += fmt.Sprintf(", %.0f msg/s per producer", c.Rate)
	}
	if c.Confirm > 0 {
		s += fmt.Sprintf(", confirms (%d in flight)", c.Confirm)
	}
	if c.AutoAck {
		s += ", autoack"
	} else if c.Consumers > 0 {
		s += fmt.Sprintf(", manual ack (prefetch %d, every %d)", c.Prefetch, c.MultiAckEvery)
	}
	return s
}

// WriteJSON prints the result as JSON, with the URL's password redacted.
func WriteJSON(w io.Writer, r *Result) error {
	out := *r
	out.Config.URL = Redacted(r.Config.URL)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(&out)
}

func gcNote(c Config) string {
	if c.ServerGC {
		return " (resident set after a GC, SIGUSR1)"
	}
	return " (resident set, garbage included)"
}

package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// chromiumPath finds Debian's chromium (CI installs it: .ci/run).
func chromiumPath() string {
	if p := os.Getenv("TERN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts headless Chromium for one test, bounded by timeout.
func newBrowser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium): the browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	// The page's console and uncaught errors go to the test log: a failed
	// wait then says what the page did.
	msgs := chromedp.Console(ctx)
	var mu sync.Mutex
	ended := false
	t.Cleanup(func() { mu.Lock(); ended = true; mu.Unlock() })
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			if !ended {
				t.Logf("browser console %s: %s", m.Type, m.Text)
			}
			mu.Unlock()
		}
	}()
	return ctx
}

// login opens the console and logs in as guest, sampling every 2 s.
func login(ctx context.Context, base string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("tern.interval", "2000")`),
		chromedp.SendKeys(chromedp.ID("login-user"), "guest"),
		chromedp.SendKeys(chromedp.ID("login-password"), "guest"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("app")),
		// The overview has read the API once: the queue tile shows a number.
		poll(`/^[0-9,]+$/.test(document.querySelector("#ov-queues")?.textContent || "")`, 10*time.Second),
	)
}

// publisher publishes to queue every few milliseconds until stop is
// closed; the count of messages sent is returned on done.
func publisher(t *testing.T, ch *amqp.Channel, queue string, every time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("message %d", i))}); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	return &wg
}

// TestConsoleInBrowser logs in, finds a queue in the list, watches its
// depth chart rise while a publisher runs, purges it from the page and
// sees it empty. With TERN_SCREENSHOTS=1 it also writes
// docs/img/console-overview.png and docs/img/console-queue.png.
func TestConsoleInBrowser(t *testing.T) {
	shots := os.Getenv("TERN_SCREENSHOTS") != ""
	timeout := 40 * time.Second
	if shots {
		timeout = 90 * time.Second
	}
	ctx := newBrowser(t, timeout)
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	const queue = "console-orders"
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"billing", "emails", "audit-log"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := login(ctx, s.HTTPURL); err != nil {
		t.Fatalf("login: %v", err)
	}

	stop := make(chan struct{})
	wg := publisher(t, ch, queue, 5*time.Millisecond, stop)
	stopped := false
	stopPublisher := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopPublisher()

	if shots {
		// Some traffic on another queue, consumed, for the pictures.
		_, ch2 := s.Channel(t)
		deliveries, err := ch2.Consume("billing", "", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range deliveries {
			}
		}()
		wg2 := publisher(t, ch2, "billing", 8*time.Millisecond, stop)
		defer wg2.Wait()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900)); err != nil {
			t.Fatal(err)
		}
		// Let the overview's charts gather a few samples before the picture.
		if err := chromedp.Do(ctx,
			poll(`Number(document.querySelector("#chart-rates").dataset.samples) >= 6`, 30*time.Second),
			screenshot("console-overview.png"),
		); err != nil {
			t.Fatalf("overview screenshot: %v", err)
		}
	}

	// The queue appears in the list (searched by name, as with 10,000
	// queues one would) and its link opens its page.
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/queues"),
		chromedp.WaitVisible(chromedp.ID("search")),
		chromedp.SendKeys(chromedp.ID("search"), "orders"),
		poll(`(() => { const rows = document.querySelectorAll("#list-queues tbody tr");
			return rows.length === 1 && rows[0].querySelector("a")?.textContent === "`+queue+`"; })()`, 10*time.Second),
		chromedp.Click(chromedp.CSS(`#list-queues tbody a`)),
		chromedp.WaitVisible(chromedp.ID("chart-queue-depth")),
	)
	if err != nil {
		t.Fatalf("queue list: %v", err)
	}

	// The depth chart moves: a later sample holds more ready messages than
	// the first one drawn.
	err = chromedp.Do(ctx, poll(`(() => {
		const c = document.querySelector("#chart-queue-depth");
		if (!c || Number(c.dataset.samples) < 1) return false;
		const ready = Number(c.dataset.last.split(",")[0]);
		if (!window.firstSample) { window.firstSample = { n: Number(c.dataset.samples), ready: ready }; return false; }
		return Number(c.dataset.samples) > window.firstSample.n && ready > window.firstSample.ready;
	})()`, 15*time.Second))
	if err != nil {
		t.Fatalf("depth chart did not move while publishing: %v", err)
	}
	if shots {
		if err := chromedp.Do(ctx,
			poll(`Number(document.querySelector("#chart-queue-depth").dataset.samples) >= 6`, 30*time.Second),
			screenshot("console-queue.png"),
		); err != nil {
			t.Fatalf("queue screenshot: %v", err)
		}
	}
	stopPublisher()

	// Purge from the page (the confirm() is accepted) and see it empty.
	err = chromedp.Do(ctx,
		// Accept the console's confirm() as a user clicking OK would.
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.ID("purge")),
		poll(`document.querySelector("#q-messages")?.dataset.messages === "0"`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("purge from the console: %v", err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("after the console's purge the broker holds %d messages", q.Messages)
	}
}

// poll waits until the JavaScript expression is truthy in the page,
// checking every 100 ms for at most timeout.
func poll(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout))
}

// screenshot saves the viewport to docs/img/name.
func screenshot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		buf, err := chromedp.CaptureScreenshot()(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join("..", "..", "docs", "img", name), buf, 0o644)
	})
}

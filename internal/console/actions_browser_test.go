package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestConsoleQueueAndExchangeActions publishes through an exchange's
// page, sees the message routed by a binding shown there, takes it with
// the queue page's Get, publishes and peeks on the queue page, and deletes
// the queue from its page.
func TestConsoleQueueAndExchangeActions(t *testing.T) {
	ctx := newBrowser(t, 45*time.Second)
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("invoices", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("invoices", "invoice.created", "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := login(ctx, s.HTTPURL); err != nil {
		t.Fatalf("login: %v", err)
	}
	messages := func(want int) func() bool {
		return func() bool {
			q, err := ch.QueueDeclarePassive("invoices", true, false, false, false, nil)
			return err == nil && q.Messages == want
		}
	}

	// The exchange's page lists the binding and routes a publish by it.
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/exchanges/%2F/amq.direct"),
		rowWith("exchange-bindings", "invoices", "queue", "invoice.created"),
		chromedp.SetValue(chromedp.ID("xpublish-key"), "invoice.created"),
		chromedp.SetValue(chromedp.ID("xpublish-payload"), `{"id": 42}`),
		chromedp.Click(chromedp.ID("xpublish-submit")),
		poll(`[...document.querySelectorAll(".flash")].some(f => f.textContent === "Message published and routed.")`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("exchange page: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, "the console's publish in invoices", messages(1))

	// The queue's page: its binding, a Take (ack) of that message, a
	// publish through the default exchange, a Peek that leaves it there.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/queues/%2F/invoices"),
		rowWith("queue-bindings", "amq.direct", "invoice.created"),
		chromedp.SetValue(chromedp.ID("get-ackmode"), "ack_requeue_false"),
		chromedp.Click(chromedp.ID("get-submit")),
		poll(`document.querySelector("#get-results pre")?.textContent === '{"id": 42}'`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("queue page get: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, "invoices empty after the console's Take", messages(0))
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("publish-payload"), "hello from the console"),
		chromedp.Click(chromedp.ID("publish-submit")),
		poll(`document.querySelector("#q-messages")?.dataset.messages === "1"`, 10*time.Second),
		chromedp.SetValue(chromedp.ID("get-ackmode"), "ack_requeue_true"),
		chromedp.Click(chromedp.ID("get-submit")),
		poll(`document.querySelector("#get-results pre")?.textContent === "hello from the console"`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("queue page publish and peek: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, "the peeked message still in invoices", messages(1))

	// Delete with "only if empty" is refused (the API's 400), then
	// without it the queue goes and the console returns to the list.
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.ID("delete-if-empty")),
		chromedp.Click(chromedp.ID("delete")),
		poll(`[...document.querySelectorAll(".flash.error")].length > 0`, 10*time.Second),
		chromedp.Click(chromedp.ID("delete-if-empty")),
		chromedp.Click(chromedp.ID("delete")),
		poll(`location.hash === "#/queues" && document.querySelector("#list-queues") !== null`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("queue page delete: %v", err)
	}
	if code := apiGet(t, s.HTTPURL, "/api/queues/%2F/invoices", nil); code != http.StatusNotFound {
		t.Fatalf("GET the deleted queue: %d", code)
	}

	// Close a connection from the list: the client hears 320 with the
	// console's reason.
	doomed, err := amqp.DialConfig(s.URL, amqp.Config{Properties: amqp.Table{"connection_name": "doomed"}})
	if err != nil {
		t.Fatal(err)
	}
	defer doomed.Close()
	closed := doomed.NotifyClose(make(chan *amqp.Error, 1))
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/connections"),
		poll(`document.querySelector(".count")?.dataset.total === "2"`, 10*time.Second),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#list-connections tbody tr")]
			.find(tr => tr.querySelector('span[title="doomed"]')).querySelector("button.close-connection").click()`),
		poll(`document.querySelector(".count")?.dataset.total === "1"`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("close a connection: %v", err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced || !strings.Contains(e.Reason, "web console") {
			t.Fatalf("the closed client heard %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not told its connection closed")
	}
}

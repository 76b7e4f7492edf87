package console_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// apiGet reads an API document as guest.
func apiGet(t testing.TB, base, path string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if into == nil {
		_, _ = io.Copy(io.Discard, res.Body)
	}
	if into != nil && res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// apiPut changes something through the API as guest.
func apiPut(t testing.TB, base, path, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %d", path, res.StatusCode)
	}
}

// rowWith waits until the table holds a row whose text contains all of words.
func rowWith(table string, words ...string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal(words)
	return poll(fmt.Sprintf(`[...document.querySelectorAll("#%s tbody tr")].some(tr => %s.every(w => tr.textContent.includes(w)))`, table, js), 10*time.Second)
}

// TestConsoleListsAndAdmin pages and sorts the queue list through the API,
// shows the other lists, changes users, permissions, policies and limits
// through the forms (checked through the API), and shows a monitoring
// user the API's refusal of the admin pages.
func TestConsoleListsAndAdmin(t *testing.T) {
	ctx := newBrowser(t, 60*time.Second)
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	for i := range 150 {
		if _, err := ch.QueueDeclare(fmt.Sprintf("q-%03d", i), false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := ch.Publish("", "q-007", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.Consume("q-001", "console-test-consumer", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	apiPut(t, s.HTTPURL, "/api/vhosts/staging", `{}`)
	apiPut(t, s.HTTPURL, "/api/queues/staging/staged", `{"durable": true}`)
	testkit.Eventually(t, 5*time.Second, "3 messages in q-007", func() bool {
		q, err := ch.QueueDeclarePassive("q-007", false, false, false, false, nil)
		return err == nil && q.Messages == 3
	})

	// A wrong password is refused on the login form, without a browser dialog.
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SendKeys(chromedp.ID("login-user"), "guest"),
		chromedp.SendKeys(chromedp.ID("login-password"), "wrong"),
		chromedp.Click(chromedp.ID("login-submit")),
		poll(`document.querySelector("#login-error").textContent.includes("Login refused")`, 10*time.Second),
		chromedp.Clear(chromedp.ID("login-user")),
	)
	if err != nil {
		t.Fatalf("wrong password: %v", err)
	}
	if err := login(ctx, s.HTTPURL); err != nil {
		t.Fatalf("login: %v", err)
	}

	// 150 queues: page 1 has 100 rows, page 2 the other 50; sorting by
	// Ready (the API's sort, descending first) puts q-007 on top.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/queues"),
		poll(`document.querySelector(".count")?.dataset.total === "151" && document.querySelectorAll("#list-queues tbody tr").length === 100`, 10*time.Second),
		// One vhost: the API's /api/queues/{vhost}.
		poll(`[...document.querySelectorAll("#list-vhost option")].some(o => o.value === "staging")`, 10*time.Second),
		chromedp.SetValue(chromedp.ID("list-vhost"), "staging"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#list-vhost").dispatchEvent(new Event("change"))`),
		rowWith("list-queues", "staging", "staged"),
		poll(`document.querySelector(".count")?.dataset.total === "1"`, 10*time.Second),
		chromedp.SetValue(chromedp.ID("list-vhost"), "/"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#list-vhost").dispatchEvent(new Event("change"))`),
		poll(`document.querySelector(".count")?.dataset.total === "150" && document.querySelectorAll("#list-queues tbody tr").length === 100`, 10*time.Second),
		chromedp.Click(chromedp.CSS(".pager button:last-child")),
		poll(`document.querySelectorAll("#list-queues tbody tr").length === 50 && document.querySelector("#list-queues tbody a").textContent === "q-100"`, 10*time.Second),
		chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#list-queues th")].find(th => th.textContent.startsWith("Ready")).click()`),
		poll(`document.querySelector("#list-queues tbody a")?.textContent === "q-007" && document.querySelectorAll("#list-queues tbody tr").length === 100`, 10*time.Second),
		// A regular expression search, through the API's use_regex.
		chromedp.SendKeys(chromedp.ID("search"), "/^q-14[5-9]$/"),
		poll(`document.querySelectorAll("#list-queues tbody tr").length === 5`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("queue list: %v", err)
	}

	// The other lists show what the client opened.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/exchanges"), rowWith("list-exchanges", "amq.topic", "topic"),
		chromedp.Navigate(s.HTTPURL+"/#/connections"), rowWith("list-connections", "guest", "AMQP"),
		chromedp.Navigate(s.HTTPURL+"/#/channels"), rowWith("list-channels", "guest"),
		chromedp.Navigate(s.HTTPURL+"/#/consumers"), rowWith("list-consumers", "q-001", "console-test-consumer"),
	)
	if err != nil {
		t.Fatalf("lists: %v", err)
	}

	// Admin forms: a user, a permission, a policy and a vhost limit.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/admin/users"), rowWith("users", "guest", "administrator"),
		chromedp.SetValue(chromedp.ID("user-name"), "alice"),
		chromedp.SetValue(chromedp.ID("user-password"), "alice-pw-1"),
		chromedp.SetValue(chromedp.ID("user-tags"), "monitoring"),
		chromedp.Click(chromedp.ID("user-save")), rowWith("users", "alice", "monitoring"),
		chromedp.Navigate(s.HTTPURL+"/#/admin/permissions"),
		chromedp.SetValue(chromedp.ID("perm-user"), "alice"),
		chromedp.SetValue(chromedp.ID("perm-configure"), "^alice-.*"),
		chromedp.Click(chromedp.ID("perm-save")), rowWith("permissions", "alice", "^alice-.*"),
		chromedp.Navigate(s.HTTPURL+"/#/admin/policies"),
		chromedp.SetValue(chromedp.ID("policy-name"), "cap-q"),
		chromedp.SetValue(chromedp.ID("policy-pattern"), "^q-"),
		chromedp.SetValue(chromedp.ID("policy-definition"), `{"max-length": 1000}`),
		chromedp.Click(chromedp.ID("policy-save")), rowWith("policies", "cap-q", "^q-", "max-length"),
		chromedp.Navigate(s.HTTPURL+"/#/admin/limits"),
		chromedp.SetValue(chromedp.ID("vlimit-name"), "max-queues"),
		chromedp.SetValue(chromedp.ID("vlimit-value"), "5000"),
		chromedp.Click(chromedp.ID("vlimit-save")), rowWith("vhost-limits", "max-queues", "5,000"),
	)
	if err != nil {
		t.Fatalf("admin forms: %v", err)
	}
	var user struct{ Tags []string }
	if apiGet(t, s.HTTPURL, "/api/users/alice", &user) != http.StatusOK || strings.Join(user.Tags, ",") != "monitoring" {
		t.Fatalf("user alice after the form: %+v", user)
	}
	var perm struct{ Configure, Write, Read string }
	if apiGet(t, s.HTTPURL, "/api/permissions/%2F/alice", &perm) != http.StatusOK || perm.Configure != "^alice-.*" || perm.Write != ".*" {
		t.Fatalf("permission of alice after the form: %+v", perm)
	}
	var pol struct {
		Pattern    string
		Definition map[string]any
	}
	if apiGet(t, s.HTTPURL, "/api/policies/%2F/cap-q", &pol) != http.StatusOK || pol.Pattern != "^q-" || pol.Definition["max-length"] != float64(1000) {
		t.Fatalf("policy after the form: %+v", pol)
	}
	var limits []struct{ Value map[string]int64 }
	if apiGet(t, s.HTTPURL, "/api/vhost-limits/%2F", &limits) != http.StatusOK || len(limits) != 1 || limits[0].Value["max-queues"] != 5000 {
		t.Fatalf("vhost limits after the form: %+v", limits)
	}

	// Definitions: the export holds the durable vhost and queue; an edited copy
	// imported through the page declares a new queue.
	err = chromedp.Do(ctx,
		chromedp.Navigate(s.HTTPURL+"/#/admin/definitions"),
		chromedp.Click(chromedp.ID("definitions-export")),
		poll(`(() => { try { const d = JSON.parse(document.querySelector("#definitions-text").value);
			return d.vhosts.some(v => v.name === "staging") && d.queues.some(q => q.name === "staged"); } catch (e) { return false; } })()`, 10*time.Second),
		chromedp.Evaluate[chromedp.Void](`(() => { const t = document.querySelector("#definitions-text");
			const d = JSON.parse(t.value);
			d.queues.push({name: "imported-from-console", vhost: "/", durable: true, auto_delete: false, arguments: {}});
			t.value = JSON.stringify(d); window.confirm = () => true; })()`),
		chromedp.Click(chromedp.ID("definitions-import")),
		poll(`[...document.querySelectorAll(".flash")].some(f => f.textContent === "Definitions imported.")`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("definitions: %v", err)
	}
	if code := apiGet(t, s.HTTPURL, "/api/queues/%2F/imported-from-console", nil); code != http.StatusOK {
		t.Fatalf("the queue imported through the console: GET %d", code)
	}

	// alice (monitoring) sees the overview; the admin pages show the API's 403.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SetValue(chromedp.ID("login-user"), "alice"),
		chromedp.SetValue(chromedp.ID("login-password"), "alice-pw-1"),
		chromedp.Click(chromedp.ID("login-submit")),
		poll(`document.querySelector("#whoami").textContent === "alice"`, 10*time.Second),
		poll(`document.querySelector('nav a[data-nav="/admin"]').hidden`, 10*time.Second),
		chromedp.Navigate(s.HTTPURL+"/#/admin/users"),
		poll(`!document.querySelector("#error").hidden && document.querySelector("#error").textContent.includes("403")`, 10*time.Second),
	)
	if err != nil {
		t.Fatalf("monitoring user: %v", err)
	}
}

package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The Go recipes of docs/clients.md: amqp091-go and Paho, against the real
// binary, across a broker restart.

// dialAMQP dials until the broker answers or ctx ends. amqp091-go does not
// reconnect by itself: the application dials again when NotifyClose fires.
func dialAMQP(ctx context.Context, url string) (*amqp.Connection, error) {
	for {
		conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 10 * time.Second})
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("recipe: dial %s: %w", url, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// openChannel opens a confirming channel and declares the recipe's queue;
// it runs after every (re)connect.
func openChannel(conn *amqp.Connection) (*amqp.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return nil, err
	}
	if err := ch.Qos(10, 0, false); err != nil {
		return nil, err
	}
	_, err = ch.QueueDeclare("amqp091-recipe", true, false, false, false, nil)
	return ch, err
}

// publishConfirmed publishes a persistent message and waits for the
// broker's confirm.
func publishConfirmed(ctx context.Context, ch *amqp.Channel, body string) error {
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "amqp091-recipe", true, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)})
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err == nil && !ok {
		err = fmt.Errorf("recipe: %q nacked", body)
	}
	return err
}

func TestAmqp091GoRecipe(t *testing.T) {
	b := startRestartable(t)
	url := "amqp://guest:guest@" + b.amqpAddr + "/"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := dialAMQP(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := openChannel(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishConfirmed(ctx, ch, "before restart"); err != nil {
		t.Fatal(err)
	}

	b.restart()
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Fatalf("NotifyClose gave %v, want 320 CONNECTION_FORCED", e)
		}
	case <-ctx.Done():
		t.Fatal("NotifyClose did not fire")
	}
	if conn, err = dialAMQP(ctx, url); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ch, err = openChannel(conn); err != nil {
		t.Fatal(err)
	}
	if err := publishConfirmed(ctx, ch, "after restart"); err != nil {
		t.Fatal(err)
	}

	deliveries, err := ch.ConsumeWithContext(ctx, "amqp091-recipe", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"before restart", "after restart"} {
		select {
		case d := <-deliveries:
			if string(d.Body) != want {
				t.Fatalf("got %q, want %q", d.Body, want)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("no delivery of %q", want)
		}
	}
}

func TestPahoGoRecipe(t *testing.T) {
	b := startRestartable(t)
	msgs := make(chan string, 10)
	connects := make(chan struct{}, 10)
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + b.mqttAddr).
		SetClientID("paho-go-recipe").
		SetCleanSession(false). // the broker keeps the subscription and QoS 1 messages
		SetAutoReconnect(true).
		SetMaxReconnectInterval(time.Second).
		SetKeepAlive(10 * time.Second).
		SetOnConnectHandler(func(paho.Client) { connects <- struct{}{} }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m.Topic() + " " + string(m.Payload()) })
	c := paho.NewClient(opts)
	wait := func(tok paho.Token) {
		t.Helper()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("paho: %v", tok.Error())
		}
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-msgs:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no message %q", want)
		}
	}
	wait(c.Connect())
	defer c.Disconnect(250)
	<-connects
	wait(c.Subscribe("sensors/+/temp", 1, nil))
	wait(c.Publish("sensors/kitchen/temp", 1, false, "21.5")) // done on PUBACK
	expect("sensors/kitchen/temp 21.5")

	b.restart()
	select {
	case <-connects: // reconnected; the session, and so the subscription, survived
	case <-time.After(30 * time.Second):
		t.Fatal("paho did not reconnect")
	}
	wait(c.Publish("sensors/hall/temp", 1, false, "19.0"))
	expect("sensors/hall/temp 19.0")
}

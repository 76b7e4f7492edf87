package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

var mqttListenLine = regexp.MustCompile(`msg="MQTT 3.1.1/5.0 listening" addr=(\S+)`)

// mqttAddr waits for the binary's MQTT address in its log.
func (s *binaryServer) mqttAddr(t *testing.T) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-s.logs:
			if m := mqttListenLine.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatal("no MQTT address in the log")
		}
	}
}

func mqttClient(t *testing.T, addr, id string, clean bool, onMsg paho.MessageHandler) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetProtocolVersion(4).SetDefaultPublishHandler(onMsg)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	return c
}

// Persistent sessions (subscriptions and the QoS 1 messages waiting in
// them) and retained messages survive kill -9 of the real binary.
func TestMQTTSessionsAndRetainedSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	addr := s.mqttAddr(t)
	dev := mqttClient(t, addr, "field-unit-7", false, nil)
	if tok := dev.Subscribe("cmd/field-unit-7/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	dev.Disconnect(100)
	ctl := mqttClient(t, addr, "controller", true, nil)
	for i := 0; i < 5; i++ {
		if tok := ctl.Publish("cmd/field-unit-7/set", 1, false, fmt.Sprint("setting-", i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	if tok := ctl.Publish("firmware/latest", 1, true, "v2.3"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ctl.Disconnect(50)
	kill9(t, s)

	s = startBinaryOn(t, dir)
	addr = s.mqttAddr(t)
	got := make(chan paho.Message, 10)
	dev = mqttClient(t, addr, "field-unit-7", false, func(_ paho.Client, m paho.Message) { got <- m })
	defer dev.Disconnect(50)
	for i := 0; i < 5; i++ {
		select {
		case m := <-got:
			if string(m.Payload()) != fmt.Sprint("setting-", i) {
				t.Fatalf("message %d after kill -9: %q", i, m.Payload())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 5 queued commands survived kill -9", i)
		}
	}
	retained := make(chan paho.Message, 1)
	viewer := mqttClient(t, addr, "viewer", true, nil)
	defer viewer.Disconnect(50)
	viewer.Subscribe("firmware/#", 1, func(_ paho.Client, m paho.Message) { retained <- m })
	select {
	case m := <-retained:
		if string(m.Payload()) != "v2.3" || !m.Retained() {
			t.Fatalf("retained after kill -9: %q retained=%v", m.Payload(), m.Retained())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retained message did not survive kill -9")
	}
}

// Debian's mosquitto_pub and mosquitto_sub talk to tern server.
func TestMosquittoClientsSmoke(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto-clients is required in CI")
		}
		t.Skip("mosquitto-clients not installed (apt-get install mosquitto-clients)")
	}
	s := startBinary(t)
	addr := s.mqttAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	sub := exec.Command("mosquitto_sub", "-h", host, "-p", port, "-t", "smoke/#", "-C", "2", "-q", "1", "-v", "-W", "10")
	out := make(chan string, 1)
	go func() {
		b, err := sub.CombinedOutput()
		if err != nil {
			b = append(b, []byte(err.Error())...)
		}
		out <- string(b)
	}()
	time.Sleep(500 * time.Millisecond)
	for _, args := range [][]string{{"-t", "smoke/a", "-m", "hello", "-q", "1"}, {"-t", "smoke/b", "-m", "world", "-V", "mqttv5"}} {
		pub := exec.Command("mosquitto_pub", append([]string{"-h", host, "-p", port}, args...)...)
		if b, err := pub.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, b)
		}
	}
	select {
	case got := <-out:
		if !strings.Contains(got, "smoke/a hello") || !strings.Contains(got, "smoke/b world") {
			t.Fatalf("mosquitto_sub printed %q", got)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("mosquitto_sub got nothing")
	}
}

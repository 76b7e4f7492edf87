package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ternCert runs `tern cert` and fails the test on error.
func ternCert(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(ternBin, append([]string{"cert"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tern cert %v: %v\n%s", args, err, out)
	}
	return string(out)
}

var tlsListenLine = regexp.MustCompile(`msg="(AMQP 0-9-1 over TLS|MQTT over TLS|HTTPS|MQTT over secure WebSocket) listening" addr=(\S+)`)

// tlsAddrs reads the server's log until it has reported n TLS listeners.
func tlsAddrs(t *testing.T, s *binaryServer, n int) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	deadline := time.After(10 * time.Second)
	for len(addrs) < n {
		select {
		case line := <-s.logs:
			if m := tlsListenLine.FindStringSubmatch(line); m != nil {
				addrs[m[1]] = m[2]
			}
		case <-deadline:
			t.Fatalf("TLS listeners reported: %v", addrs)
		}
	}
	return addrs
}

// startTLSBinary makes a PKI with `tern cert` in dir and runs `tern server`
// with every TLS listener on, configured through a TOML file (reload on
// SIGHUP only) and flags.
func startTLSBinary(t *testing.T, dir string) (*binaryServer, map[string]string) {
	t.Helper()
	ternCert(t, "ca", "--dir", dir)
	ternCert(t, "server", "--dir", dir)
	ternCert(t, "client", "--dir", dir, "--cn", "device-1")
	conf := filepath.Join(dir, "tern.toml")
	toml := fmt.Sprintf(`
[tls]
cert_file = %q
key_file = %q
ca_file = %q
client_auth = "optional"
reload_interval = "0s"
mqtt_cert_login = true

[[users]]
name = "guest"
password = "guest"
loopback_only = true
tags = ["administrator"]
vhosts = ["*"]

[[users]]
name = "device-1"
password = "not-used-with-the-certificate"
`, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "ca.pem"))
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startBinary(t, "--config", conf, "--amqps-addr", "127.0.0.1:0", "--mqtts-addr", "127.0.0.1:0",
		"--https-addr", "127.0.0.1:0", "--mqtt-wss-addr", "127.0.0.1:0")
	return s, tlsAddrs(t, s, 4)
}

func caPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(raw) {
		t.Fatal("ca.pem holds no certificate")
	}
	return p
}

func TestTLSClientsAgainstTheBinary(t *testing.T) {
	dir := t.TempDir()
	s, addrs := startTLSBinary(t, dir)
	amqps := addrs["AMQP 0-9-1 over TLS"]
	pool := caPool(t, dir)
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "device-1.pem"), filepath.Join(dir, "device-1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("amqp091-go", func(t *testing.T) {
		c, err := amqp.DialTLS("amqps://guest:guest@"+amqps+"/", &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v := c.ConnectionState().Version; v < tls.VersionTLS12 {
			t.Fatalf("TLS version %x", v)
		}
		ext, err := amqp.DialTLS_ExternalAuth("amqps://"+amqps+"/", &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}})
		if err != nil {
			t.Fatalf("EXTERNAL: %v", err)
		}
		ext.Close()
	})

	t.Run("pika", func(t *testing.T) {
		needPython(t, "python3-pika", "pika")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, filepath.Join(recipeDir, "pika", "tls.py"))
		cmd.Env = append(os.Environ(), "AMQPS_PORT="+amqps[strings.LastIndex(amqps, ":")+1:], "CA_FILE="+filepath.Join(dir, "ca.pem"),
			"CLIENT_CERT="+filepath.Join(dir, "device-1.pem"), "CLIENT_KEY="+filepath.Join(dir, "device-1-key.pem"))
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("pika over TLS: %v", err)
		}
	})

	t.Run("mosquitto_pub", func(t *testing.T) {
		needClient(t, "mosquitto_pub", "apt-get install mosquitto-clients", exec.Command("sh", "-c", "command -v mosquitto_pub"))
		// An AMQP consumer on amq.topic sees what mosquitto_pub sends over TLS.
		c, err := amqp.Dial(s.url())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q.Name, "tls.#", "amq.topic", false, nil); err != nil {
			t.Fatal(err)
		}
		msgs, err := ch.Consume(q.Name, "", true, true, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		mqtts := addrs["MQTT over TLS"]
		host, port := mqtts[:strings.LastIndex(mqtts, ":")], mqtts[strings.LastIndex(mqtts, ":")+1:]
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"cafile, as guest", []string{"-u", "guest", "-P", "guest"}},
			{"client certificate login", []string{"--cert", filepath.Join(dir, "device-1.pem"), "--key", filepath.Join(dir, "device-1-key.pem")}},
		} {
			args := append([]string{"-h", host, "-p", port, "--cafile", filepath.Join(dir, "ca.pem"), "-q", "1", "-t", "tls/" + strings.ReplaceAll(tc.name, " ", "-"), "-m", tc.name}, tc.args...)
			if out, err := exec.Command("mosquitto_pub", args...).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub %s: %v\n%s", tc.name, err, out)
			}
			select {
			case d := <-msgs:
				if string(d.Body) != tc.name {
					t.Fatalf("got %q, want %q", d.Body, tc.name)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: nothing arrived", tc.name)
			}
		}
		// Without --cafile the client does not trust the broker.
		if err := exec.Command("mosquitto_pub", "-h", host, "-p", port, "--capath", t.TempDir(), "-t", "x", "-m", "x").Run(); err == nil {
			t.Error("mosquitto_pub trusted the broker without its CA")
		}
	})
}

func TestSIGHUPReloadsTheCertificateWithoutDroppingConnections(t *testing.T) {
	dir := t.TempDir()
	s, addrs := startTLSBinary(t, dir)
	amqps := addrs["AMQP 0-9-1 over TLS"]
	cfg := &tls.Config{RootCAs: caPool(t, dir), ServerName: "localhost"}
	before, err := amqp.DialTLS("amqps://guest:guest@"+amqps+"/", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	closed := before.NotifyClose(make(chan *amqp.Error, 1))
	old := before.ConnectionState().PeerCertificates[0].SerialNumber

	ternCert(t, "server", "--dir", dir) // renew: new key, new serial, same files
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after *amqp.Connection
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := amqp.DialTLS("amqps://guest:guest@"+amqps+"/", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(old) != 0 {
			after = c
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("no new serial after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer after.Close()
	for _, c := range []*amqp.Connection{before, after} {
		ch, err := c.Channel()
		if err != nil {
			t.Fatalf("channel after the reload: %v", err)
		}
		if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-closed:
		t.Fatalf("the connection opened before the reload was closed: %v", e)
	default:
	}
	select {
	case err := <-s.exited:
		t.Fatalf("tern exited on SIGHUP: %v", err)
	default:
	}
}

func TestTernCertUsage(t *testing.T) {
	out, _ := exec.Command(ternBin, "server", "--help").CombinedOutput()
	for _, flag := range []string{"-amqps-addr", "-mqtts-addr", "-mqtt-wss-addr", "-https-addr", "-tls-cert-file", "-tls-key-file", "-tls-ca-file", "-tls-client-auth"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("server --help lacks %s", flag)
		}
	}
	if out, _ := exec.Command(ternBin, "help").CombinedOutput(); !strings.Contains(string(out), "tern cert") {
		t.Errorf("usage does not mention tern cert:\n%s", out)
	}
	dir := t.TempDir()
	if out, err := exec.Command(ternBin, "cert", "server", "--dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "tern cert ca") {
		t.Errorf("server certificate without a CA: %v %s", err, out)
	}
	ternCert(t, "ca", "--dir", dir)
	if out, err := exec.Command(ternBin, "cert", "ca", "--dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Errorf("a second CA over the first: %v %s", err, out)
	}
	if out, err := exec.Command(ternBin, "cert", "client", "--dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "--cn") {
		t.Errorf("client without --cn: %v %s", err, out)
	}
	ternCert(t, "server", "--dir", dir, "--dns", "broker.example.com,localhost", "--ip", "127.0.0.1,127.0.0.5")
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool(t, dir), DNSName: "broker.example.com"}); err != nil {
		t.Errorf("verify broker.example.com: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool(t, dir), DNSName: "127.0.0.5"}); err != nil {
		t.Errorf("verify 127.0.0.5: %v", err)
	}
	// A malformed certificate stops `tern server` with the file's name.
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(ternBin, "server", "--data-dir", t.TempDir(), "--amqp-addr", "127.0.0.1:0", "--http-addr", "", "--mqtt-addr", "",
		"--mqtt-ws-addr", "", "--tls-cert-file", bad, "--tls-key-file", filepath.Join(dir, "server-key.pem"), "--amqps-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad) {
		t.Errorf("malformed certificate: %v\n%s", err, out)
	}
}

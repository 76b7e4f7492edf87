package mgmt_test

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// MQTT clients are listed among the connections, with their client id,
// and DELETE disconnects them: an MQTT 5 client gets DISCONNECT 0x98
// (administrative action), a 3.1.1 client a closed socket.
func TestMQTTConnectionsListedAndClosed(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	v3 := testkit.DialMQTT(t, s)
	v3.Connect("sensor-311", "", "")
	v5 := testkit.DialMQTT(t, s)
	v5.V = wire.V5
	v5.Connect("sensor-5", "", "")

	var names = map[string]string{}
	testkit.Eventually(t, 5*time.Second, "both MQTT clients listed", func() bool {
		for _, c := range getList(t, s, "/api/connections") {
			names[c["user_provided_name"].(string)] = c["name"].(string)
			if c["user_provided_name"] == "sensor-5" && c["protocol"] != "MQTT 5-0" {
				t.Errorf("v5 client: %v", c)
			}
			if c["user_provided_name"] == "sensor-311" {
				hasFields(t, "MQTT connection", c, "name", "protocol", "user", "vhost", "peer_host", "peer_port", "client_properties.client_id")
				if c["protocol"] != "MQTT 3.1.1" {
					t.Errorf("3.1.1 client: %v", c)
				}
			}
		}
		return len(names) == 2
	})
	guest(t, s, "DELETE", "/api/connections/"+pathEscape(names["sensor-5"]), nil, http.StatusNoContent)
	d, ok := v5.Expect().(*wire.Disconnect)
	if !ok || d.ReasonCode != 0x98 {
		t.Errorf("v5 client got %+v, want DISCONNECT 0x98", d)
	}
	guest(t, s, "DELETE", "/api/connections/"+pathEscape(names["sensor-311"]), nil, http.StatusNoContent)
	if _, err := v3.R.ReadPacket(v3.V); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("3.1.1 client read %v, want the socket closed", err)
	}
	testkit.Eventually(t, 5*time.Second, "both gone", func() bool { return len(getList(t, s, "/api/connections")) == 0 })
}

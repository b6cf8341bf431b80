package trap_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/facgw/facgw/drivers/snmp/trap"
)

// The gateway's wiring: accept notifications from two devices and re-poll
// the sender of each.
func ExampleListener() {
	repoll := func(device string) { /* ask the poller for an immediate poll */ }
	l, err := trap.New(trap.Config{
		Listen:      ":162",
		Communities: []string{"public"},
		V3Users: []trap.User{
			{Name: "ups-mon", AuthProto: "SHA-256", AuthPass: "auth-passphrase", PrivProto: "AES-256", PrivPass: "priv-passphrase"},
		},
		Sources: map[string]string{"10.0.0.21": "ups-1", "10.0.0.40": "sw-core-1"},
		Names:   map[string]string{"1.3.6.1.4.1.318.0.5": "apcUpsOnBattery"},
		Logger:  slog.Default(),
	}, func(ev trap.Event) {
		if ev.Name == trap.NameUPSOnBattery || ev.Name == "apcUpsOnBattery" {
			slog.Warn("UPS on battery", "device", ev.Device)
		}
		repoll(ev.Device)
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer l.Close()
}

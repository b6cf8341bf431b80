package snmpagent_test

import (
	"context"
	"log"
	"net"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/snmpagent"
)

// A simulated UPS that goes on battery: the values change in the Store,
// and the agent tells the gateway with an SNMPv2c trap.
func ExampleAgent() {
	store := snmpagent.NewStore()
	store.MustSet("1.3.6.1.2.1.33.1.4.1.0", snmpagent.Integer(3))  // upsOutputSource: normal
	store.MustSet("1.3.6.1.2.1.33.1.2.3.0", snmpagent.Integer(42)) // upsEstimatedMinutesRemaining
	a, err := snmpagent.New(store, snmpagent.Config{
		Communities: []string{"public"},
		Users: []snmpagent.User{{Name: "facgw", AuthProto: snmpagent.AuthSHA256, AuthPass: "auth-passphrase",
			PrivProto: snmpagent.PrivAES256, PrivPass: "priv-passphrase"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Serve(ctx, pc)

	store.MustSet("1.3.6.1.2.1.33.1.4.1.0", snmpagent.Integer(5)) // battery
	err = a.SendTrap(ctx, snmpagent.Receiver{Addr: "127.0.0.1:1162", Version: gosnmp.Version2c, Community: "public"},
		"1.3.6.1.2.1.33.2.1", // upsTrapOnBattery
		[]snmpagent.Varbind{{OID: "1.3.6.1.2.1.33.1.2.3.0", Value: snmpagent.Integer(42)}})
	if err != nil {
		log.Print(err)
	}
}

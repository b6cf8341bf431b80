package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/facsim"
)

// TestPrintDevices starts the built-in demo facility on free ports and
// checks the device table: Modbus addresses with unit ids, SNMP agents
// with their UDP address, versions and v3 user, and no secret.
func TestPrintDevices(t *testing.T) {
	fac, err := facsim.DefaultFacility()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := facsim.Start(context.Background(), fac, facsim.Options{FreePorts: true, Manual: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var buf bytes.Buffer
	printDevices(&buf, sim.Devices())
	out := buf.String()
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines[strings.Fields(l)[0]] = l
	}
	for id, want := range map[string][]string{
		"ups-a":    {"apc-smart-ups-modbus", "modbus-tcp " + sim.Addr("ups-a"), "unit 1", "normal", "none"},
		"vesda-1":  {"modbus-tcp " + sim.Addr("vesda-1"), "unit 2"},
		"ups-c":    {"rfc1628-ups-snmp", "snmp udp " + sim.Addr("ups-c"), "v1,v2c"},
		"pdu-a1":   {"apc-rpdu2-snmp", "snmp udp " + sim.Addr("pdu-a1")},
		"sw-core1": {"snmp udp " + sim.Addr("sw-core1"), "v3 user facgw engine 0x"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[id], w) {
				t.Errorf("line of %s %q lacks %q", id, lines[id], w)
			}
		}
	}
	for _, secret := range []string{"public", "private", "facgw-auth-pass", "facgw-priv-pass"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows %q:\n%s", secret, out)
		}
	}
}

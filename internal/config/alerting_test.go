package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestGroupLabelWarnings: devices a grouped rule selects without its
// group_by label vote together in one unnamed group: facgw check warns,
// at each one's labels, when there are two or more of them; a labelled
// device or a lone unlabelled one is not warned about.
func TestGroupLabelWarnings(t *testing.T) {
	head := "site: lab\ngateway: gw-1\ndevices:\n"
	unit := 0
	dev := func(id, profile, labels string) string {
		unit++
		return fmt.Sprintf("  - {id: %s, profile: %s, transport: modbus-tcp, address: \"h:502\", unit: %d%s}\n", id, profile, unit, labels)
	}
	warnings := func(cfg *Config) []string {
		var out []string
		for _, w := range cfg.Warnings {
			if strings.Contains(w.Msg, "lacks a label") {
				out = append(out, w.Error())
			}
		}
		return out
	}
	cfg, err := Parse("x.yaml", []byte(head+dev("bms-1", "generic-liion-bms", "")+dev("vesda-2", "generic-vesda", "")+
		dev("bms-3", "generic-liion-bms", ", labels: {room: b3}")), shippedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	got := warnings(cfg)
	if len(got) != 2 || !strings.Contains(got[0], "x.yaml:4:") || !strings.Contains(got[0], "devices[0].labels: device bms-1") ||
		!strings.Contains(got[0], "fire/confirmed-fire (group_by: [room])") || !strings.Contains(got[0], "(vesda-2)") || !strings.Contains(got[1], "device vesda-2") {
		t.Errorf("two unlabelled fire devices: got %q, want a located warning for each naming fire/confirmed-fire and the other", got)
	}
	cfg, err = Parse("x.yaml", []byte(head+dev("bms-1", "generic-liion-bms", "")+dev("bms-3", "generic-liion-bms", ", labels: {room: b3}")), shippedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := warnings(cfg); len(got) != 0 {
		t.Errorf("one unlabelled device: got %q, want no warning", got)
	}
}

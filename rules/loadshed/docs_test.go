package loadshed

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// TestMQTTDocExamples decodes the drain command and acknowledgement
// examples of docs/mqtt.md strictly: the documented payload is the one
// the code sends and reads.
func TestMQTTDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/mqtt.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- loadshed example: (\\w+) -->\n```json\n(.*?)```")
	found := map[string]bool{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		kind := string(m[1])
		found[kind] = true
		dec := json.NewDecoder(bytes.NewReader(m[2]))
		dec.DisallowUnknownFields()
		switch kind {
		case "drain":
			var v DrainCommand
			if err := dec.Decode(&v); err != nil || v.ID == "" || v.Action != ActionDrain || v.AckTopic == "" || v.Deadline.IsZero() || len(v.Loads) == 0 {
				t.Errorf("drain example: got %+v (%v), want every field", v, err)
			}
		case "drain_withdraw":
			var v DrainCommand
			if err := dec.Decode(&v); err != nil || v.ID == "" || v.Action != ActionWithdraw || v.Reason == "" || v.AckTopic != "" {
				t.Errorf("drain_withdraw example: got %+v (%v), want id, action withdraw, a reason, no ack_topic", v, err)
			}
		case "drain_ack":
			var v DrainAck
			if err := dec.Decode(&v); err != nil || v.ID == "" || v.Status != AckDrained {
				t.Errorf("drain_ack example: got %+v (%v), want id and status drained", v, err)
			}
		default:
			t.Errorf("unknown example kind %q", kind)
		}
	}
	for _, k := range []string{"drain", "drain_withdraw", "drain_ack"} {
		if !found[k] {
			t.Errorf("no %s example in docs/mqtt.md", k)
		}
	}
}

package mqtt

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExamples keeps docs/mqtt.md honest: every example payload
// decodes into the contract's types with no unknown field, carries the
// fields the tables call required, and the topics it names are the ones
// Topics builds.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/mqtt.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example: (\\w+) -->\n```json\n(.*?)```")
	found := map[string]int{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		kind, body := string(m[1]), m[2]
		found[kind]++
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var check func() string
		switch kind {
		case "status":
			var v Status
			err = dec.Decode(&v)
			check = func() string {
				if v.Gateway == "" || v.Site == "" || (v.State != StateOnline && v.State != StateOffline) || v.Started.IsZero() {
					return "missing or wrong fields"
				}
				return ""
			}
		case "telemetry":
			var v Telemetry
			err = dec.Decode(&v)
			check = func() string {
				if v.Gateway == "" || v.Device == "" || v.Seq == 0 || v.Time.IsZero() || len(v.Points) == 0 || v.Restart != (v.PrevSeq != nil) {
					return "missing or wrong fields"
				}
				return checkPoints(v.Points)
			}
		case "state":
			var v State
			err = dec.Decode(&v)
			check = func() string {
				if v.Gateway == "" || v.Device == "" || v.Seq == 0 || len(v.Points) == 0 {
					return "missing fields"
				}
				return checkPoints(v.Points)
			}
		default:
			t.Errorf("unknown example kind %q", kind)
			continue
		}
		if err != nil {
			t.Errorf("%s example: %v\n%s", kind, err, body)
		} else if msg := check(); msg != "" {
			t.Errorf("%s example: %s\n%s", kind, msg, body)
		}
	}
	for _, k := range []string{"status", "telemetry", "state"} {
		if found[k] == 0 {
			t.Errorf("no %s example found in docs/mqtt.md", k)
		}
	}
	tp := testInfo.Topics()
	for _, want := range []string{
		strings.Replace(tp.Status(), tp.Base(), "<prefix>/<gateway>", 1),
		strings.Replace(tp.Telemetry("<device>"), tp.Base(), "<prefix>/<gateway>", 1),
		strings.Replace(tp.State("<device>"), tp.Base(), "<prefix>/<gateway>", 1),
		strings.Replace(tp.AlertEvents(), tp.Base(), "<prefix>/<gateway>", 1),
		strings.Replace(tp.AlertActive("<id>"), tp.Base(), "<prefix>/<gateway>", 1),
		strings.Replace(tp.Loadshed(), tp.Base(), "<prefix>/<gateway>", 1) + "/...",
	} {
		if !bytes.Contains(doc, []byte("`"+want+"`")) {
			t.Errorf("docs/mqtt.md does not document topic %s", want)
		}
	}
}

func checkPoints(pts []WirePoint) string {
	for _, p := range pts {
		if p.Name == "" || p.Time.IsZero() || (p.Quality != "good" && p.Quality != "stale" && p.Quality != "bad") || (p.Quality != "good") != (p.Reason != "") {
			return "bad point " + p.Name
		}
	}
	return ""
}

package testpeer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

var amClient = &http.Client{Timeout: 5 * time.Second}

// amDo sends a JSON request to Alertmanager and decodes the answer into out
// (if not nil), failing the test on a non-2xx status.
func amDo(t *testing.T, method, url string, body, out any) {
	t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := amClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s", method, url, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
}

// pollUntil calls cond every 50 ms until it holds, failing after 20 s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAlertmanagerIntegrationPostAndRestart(t *testing.T) {
	url, p := StartAlertmanager(t)
	post := func(name string) {
		amDo(t, http.MethodPost, url+"/api/v2/alerts", []map[string]any{{
			"labels":   map[string]string{"alertname": name, "site": "test"},
			"startsAt": time.Now().UTC().Format(time.RFC3339),
			"endsAt":   time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		}}, nil)
	}
	names := func() map[string]bool {
		var as []struct {
			Labels map[string]string `json:"labels"`
		}
		amDo(t, http.MethodGet, url+"/api/v2/alerts", nil, &as)
		out := map[string]bool{}
		for _, a := range as {
			out[a.Labels["alertname"]] = true
		}
		return out
	}
	post("BeforeRestart")
	if got := names(); !got["BeforeRestart"] {
		t.Fatalf("alerts: got %v, want BeforeRestart", got)
	}

	p.Kill()
	if _, err := amClient.Get(url + "/-/ready"); err == nil {
		t.Fatalf("GET /-/ready after Kill: got an answer, want the port closed")
	}
	p.Restart()
	post("AfterRestart")
	got := names()
	if !got["AfterRestart"] || got["BeforeRestart"] {
		t.Errorf("alerts after a restart on the same port: got %v, want only AfterRestart (alerts live in memory)", got)
	}
}

// TestAlertmanagerIntegrationCluster starts two members: they see each
// other, and a silence created on one reaches the other by gossip.
func TestAlertmanagerIntegrationCluster(t *testing.T) {
	cp1, cp2 := FreePort(t), FreePort(t)
	url1, _ := StartAlertmanager(t, AlertmanagerCluster(cp1))
	url2, _ := StartAlertmanager(t, AlertmanagerCluster(cp2, fmt.Sprintf("127.0.0.1:%d", cp1)))

	type status struct {
		Cluster struct {
			Status string `json:"status"`
			Peers  []struct {
				Address string `json:"address"`
			} `json:"peers"`
		} `json:"cluster"`
	}
	pollUntil(t, "both members to list two peers", func() bool {
		var s1, s2 status
		amDo(t, http.MethodGet, url1+"/api/v2/status", nil, &s1)
		amDo(t, http.MethodGet, url2+"/api/v2/status", nil, &s2)
		return len(s1.Cluster.Peers) == 2 && len(s2.Cluster.Peers) == 2
	})

	var created struct {
		SilenceID string `json:"silenceID"`
	}
	amDo(t, http.MethodPost, url1+"/api/v2/silences", map[string]any{
		"matchers":  []map[string]any{{"name": "alertname", "value": "Gossip", "isRegex": false}},
		"startsAt":  time.Now().UTC().Format(time.RFC3339),
		"endsAt":    time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"createdBy": "testpeer",
		"comment":   "gossip check",
	}, &created)
	if created.SilenceID == "" {
		t.Fatal("POST silence: no silenceID")
	}
	pollUntil(t, "the silence to reach the second member", func() bool {
		var ss []struct {
			ID string `json:"id"`
		}
		amDo(t, http.MethodGet, url2+"/api/v2/silences", nil, &ss)
		for _, s := range ss {
			if s.ID == created.SilenceID {
				return true
			}
		}
		return false
	})
}

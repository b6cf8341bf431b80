package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/web"
)

// TestFireAlertTravelsIntegration: the thermal-runaway scenario in the demo
// facility fires the off-gas alert, which reaches both paths (the embedded
// brokers and the signed webhook) with one episode id; a viewer cannot
// acknowledge it, an operator can, and the acknowledgement travels too;
// the aspirating detector then confirms the fire by a second technology.
func TestFireAlertTravelsIntegration(t *testing.T) {
	info, gw := startDemoInfo(t)
	base := "http://" + gw.HTTPAddr()
	mq := watchMQTT(t, strings.SplitN(info.Brokers[0], "=", 2)[1])

	// Normal operation raises nothing.
	if doc := alerts(t, base); len(doc.Active) != 0 {
		t.Fatalf("got active alerts in the normal scenario: %+v", doc.Active)
	}
	if err := info.Sim.SetScenario("bms-rack1", "thermal-runaway"); err != nil {
		t.Fatal(err)
	}
	var fired alert.Event
	waitFor(t, "off-gas alert firing", func() bool {
		info.Sim.Step(5 * time.Second)
		for _, e := range alerts(t, base).Active {
			if e.Rule == "fire/liion-offgas-alarm" && e.Device == "bms-rack1" {
				fired = e
				return true
			}
		}
		return false
	})
	if fired.Severity != alert.Critical || fired.Class != "fire" || !strings.Contains(fired.Summary, "bms-rack1") || fired.Values["bms.alarm.offgas"].Value != "true" {
		t.Errorf("got %+v, want a critical fire alert naming bms-rack1 with the alarm value", fired)
	}
	waitFor(t, "the alert on the webhook path", func() bool { return received(info.Receiver.Events(), fired.ID, alert.KindFiring) })
	waitFor(t, "the alert on the MQTT path", func() bool { return mq.has(fired.ID, alert.KindFiring) })
	if n := info.Receiver.Refused(); n != 0 {
		t.Errorf("the receiver refused %d requests (signature)", n)
	}
	for _, e := range alerts(t, base).Active {
		if e.Device == "bms-rack2" {
			t.Errorf("rack 2, not in runaway, raised %s: %s", e.Rule, e.Summary)
		}
	}

	// A viewer (anonymous) cannot acknowledge; an operator can.
	ackURL := base + "/api/v1/alerts/" + fired.ID + "/ack"
	if code, body := post(t, ackURL, `{"comment":"x"}`, nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous ack: got %d %s, want 401", code, body)
	}
	sess := login(t, base, "operator", "facgw-demo-operator")
	if code, body := post(t, ackURL, `{"comment":"fire brigade called"}`, sess); code != http.StatusOK || !strings.Contains(body, `"by": "operator"`) {
		t.Errorf("operator ack: got %d %s, want 200 by operator", code, body)
	}
	waitFor(t, "the acknowledgement on both paths", func() bool {
		return received(info.Receiver.Events(), fired.ID, alert.KindAcknowledged) && mq.has(fired.ID, alert.KindAcknowledged)
	})

	// Aspirating smoke detection in the same room: two technologies agree.
	if err := info.Sim.SetScenario("vesda-1", "fire-alarm"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "confirmed fire in the battery room", func() bool {
		info.Sim.Step(10 * time.Second)
		for _, e := range alerts(t, base).Active {
			if e.Rule == "fire/confirmed-fire" && e.Group == "room=battery-room-b3" {
				return received(info.Receiver.Events(), e.ID, alert.KindFiring)
			}
		}
		return false
	})
}

func alerts(t *testing.T, base string) web.AlertsDoc {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc web.AlertsDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode alerts: %v", err)
	}
	return doc
}

func received(evs []alert.Event, id string, kind alert.Kind) bool {
	for _, e := range evs {
		if e.ID == id && e.Kind == kind {
			return true
		}
	}
	return false
}

// session is a logged-in operator: its cookie and CSRF token.
type session struct {
	cookie *http.Cookie
	csrf   string
}

func login(t *testing.T, base, name, password string) *session {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"name":%q,"password":%q}`, name, password)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lr struct {
		CSRF string `json:"csrf_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(body, &lr) != nil || len(resp.Cookies()) == 0 {
		t.Fatalf("login %s: got %d %s", name, resp.StatusCode, body)
	}
	return &session{cookie: resp.Cookies()[0], csrf: lr.CSRF}
}

func post(t *testing.T, url, body string, s *session) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	if s != nil {
		req.AddCookie(s.cookie)
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mqttWatch records the alert events one broker delivers.
type mqttWatch struct {
	mu  sync.Mutex
	evs []alert.Event
}

func watchMQTT(t *testing.T, addr string) *mqttWatch {
	t.Helper()
	w := &mqttWatch{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("alert-watch"))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe("facgw/+/+/alerts/events", 1, func(_ paho.Client, m paho.Message) {
		e, err := alert.Unmarshal(m.Payload())
		if err != nil {
			t.Errorf("alert event on %s: %v", m.Topic(), err)
			return
		}
		w.mu.Lock()
		w.evs = append(w.evs, e)
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return w
}

func (w *mqttWatch) has(id string, kind alert.Kind) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return received(w.evs, id, kind)
}

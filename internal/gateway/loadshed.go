package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/internal/web/auth"
	"github.com/facgw/facgw/pipeline/mqtt"
	"github.com/facgw/facgw/pipeline/outbox"
	"github.com/facgw/facgw/rules"
	"github.com/facgw/facgw/rules/loadshed"
)

// buildLoadshed builds the load-shed controller: triggers fed with every
// batch of points (synchronously, on the polling goroutine: the
// evaluation is cheap, the writes happen on the controller's goroutine),
// actuators for the loads' devices (a separate SNMP session with the
// write community or v3 write user for SNMP devices), audit records
// published on every broker under <prefix>/<gateway>/loadshed/ and
// decisions raised as alerts.
func (g *Gateway) buildLoadshed() error {
	ls := g.cfg.Loadshed
	if ls == nil {
		return nil
	}
	acts := map[string]loadshed.Actuator{}
	for _, d := range g.devices {
		used := false
		for _, l := range ls.Loads {
			used = used || l.Device == d.cfg.ID
		}
		if !used {
			continue
		}
		switch drv := d.drv.(type) {
		case *mbdrv.Device:
			acts[d.cfg.ID] = drv
		case *snmpdrv.Device:
			acts[d.cfg.ID] = snmpdrv.NewDevice(snmpWriteConfig(drv.Config(), ls))
		}
	}
	var devs []rules.Device
	for _, d := range g.devices {
		rd := rules.Device{ID: d.cfg.ID, Profile: d.cfg.Profile, Labels: d.cfg.Labels}
		if p := d.cfg.ProfileDef(); p != nil {
			rd.Class = p.Class
		}
		devs = append(devs, rd)
	}
	opts := loadshed.Options{
		Config: ls, Site: g.cfg.Site, Gateway: g.cfg.Gateway, Devices: devs, Actuators: acts,
		Dir: filepath.Join(g.cfg.StateDir, "loadshed"), Log: g.log.With("component", "loadshed"),
		Alert: func(evs []alert.Event) { g.alerts.submit(evs) },
		// Triggers read the rules engine's alerts with firing().
		Alerts: g.alerts,
	}
	// The ledger keeps the controller's open alerts over a restart; the
	// rules engine leaves them alone (rules.go), the controller resolves
	// them when their episode ends.
	for _, ev := range g.alerts.ledger.Active() {
		if strings.HasPrefix(ev.Rule, "loadshed/") {
			opts.OpenAlerts = append(opts.OpenAlerts, ev)
		}
	}
	if m := g.cfg.MQTT; m != nil && len(g.pub.brokers()) > 0 {
		topics := mqtt.StatusInfo{Prefix: m.Prefix, Site: g.cfg.Site, Gateway: g.cfg.Gateway}.Topics()
		opts.AckTopic = topics.Loadshed() + "/ack"
		opts.Publish = func(sub string, payload []byte) error {
			var errs []error
			for _, p := range g.pub.brokers() {
				if _, err := p.Enqueue(outbox.Message{Class: outbox.Control, Key: "loadshed", Topic: topics.Loadshed() + "/" + sub, Payload: payload}); err != nil {
					if !errors.Is(err, mqtt.ErrClosed) {
						// Closed: a reload removed that broker meanwhile.
						errs = append(errs, err)
					}
					continue
				}
				if err := p.Sync(); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}
	}
	ctl, err := loadshed.New(opts)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.loadshed = ctl
	g.hub.AddSink("loadshed", func(pts []point.Point) error {
		ctl.Feed(pts)
		return nil
	}, g.sinkError)
	return nil
}

// snmpWriteConfig is the session of an SNMP device's SETs: its polling
// session with the write credential of loadshed.write_credentials in
// place of the polling community or v3 user. Without one (a v3 device;
// config.Load refuses a v1/v2c target without a community) the polling
// user is kept. A write user without a context uses the polling one.
func snmpWriteConfig(poll snmpdrv.DeviceConfig, ls *config.Loadshed) snmpdrv.DeviceConfig {
	wc := poll
	if s, ok := ls.Credential(poll.ID); ok {
		wc.Community = s.Reveal()
	}
	if u, ok := ls.WriteUser(poll.ID); ok {
		wc.V3 = snmpdrv.V3Config{User: u.User, AuthProto: u.AuthProtocol, AuthPass: u.AuthPassword.Reveal(),
			PrivProto: u.PrivProtocol, PrivPass: u.PrivPassword.Reveal(), SecurityLevel: u.SecurityLevel, ContextName: u.Context}
		if u.Context == "" {
			wc.V3.ContextName = poll.V3.ContextName
		}
	}
	return wc
}

// runLoadshed runs the controller until ctx ends, then closes its audit
// log. Without a loadshed section it returns at once.
func (g *Gateway) runLoadshed(ctx context.Context) {
	if g.loadshed == nil {
		return
	}
	g.pub.mu.RLock()
	m := g.pub.mqttCfg // a reload may have changed the brokers already
	g.pub.mu.RUnlock()
	g.syncDrainAcks(m)
	_ = g.loadshed.Run(ctx)
	g.stopDrainAcks()
	_ = g.loadshed.Close()
}

// hasDrainStage reports whether any policy has a drain stage.
func (g *Gateway) hasDrainStage() bool {
	for _, p := range g.cfg.Loadshed.Policies {
		for _, st := range p.Stages {
			if st.Drain != nil {
				return true
			}
		}
	}
	return false
}

// ackURL maps the URL schemes the config accepts to paho's.
func ackURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	switch scheme {
	case "mqtt":
		return "tcp://" + rest
	case "mqtts", "tls":
		return "ssl://" + rest
	}
	return u
}

// ackTLS builds the subscriber's TLS settings from a broker's.
func ackTLS(t *config.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return tc, nil
	}
	tc.ServerName = t.ServerName
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("loadshed: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loadshed: %s: no PEM certificates", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loadshed: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// withLoadshed adds the load-shed endpoints to the routes the HTTP server
// gets (routes are the login routes): GET /api/v1/loadshed and the
// engineer's arm, disarm, inhibit and restore.
func (g *Gateway) withLoadshed(routes func(*http.ServeMux)) func(*http.ServeMux) {
	return func(mux *http.ServeMux) {
		if routes != nil {
			routes(mux)
		}
		if g.loadshed == nil {
			// Say "not configured" rather than 404, so a client can tell
			// it from a build without load shed.
			mux.Handle("GET /api/v1/loadshed", g.auth.Require(auth.Viewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"configured":false,"policies":[]}` + "\n"))
			})))
			return
		}
		web.LoadshedRoutes(mux, loadshedAPI{g.loadshed}, web.Options{Require: g.require, Who: who})
	}
}

// loadshedAPI adapts the controller to web.Loadshed.
type loadshedAPI struct{ c *loadshed.Controller }

func (a loadshedAPI) LoadshedDoc() any { return a.c.Status() }

func (a loadshedAPI) Arm(policy, by, reason string, d time.Duration) error {
	return webErr(a.c.Arm(policy, by, reason, d))
}

func (a loadshedAPI) Disarm(policy, by, reason string) error {
	return webErr(a.c.Disarm(policy, by, reason))
}

func (a loadshedAPI) Inhibit(policy, by, reason string, on bool) error {
	return webErr(a.c.Inhibit(policy, by, reason, on))
}

func (a loadshedAPI) Restore(policy, by, reason string) error {
	return webErr(a.c.Restore(policy, by, reason))
}

func webErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, loadshed.ErrUnknownPolicy):
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, loadshed.ErrInvalid):
		return fmt.Errorf("%w: %w", web.ErrInvalid, err)
	case errors.Is(err, loadshed.ErrConflict):
		return fmt.Errorf("%w: %w", web.ErrConflict, err)
	}
	return err
}

package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	"github.com/facgw/facgw/internal/alert"
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
// write community for SNMP devices), audit records published on every
// broker under <prefix>/<gateway>/loadshed/ and decisions raised as alerts.
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
			wc := drv.Config()
			if s, ok := ls.Credential(d.cfg.ID); ok {
				wc.Community = s.Reveal()
			}
			acts[d.cfg.ID] = snmpdrv.NewDevice(wc)
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
	}
	if m := g.cfg.MQTT; m != nil && len(g.pub.pubs) > 0 {
		topics := mqtt.StatusInfo{Prefix: m.Prefix, Site: g.cfg.Site, Gateway: g.cfg.Gateway}.Topics()
		opts.Publish = func(sub string, payload []byte) error {
			var errs []error
			for _, p := range g.pub.pubs {
				if _, err := p.Enqueue(outbox.Message{Class: outbox.Control, Key: "loadshed", Topic: topics.Loadshed() + "/" + sub, Payload: payload}); err != nil {
					errs = append(errs, err)
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

// runLoadshed runs the controller until ctx ends, then closes its audit
// log. Without a loadshed section it returns at once.
func (g *Gateway) runLoadshed(ctx context.Context) {
	if g.loadshed == nil {
		return
	}
	_ = g.loadshed.Run(ctx)
	_ = g.loadshed.Close()
}

// withLoadshed adds the load-shed endpoints to the routes the HTTP server
// gets (routes are the login routes): GET /api/v1/loadshed and the
// engineer's arm, disarm and inhibit.
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
		web.LoadshedRoutes(mux, loadshedAPI{g.loadshed}, web.Options{
			Require: func(role string, h http.Handler) http.Handler {
				r, err := auth.ParseRole(role)
				if err != nil || r == auth.None {
					panic("gateway: route needs an unknown role " + role)
				}
				return g.auth.Require(r, h)
			},
			Who: func(r *http.Request) string {
				p, _ := auth.PrincipalFrom(r.Context())
				return p.Name
			},
		})
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

func webErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, loadshed.ErrUnknownPolicy):
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, loadshed.ErrInvalid):
		return fmt.Errorf("%w: %w", web.ErrInvalid, err)
	}
	return err
}

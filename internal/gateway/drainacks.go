package gateway

import (
	"errors"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/mqtt"
	"github.com/facgw/facgw/rules/loadshed"
)

// drainAcks are the load-shed drain acknowledgement subscribers: one paho
// client of their own per broker (the publishers' connections are clean
// sessions that only publish), each handing every message on
// <prefix>/<gateway>/loadshed/ack/+ to the controller. An acknowledgement
// from any broker counts; the controller ignores repeats of the same
// command id. The sessions are persistent (clean session off, QoS 1), so
// an acknowledgement sent while a subscriber was reconnecting is delivered
// when it is back. A reload that adds, changes or removes brokers changes
// the set with them.
type drainAcks struct {
	mu      sync.Mutex
	stopped bool
	subs    map[string]drainSub // by broker name
}

type drainSub struct {
	key    string // fingerprint of the broker's settings and keepalive
	client paho.Client
}

// syncDrainAcks makes the subscribers match the brokers of m: new or
// changed brokers get a (new) subscriber, removed ones lose theirs.
// Without a drain stage, MQTT or a running controller it does nothing.
func (g *Gateway) syncDrainAcks(m *config.MQTT) {
	if g.loadshed == nil || !g.hasDrainStage() {
		return
	}
	g.mu.Lock()
	if g.acks == nil {
		g.acks = &drainAcks{subs: map[string]drainSub{}}
	}
	a := g.acks
	g.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	want := map[string]config.Broker{}
	keys := map[string]string{}
	if m != nil {
		for _, b := range m.Brokers {
			want[b.Name] = b
			keys[b.Name] = fingerprint(struct {
				B string
				K time.Duration
			}{brokerKey(b), m.KeepAlive})
		}
	}
	for name, s := range a.subs {
		if keys[name] != s.key {
			s.client.Disconnect(250)
			delete(a.subs, name)
		}
	}
	for name, b := range want {
		if _, ok := a.subs[name]; ok {
			continue
		}
		if c := g.drainAckClient(m, b); c != nil {
			a.subs[name] = drainSub{key: keys[name], client: c}
		}
	}
}

// stopDrainAcks disconnects every subscriber; later syncs do nothing.
func (g *Gateway) stopDrainAcks() {
	g.mu.Lock()
	a := g.acks
	g.mu.Unlock()
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	for name, s := range a.subs {
		s.client.Disconnect(250)
		delete(a.subs, name)
	}
}

// drainAckClient connects broker b's subscriber (in the background: with
// ConnectRetry paho keeps trying); nil if its TLS settings do not load.
func (g *Gateway) drainAckClient(m *config.MQTT, b config.Broker) paho.Client {
	log := g.log.With("component", "loadshed", "broker", b.Name)
	if g.cfg.MQTT == nil {
		return nil // an mqtt section added by a reload waits for a restart
	}
	// The topic under the prefix in force: a changed prefix waits for a
	// restart, and the drain commands name the running one.
	topic := mqtt.StatusInfo{Prefix: g.cfg.MQTT.Prefix, Site: g.cfg.Site, Gateway: g.cfg.Gateway}.Topics().Loadshed() + "/ack/+"
	tc, err := ackTLS(b.TLS)
	if err != nil {
		log.Error("loadshed: drain acknowledgements not subscribed on this broker", "err", err)
		return nil
	}
	name := b.Name
	handle := func(_ paho.Client, msg paho.Message) {
		err := g.loadshed.Ack(msg.Payload(), name)
		switch {
		case err == nil:
		case errors.Is(err, loadshed.ErrUnknownCommand):
			log.Debug("loadshed: acknowledgement of no drain in progress", "topic", msg.Topic(), "err", err)
		default:
			log.Warn("loadshed: bad drain acknowledgement", "topic", msg.Topic(), "err", err)
		}
	}
	opts := paho.NewClientOptions().
		AddBroker(ackURL(b.URL)).
		SetClientID(b.ClientID + "-loadshed").
		SetUsername(b.Username).
		SetPassword(b.Password.Reveal()).
		SetTLSConfig(tc).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(m.KeepAlive).
		SetOrderMatters(false).
		SetOnConnectHandler(func(c paho.Client) {
			// Subscribed again on every connection: the broker may have
			// lost the session (restarted without persistence).
			tok := c.Subscribe(topic, 1, handle)
			go func() {
				if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
					log.Error("loadshed: subscribe to drain acknowledgements", "topic", topic, "err", tok.Error())
				}
			}()
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("loadshed: acknowledgement subscriber lost its connection", "err", err)
		})
	c := paho.NewClient(opts)
	c.Connect() // with ConnectRetry it keeps trying in the background
	return c
}

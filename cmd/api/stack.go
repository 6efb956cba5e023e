package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp"
)

// stack is what a run serves, the relays it runs beside the server, and what it reports on and
// closes at exit.
type stack struct {
	uow     service.UnitOfWork
	meter   *httpapi.Meter // each request's time and dispatch time, served at GET /stats
	ids     *idSource
	relays  []*outbox.Relay
	reports []func(*slog.Logger) // what the stack did, logged after the drain
	closers []func() error       // in the order the adapters were opened
}

// close closes the adapters in the reverse order of their opening.
func (st *stack) close() error {
	var errs []error
	for i := len(st.closers) - 1; i >= 0; i-- {
		errs = append(errs, st.closers[i]())
	}
	st.closers = nil
	return errors.Join(errs...)
}

// outboxStore is a store that can keep a commit's events in its outbox table and tell the relays
// of this process that it did (fakes.Store and postgres.Store are).
type outboxStore interface {
	service.Store
	outbox.Store
	EnableOutbox()
	SetAfterCommit(service.CommitHook)
}

// build wires the stack the flags name. Each of openStore, openMailer and openPublisher is where
// a new kind of adapter joins: a case of its switch, and a closer for one that holds connections.
// On an error it closes what it opened.
func build(ctx context.Context, cfg config, log *slog.Logger) (_ *stack, err error) {
	ids, err := newIDSource(cfg.name)
	if err != nil {
		return nil, err
	}
	st := &stack{ids: ids, meter: httpapi.NewMeter(ids.life)}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.close())
		}
	}()
	store, err := openStore(ctx, cfg.store, st)
	if err != nil {
		return nil, err
	}
	mailer, err := openMailer(cfg, st)
	if err != nil {
		return nil, err
	}
	publisher, err := openPublisher(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	// The meter's middleware is the outermost, so that a handler's time includes its retries.
	opts := []service.Option{service.WithRetries(cfg.retries), service.WithBusOptions(service.WithMiddleware(st.meter.Middleware()))}
	if cfg.attempts > 1 {
		// Under sync dispatch the request waits for the retries: that is their price.
		retry := service.Retry(service.RetryPolicy{Attempts: cfg.attempts, Base: cfg.backoff, Retryable: service.MailRetryable})
		opts = append(opts, service.WithBusOptions(service.WithMiddleware(retry)))
	}
	if publisher != nil {
		opts = append(opts, service.WithPublisher(publisher))
	}
	var ob outboxStore
	switch cfg.strategy {
	case "sync":
	case "outbox":
		var ok bool
		if ob, ok = store.(outboxStore); !ok {
			return nil, fmt.Errorf("%w: -strategy outbox: -store %s keeps no outbox", errUsage, redact(cfg.store))
		}
		// The commit stores the events; the relays send them.
		opts = append(opts, service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	default:
		return nil, fmt.Errorf("%w: -strategy %q: want sync or outbox", errUsage, cfg.strategy)
	}
	uow := service.Bootstrap(store, mailer, opts...)
	st.uow = uow
	if ob != nil {
		if err := st.addRelays(cfg, ob, uow.Bus(), log); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// addRelays makes the outbox's relays and has every commit of this process nudge them. Rows that
// other instances commit are found at the next poll.
func (st *stack) addRelays(cfg config, store outboxStore, bus *service.Bus, log *slog.Logger) error {
	store.EnableOutbox()
	for i := range cfg.relays {
		// The life's random part makes the name unique among the relays sharing the table, and
		// a restarted instance's relays new ones.
		r, err := outbox.New(st.ids.life+"-r"+strconv.Itoa(i), store, outbox.BusSender(bus),
			outbox.WithLease(cfg.relayLease), outbox.WithPoll(cfg.relayPoll), outbox.WithBatch(cfg.relayBatch),
			outbox.WithSends(cfg.relaySends),
			outbox.WithRetryable(retryable),
			outbox.WithOnError(func(err error) { log.Warn("relay", "err", err) }),
			outbox.WithOnDead(func(d outbox.DeadLetter) {
				log.Error("relay parked an event", "event", d.ID(), "attempts", d.Attempts, "reason", d.Reason)
			}))
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		st.relays = append(st.relays, r)
	}
	relays := st.relays
	store.SetAfterCommit(func(context.Context, []string) {
		for _, r := range relays {
			r.Notify()
		}
	})
	return nil
}

// retryable: a relay tries every failed send again (up to its attempts) but one the mailer calls
// permanent. A publication the broker refused now, a send cut short by a timeout, may go through
// later; the outbox promises at least once.
func retryable(err error) bool { return !errors.Is(err, service.ErrMailPermanent) }

// openStore returns the store of -store.
func openStore(ctx context.Context, spec string, st *stack) (service.Store, error) {
	if spec == "memory" {
		return fakes.NewStore(), nil
	}
	u, err := url.Parse(spec)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("%w: -store %q: want memory or postgres://host/db", errUsage, redact(spec))
	}
	s, err := postgres.Open(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("-store %s: %w", redact(spec), err)
	}
	st.closers = append(st.closers, func() error { s.Close(); return nil })
	return s, nil
}

// openPublisher returns the publisher of -broker, or nil for none (Allocated events then go
// nowhere).
func openPublisher(ctx context.Context, cfg config, st *stack) (service.Publisher, error) {
	if cfg.broker == "none" {
		return nil, nil
	}
	u, err := url.Parse(cfg.broker)
	if err != nil || u.Scheme != "nats" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%w: -broker %q: want none or nats://host:port", errUsage, redact(cfg.broker))
	}
	p, err := nats.Connect(ctx, cfg.broker, nats.Config{Stream: cfg.natsStream, SubjectPrefix: cfg.natsPrefix})
	if err != nil {
		return nil, fmt.Errorf("-broker %s: %w", redact(cfg.broker), err)
	}
	st.closers = append(st.closers, func() error { p.Close(); return nil })
	return p, nil
}

// openMailer returns the mailer of -mailer, and adds what to log about it at exit.
func openMailer(cfg config, st *stack) (service.Mailer, error) {
	spec := cfg.mailer
	if spec == "fake" {
		var opts []fakes.MailerOption
		if cfg.mailLatency > 0 {
			opts = append(opts, fakes.WithLatency(fakes.Fixed(cfg.mailLatency)))
		}
		m := fakes.NewMailer(opts...)
		st.reports = append(st.reports, func(log *slog.Logger) { log.Info("fake mailer", "mails", m.Len()) })
		return m, nil
	}
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "smtp" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: -mailer %q: want fake or smtp://host:port", errUsage, spec)
	}
	m, err := smtp.New(smtp.Config{Addr: u.Host, From: cfg.mailFrom, SendTimeout: cfg.mailTimeout})
	if err != nil {
		return nil, fmt.Errorf("%w: -mailer %q: %w", errUsage, spec, err)
	}
	return m, nil
}

// idSource hands out the event IDs of one life of the instance: "ev-NAME-LIFE-N", where LIFE is
// drawn at random at start, so that neither two instances on one database nor two lives of one
// instance repeat an ID (an outbox row, an event log row and a Message-ID are keyed by it). It is
// safe for concurrent use.
type idSource struct {
	life   string // NAME-LIFE
	prefix string // "ev-NAME-LIFE-"
	n      atomic.Uint64
}

func newIDSource(name string) (*idSource, error) {
	var raw [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("draw this life's ID: %w", err)
	}
	life := name + "-" + hex.EncodeToString(raw[:])
	return &idSource{life: life, prefix: "ev-" + life + "-"}, nil
}

func (s *idSource) next() string { return s.prefix + strconv.FormatUint(s.n.Add(1), 10) }

// redact hides a URL's password, for logs and errors.
func redact(spec string) string {
	u, err := url.Parse(spec)
	if err != nil {
		if strings.Contains(spec, "@") {
			return "(unparsable URL)"
		}
		return spec
	}
	return u.Redacted()
}

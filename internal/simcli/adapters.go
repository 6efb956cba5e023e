package simcli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/stockbus/stockbus/sim"
)

// Adapters are the real adapters a simulator command links, by kind. The zero value is the
// fakes only (cmd/simulate).
type Adapters struct {
	// Stores open a store by kind ("sqlite", "postgres"): arg is what follows "sqlite:" (empty for
	// a temporary file), or the whole postgres:// URL.
	Stores map[string]StoreFactory
	// Mailers open a mailer by kind ("smtp"): arg is the server's host:port from an smtp:// URL,
	// or empty for a test server inside the process.
	Mailers map[string]MailerFactory
	// Brokers open a broker by kind ("nats"): arg is the nats:// URL, or empty for a server
	// embedded in the process.
	Brokers map[string]BrokerFactory
	// Instances runs -instances: API processes of its own on one Postgres database, NATS server
	// and SMTP sink. Nil: the command refuses -instances, naming the one that has it.
	Instances InstancesRunner
}

// MailerFactory returns the opener of the mailer arg names, or an error for a bad arg.
type MailerFactory func(arg string) (Mailer, error)

// Mailer is a real mailer as a command offers it: its opener, and NoFaults, the reason it cannot
// inject the simulator's mail faults ("" when it can).
type Mailer struct {
	Open     sim.MailerOpener
	NoFaults string
}

// BrokerFactory returns the opener of the broker arg names, or an error for a bad arg.
type BrokerFactory func(arg string) (sim.BrokerOpener, error)

// StoreFactory returns the opener of the store arg names, or an error for a bad arg.
type StoreFactory func(arg string) (Store, error)

// Store is a real store as a command offers it: its opener.
type Store struct {
	Open sim.StoreOpener
}

// RealCommand is the command that links every real adapter, named when this one lacks one.
const RealCommand = "go run ./cmd/simulate-real"

// ErrNotLinked is wrapped by the error for a flag naming an adapter the command does not link.
var ErrNotLinked = errors.New("not linked into this command")

// storeKind splits a -store value into its kind and argument: "fakes", "sqlite" with the path
// after "sqlite:", "postgres" with the whole URL.
func storeKind(v string) (kind, arg string, err error) {
	switch {
	case v == "fakes" || v == "":
		return "fakes", "", nil
	case v == "sqlite":
		return "sqlite", "", nil
	case strings.HasPrefix(v, "sqlite:"):
		path := strings.TrimPrefix(v, "sqlite:")
		if path == "" {
			return "", "", &sim.ConfigError{Field: "store", Reason: "sqlite: wants a file path after the colon (or plain sqlite for a temporary file)"}
		}
		return "sqlite", path, nil
	case strings.HasPrefix(v, "postgres://") || strings.HasPrefix(v, "postgresql://"):
		return "postgres", v, nil
	case strings.HasPrefix(v, "postgres:"): // postgres:URL, as sqlite:PATH
		if u := strings.TrimPrefix(v, "postgres:"); strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
			return "postgres", u, nil
		}
		return "", "", &sim.ConfigError{Field: "store", Reason: fmt.Sprintf("postgres: wants a postgres:// URL after the colon, got %q", redact(v))}
	}
	return "", "", &sim.ConfigError{Field: "store", Reason: fmt.Sprintf("unknown store %q (want fakes, sqlite, sqlite:PATH, a postgres:// URL or postgres:URL)", v)}
}

// mailerKind splits a -mailer value into its kind and argument: "fakes", or "smtp" with the
// host:port of an smtp:// URL (empty for the in-process test server).
func mailerKind(v string) (kind, arg string, err error) {
	switch {
	case v == "fakes" || v == "":
		return "fakes", "", nil
	case v == "smtp":
		return "smtp", "", nil
	case strings.HasPrefix(v, "smtp://"):
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || u.Port() == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return "", "", &sim.ConfigError{Field: "mailer", Reason: fmt.Sprintf("%q: want smtp://host:port", v)}
		}
		return "smtp", u.Host, nil
	}
	return "", "", &sim.ConfigError{Field: "mailer", Reason: fmt.Sprintf("unknown mailer %q (want fakes, smtp or an smtp://host:port URL)", v)}
}

// brokerKind splits a -broker value into its kind and argument: "fakes", "nats" with an empty
// argument (embedded) or the whole nats:// URL.
func brokerKind(v string) (kind, arg string, err error) {
	switch {
	case v == "fakes" || v == "":
		return "fakes", "", nil
	case v == "nats":
		return "nats", "", nil
	case strings.HasPrefix(v, "nats://"):
		return "nats", v, nil
	}
	return "", "", &sim.ConfigError{Field: "broker", Reason: fmt.Sprintf("unknown broker %q (want fakes, nats for an embedded server, or a nats:// URL)", v)}
}

// redact hides a URL's password, for reports and rerun commands.
func redact(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	return u.Redacted()
}

// apply resolves the adapter flags into cfg's names and openers.
func (ad Adapters) apply(cfg *sim.Config, opt options) error {
	if err := ad.applyMailer(cfg, opt); err != nil {
		return err
	}
	if err := ad.applyBroker(cfg, opt.broker); err != nil {
		return err
	}
	kind, arg, err := storeKind(opt.store)
	if err != nil {
		return err
	}
	if kind == "fakes" {
		return nil
	}
	factory, ok := ad.Stores[kind]
	if !ok {
		return &sim.ConfigError{Field: "store", Reason: fmt.Sprintf("%s: %v (cmd/simulate links the fakes only, to stay quick to build); run %s -store %s",
			kind, ErrNotLinked, RealCommand, redact(opt.store))}
	}
	st, err := factory(arg)
	if err != nil {
		return &sim.ConfigError{Field: "store", Reason: err.Error()}
	}
	cfg.Store, cfg.OpenStore = redact(opt.store), st.Open
	return nil
}

// applyMailer resolves -mailer. A mailer that cannot inject faults runs without the fake
// mailer's default latency and timeout outcome; given explicitly, they are refused by the run's
// validation, which names the flag.
func (ad Adapters) applyMailer(cfg *sim.Config, opt options) error {
	kind, arg, err := mailerKind(opt.mailer)
	if err != nil || kind == "fakes" {
		return err
	}
	factory, ok := ad.Mailers[kind]
	if !ok {
		return &sim.ConfigError{Field: "mailer", Reason: fmt.Sprintf("%s: %v (cmd/simulate links the fakes only, to stay quick to build); run %s -mailer %s",
			kind, ErrNotLinked, RealCommand, opt.mailer)}
	}
	m, err := factory(arg)
	if err != nil {
		return &sim.ConfigError{Field: "mailer", Reason: err.Error()}
	}
	cfg.MailerName, cfg.OpenMailer, cfg.NoMailFaults = opt.mailer, m.Open, m.NoFaults
	if m.NoFaults != "" {
		if !opt.given["mailer-latency"] {
			cfg.Mailer = sim.FixedLatency(0)
		}
		if !opt.given["timeout-delivered"] {
			cfg.TimeoutDelivered = 0
		}
	}
	return nil
}

// applyBroker resolves -broker into cfg's broker name and opener.
func (ad Adapters) applyBroker(cfg *sim.Config, v string) error {
	kind, arg, err := brokerKind(v)
	if err != nil || kind == "fakes" {
		return err
	}
	factory, ok := ad.Brokers[kind]
	if !ok {
		return &sim.ConfigError{Field: "broker", Reason: fmt.Sprintf("%s: %v (cmd/simulate links the fakes only, to stay quick to build); run %s -broker %s",
			kind, ErrNotLinked, RealCommand, redact(v))}
	}
	open, err := factory(arg)
	if err != nil {
		return &sim.ConfigError{Field: "broker", Reason: err.Error()}
	}
	cfg.Broker, cfg.OpenBroker = redact(v), open
	return nil
}

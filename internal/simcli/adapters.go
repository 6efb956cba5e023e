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
}

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

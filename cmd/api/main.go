// Command api serves the book's HTTP API (POST /allocate, POST /add_batch; see package httpapi)
// over the stockbus stack: by default the in-memory store and the fake mailer, or a real SMTP
// server with -mailer smtp://host:port. It prints "listening on http://ADDR" on stdout once it
// accepts connections, and logs to stderr.
//
// On SIGINT or SIGTERM it stops accepting connections and lets the requests in flight finish, for
// at most -drain-timeout; then it cancels those left (their transactions roll back if not yet
// committed) and exits with status 1.
//
// Exit status: 0 after a clean drain, 1 for a failure (cannot listen, a drain cut short), 2 for
// a bad flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

var (
	// errUsage is wrapped by run's error for a bad flag or argument.
	errUsage = errors.New("usage")
	// errDrainCut is wrapped by run's error when requests were still in flight after the drain
	// timeout and were cancelled.
	errDrainCut = errors.New("drain timeout passed with requests in flight")
)

// Timeouts of the HTTP server that have no flag: enough for any client that is not stuck, short
// enough that a stuck one cannot hold a connection for long.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// config is the parsed flags.
type config struct {
	addr         string
	drainTimeout time.Duration
	store        string
	mailer       string
	mailFrom     string
	broker       string
	strategy     string
	retries      int
	maxBody      int64
	attempts     int
	backoff      time.Duration
}

func parseFlags(args []string, stdout io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors come back as one line; -h prints the usage on stdout
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen address host:port (port 0: any free port)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long requests in flight may take to finish before they are cancelled")
	fs.StringVar(&cfg.store, "store", "memory", "system of record: memory (the in-memory fake, lost at exit)")
	fs.StringVar(&cfg.mailer, "mailer", "fake", "where out-of-stock mails go: fake (kept in memory, counted at exit) or smtp://host:port")
	fs.StringVar(&cfg.mailFrom, "mail-from", "stockbus@localhost", "with -mailer smtp://: the sender address")
	fs.StringVar(&cfg.broker, "broker", "none", "where Allocated events are published: none")
	fs.StringVar(&cfg.strategy, "strategy", "sync", "dispatch of committed events: sync (the book's: handled before the answer)")
	fs.IntVar(&cfg.retries, "retries", service.DefaultRetries, "retries of a unit of work after a concurrent update; -1 never gives up")
	fs.IntVar(&cfg.attempts, "handler-attempts", 1, "attempts of a failing event handler in all (a mail refused for now, say); 1 is the book's code, 3 its text")
	fs.DurationVar(&cfg.backoff, "handler-backoff", 10*time.Millisecond, "with -handler-attempts: ceiling of the first wait between attempts, doubled each time, jittered")
	fs.Int64Var(&cfg.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "largest request body in bytes; larger is a 413")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage of api: serves POST /allocate and POST /add_batch")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return cfg, err
	}
	switch {
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	case cfg.drainTimeout <= 0:
		err = fmt.Errorf("-drain-timeout must be positive, got %v", cfg.drainTimeout)
	case cfg.retries < service.Unlimited:
		err = fmt.Errorf("-retries must be -1 or more, got %d", cfg.retries)
	case cfg.attempts < 1:
		err = fmt.Errorf("-handler-attempts must be 1 or more, got %d", cfg.attempts)
	case cfg.backoff < 0:
		err = fmt.Errorf("-handler-backoff must not be negative, got %v", cfg.backoff)
	case cfg.maxBody <= 0:
		err = fmt.Errorf("-max-body must be positive, got %d", cfg.maxBody)
	}
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}

// stack is what a run serves and what it reports on at exit.
type stack struct {
	uow    service.UnitOfWork
	report func(*slog.Logger) // logs what the stack did, after the drain; may be nil
}

// build wires the stack the flags name. Each of openStore, openMailer, openPublisher and
// strategyOptions is where a new kind of adapter joins: a case of its switch, and, for an adapter
// that holds connections or goroutines (a database pool, a broker connection, an outbox relay), a
// close step that run calls after the drain.
func build(cfg config) (stack, error) {
	store, err := openStore(cfg.store)
	if err != nil {
		return stack{}, err
	}
	mailer, report, err := openMailer(cfg.mailer, cfg.mailFrom)
	if err != nil {
		return stack{}, err
	}
	publisher, err := openPublisher(cfg.broker)
	if err != nil {
		return stack{}, err
	}
	opts, err := strategyOptions(cfg.strategy)
	if err != nil {
		return stack{}, err
	}
	opts = append(opts, service.WithRetries(cfg.retries))
	if cfg.attempts > 1 {
		// Under sync dispatch the request waits for the retries: that is their price.
		retry := service.Retry(service.RetryPolicy{Attempts: cfg.attempts, Base: cfg.backoff, Retryable: service.MailRetryable})
		opts = append(opts, service.WithBusOptions(service.WithMiddleware(retry)))
	}
	if publisher != nil {
		opts = append(opts, service.WithPublisher(publisher))
	}
	return stack{uow: service.Bootstrap(store, mailer, opts...), report: report}, nil
}

// openStore returns the store of -store. The Postgres store (postgres://...) joins here.
func openStore(spec string) (service.Store, error) {
	switch spec {
	case "memory":
		return fakes.NewStore(), nil
	}
	return nil, fmt.Errorf("%w: -store %q: want memory", errUsage, spec)
}

// openPublisher returns the publisher of -broker, or nil for none (Allocated events then go
// nowhere). The NATS publisher (nats://...) joins here.
func openPublisher(spec string) (service.Publisher, error) {
	switch spec {
	case "none":
		return nil, nil
	}
	return nil, fmt.Errorf("%w: -broker %q: want none", errUsage, spec)
}

// strategyOptions returns the unit of work's options for -strategy. The outbox (a store that keeps
// committed events, a no-op dispatcher and a relay running in this process) joins here.
func strategyOptions(name string) ([]service.Option, error) {
	switch name {
	case "sync":
		return nil, nil
	}
	return nil, fmt.Errorf("%w: -strategy %q: want sync", errUsage, name)
}

// openMailer returns the mailer of -mailer and what to log about it at exit.
func openMailer(spec, from string) (service.Mailer, func(*slog.Logger), error) {
	if spec == "fake" {
		m := fakes.NewMailer()
		return m, func(log *slog.Logger) { log.Info("fake mailer", "mails", m.Len()) }, nil
	}
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "smtp" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, nil, fmt.Errorf("%w: -mailer %q: want fake or smtp://host:port", errUsage, spec)
	}
	m, err := smtp.New(smtp.Config{Addr: u.Host, From: from})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: -mailer %q: %w", errUsage, spec, err)
	}
	return m, nil, nil
}

// run serves the API until ctx ends, then drains. It returns nil after a clean drain, an error
// wrapping flag.ErrHelp after printing the usage, one wrapping errUsage for a bad flag, and one
// wrapping errDrainCut when requests had to be cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	st, err := build(cfg)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	l, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	ln := &onceCloser{Listener: l}

	// Requests get a context of their own, which the signal does not end: a drain lets them
	// finish. It ends when the drain timeout passes.
	requests, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	var inFlight tracker
	srv := &http.Server{
		Handler:           inFlight.wrap(httpapi.NewHandler(st.uow, httpapi.WithLogger(log), httpapi.WithMaxBodyBytes(cfg.maxBody))),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return requests },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "store", cfg.store, "mailer", cfg.mailer, "broker", cfg.broker, "strategy", cfg.strategy)

	select {
	case err := <-served: // the listener failed; nothing to drain but open connections
		cancelRequests()
		_ = srv.Close()
		inFlight.wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// Close the listener first, so that "draining" is logged once no new connection can come in
	// (Shutdown would close it too, but tells nobody when).
	_ = ln.Close()
	<-served // the accept error of the closed listener
	log.Info("draining", "in_flight", inFlight.count(), "timeout", cfg.drainTimeout)
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), cfg.drainTimeout)
	defer cancelDrain()
	err = srv.Shutdown(drainCtx)
	if err != nil {
		cut := inFlight.count()
		cancelRequests() // the service layer sees it: a transaction not yet committed rolls back
		_ = srv.Close()
		inFlight.wait()
		err = fmt.Errorf("%w: %d cancelled after %v", errDrainCut, cut, cfg.drainTimeout)
	}
	if st.report != nil {
		st.report(log)
	}
	if err != nil {
		return err
	}
	log.Info("drained")
	return nil
}

// onceCloser is a listener that closes once: run closes it before Shutdown does, and a second
// close must not look like a failed drain.
type onceCloser struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloser) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// tracker counts the requests being handled, so that a drain cut short can wait for the handlers
// it cancelled to return (http.Server.Close does not).
type tracker struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func (t *tracker) wrap(h http.Handler) http.Handler {
	t.zero = sync.NewCond(&t.mu)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		t.n++
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			t.n--
			if t.n == 0 {
				t.zero.Broadcast()
			}
			t.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *tracker) wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.n > 0 {
		t.zero.Wait()
	}
}

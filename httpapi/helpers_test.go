package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stack is the API over the fakes, on a real socket. The store keeps every committed event (its
// outbox is on, though nothing relays it: the bus still dispatches synchronously), so a test can
// see that a request recorded nothing.
type stack struct {
	srv    *httptest.Server
	store  *fakes.Store
	mailer service.Mailer
	pub    service.Publisher
	logs   *syncBuffer
}

type stackOption func(*stackConfig)

type stackConfig struct {
	mailer  service.Mailer
	pub     service.Publisher
	store   service.Store
	uowOpts []service.Option
	handler []httpapi.Option
}

func withMailer(m service.Mailer) stackOption       { return func(c *stackConfig) { c.mailer = m } }
func withPublisher(p service.Publisher) stackOption { return func(c *stackConfig) { c.pub = p } }
func withStore(s service.Store) stackOption         { return func(c *stackConfig) { c.store = s } }
func withUoW(o ...service.Option) stackOption {
	return func(c *stackConfig) { c.uowOpts = append(c.uowOpts, o...) }
}

func newStack(t *testing.T, opts ...stackOption) *stack {
	t.Helper()
	store := fakes.NewStore()
	store.EnableOutbox()
	cfg := stackConfig{mailer: fakes.NewMailer(), pub: fakes.NewPublisher(), store: store}
	for _, o := range opts {
		o(&cfg)
	}
	logs := &syncBuffer{}
	uow := service.Bootstrap(cfg.store, cfg.mailer, append([]service.Option{service.WithPublisher(cfg.pub)}, cfg.uowOpts...)...)
	h := httpapi.NewHandler(uow, append([]httpapi.Option{httpapi.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, cfg.handler...)...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &stack{srv: srv, store: store, mailer: cfg.mailer, pub: cfg.pub, logs: logs}
}

// answer is what the server answered.
type answer struct {
	Status      int
	ContentType string
	Allow       string
	RetryAfter  string
	Body        map[string]any // nil when the body is not a JSON object
	Raw         string
}

// post sends body to path with the content type (none when empty).
func (s *stack) post(t *testing.T, path, contentType, body string) answer {
	t.Helper()
	return s.do(t, http.MethodPost, path, contentType, body)
}

func (s *stack) do(t *testing.T, method, path, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err, "%s %s %q", method, path, body)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Allow: resp.Header.Get("Allow"),
		RetryAfter: resp.Header.Get("Retry-After"), Raw: string(raw)}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		a.Body = m
	}
	return a
}

// addBatch seeds a batch through the API.
func (s *stack) addBatch(t *testing.T, ref, sku string, qty int, eta string) {
	t.Helper()
	body := map[string]any{"ref": ref, "sku": sku, "qty": qty, "eta": nil}
	if eta != "" {
		body["eta"] = eta
	}
	a := s.post(t, "/add_batch", "application/json", mustJSON(t, body))
	require.Equal(t, http.StatusCreated, a.Status, "add_batch %s: %s", ref, a.Raw)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// snapshot is everything a request could change: each product's revision, version and batches,
// every committed event, every mail and every publication.
type snapshot struct {
	Products  map[string]productState
	Events    int
	Mails     []service.Mail
	Published []fakes.Published
}

type productState struct {
	Revision uint64
	Version  int
	Batches  []batchState
}

type batchState struct {
	Ref       string
	ETA       time.Time
	Purchased int
	Lines     []domain.OrderLine
}

func (s *stack) snapshot(t *testing.T) snapshot {
	t.Helper()
	snap := snapshot{Products: map[string]productState{}, Events: len(s.store.Outbox())}
	for _, sku := range s.store.SKUs() {
		p, ok := s.store.Product(sku)
		require.True(t, ok, "store lists %s but has no such product", sku)
		ps := productState{Revision: s.store.Revision(sku), Version: p.VersionNumber}
		for _, b := range p.Batches {
			ps.Batches = append(ps.Batches, batchState{Ref: b.Reference, ETA: b.ETA, Purchased: b.PurchasedQuantity(), Lines: b.Lines()})
		}
		snap.Products[sku] = ps
	}
	if m, ok := s.mailer.(*fakes.Mailer); ok {
		snap.Mails = m.Mails()
	}
	if p, ok := s.pub.(*fakes.Publisher); ok {
		snap.Published = p.Published()
	}
	return snap
}

// syncBuffer is a bytes.Buffer that the server's goroutines may write to while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// failingPublisher fails every publication with err.
type failingPublisher struct{ err error }

func (p failingPublisher) Publish(context.Context, string, domain.Event) error { return p.err }

// brokenStore fails every transaction with err.
type brokenStore struct{ err error }

func (s brokenStore) Begin(context.Context) (service.Tx, error) { return nil, s.err }

package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

func TestAllocate(t *testing.T) {
	type batch struct {
		ref, sku string
		qty      int
		eta      string
	}
	tests := []struct {
		name      string
		batches   []batch
		orders    []string // bodies sent before the one checked
		body      string
		status    int
		want      map[string]any
		wantMails []string
	}{
		{
			name:    "prefers warehouse stock to a shipment",
			batches: []batch{{"shipment-batch", "RETRO-CLOCK", 100, "2011-01-02"}, {"in-stock-batch", "RETRO-CLOCK", 100, ""}},
			body:    `{"orderid": "oref", "sku": "RETRO-CLOCK", "qty": 10}`,
			status:  http.StatusCreated,
			want:    map[string]any{"batchref": "in-stock-batch"},
		},
		{
			name:    "prefers the earliest shipment",
			batches: []batch{{"later", "MINIMALIST-SPOON", 100, "2011-01-03"}, {"earlier", "MINIMALIST-SPOON", 100, "2011-01-01"}},
			body:    `{"orderid": "o1", "sku": "MINIMALIST-SPOON", "qty": 10}`,
			status:  http.StatusCreated,
			want:    map[string]any{"batchref": "earlier"},
		},
		{
			name:      "out of stock is a 400 with the book's message, after the mail",
			batches:   []batch{{"batch1", "POPULAR-CURTAINS", 9, ""}},
			body:      `{"orderid": "o1", "sku": "POPULAR-CURTAINS", "qty": 10}`,
			status:    http.StatusBadRequest,
			want:      map[string]any{"message": "Out of stock for sku POPULAR-CURTAINS"},
			wantMails: []string{"Out of stock for POPULAR-CURTAINS"},
		},
		{
			name:   "an unknown sku is a 400 with the book's message",
			body:   `{"orderid": "o1", "sku": "NONEXISTENT", "qty": 10}`,
			status: http.StatusBadRequest,
			want:   map[string]any{"message": "Invalid sku NONEXISTENT"},
		},
		{
			name:    "an allocated order sent again gets its batch",
			batches: []batch{{"batch1", "SMALL-TABLE", 20, ""}, {"batch2", "SMALL-TABLE", 20, "2011-01-02"}},
			orders:  []string{`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 20}`},
			body:    `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 20}`,
			status:  http.StatusCreated,
			want:    map[string]any{"batchref": "batch1"},
		},
		{
			name:    "an allocated order sent with another quantity is a 409",
			batches: []batch{{"batch1", "SMALL-TABLE", 20, ""}},
			orders:  []string{`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`},
			body:    `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 3}`,
			status:  http.StatusConflict,
			want:    map[string]any{"message": "order already allocated with another quantity: order o1 of sku SMALL-TABLE"},
		},
		{
			name:    "a charset parameter on the content type is fine",
			batches: []batch{{"batch1", "SMALL-TABLE", 20, ""}},
			body:    `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`,
			status:  http.StatusCreated,
			want:    map[string]any{"batchref": "batch1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			for _, b := range tt.batches {
				s.addBatch(t, b.ref, b.sku, b.qty, b.eta)
			}
			for _, o := range tt.orders {
				require.Equal(t, http.StatusCreated, s.post(t, "/allocate", "application/json", o).Status, "setup order %s", o)
			}
			a := s.post(t, "/allocate", "application/json; charset=utf-8", tt.body)
			assert.Equal(t, tt.status, a.Status, "POST /allocate %s answered %s", tt.body, a.Raw)
			assert.Equal(t, "application/json", a.ContentType)
			assert.Equal(t, tt.want, a.Body, "POST /allocate %s", tt.body)
			assert.Equal(t, tt.wantMails, s.mailer.(*fakes.Mailer).To(service.StockAddress), "mails after POST /allocate %s", tt.body)
		})
	}
}

func TestAllocateCommits(t *testing.T) {
	s := newStack(t)
	s.addBatch(t, "batch1", "SMALL-TABLE", 20, "")
	a := s.post(t, "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`)
	require.Equal(t, http.StatusCreated, a.Status, a.Raw)

	p, ok := s.store.Product("SMALL-TABLE")
	require.True(t, ok)
	assert.Equal(t, 18, p.Batches[0].AvailableQuantity(), "available after allocating 2 of 20")
	assert.Equal(t, 1, p.VersionNumber)
	published := s.pub.(*fakes.Publisher).Published()
	require.Len(t, published, 1, "publications after one allocation")
	assert.Equal(t, domain.Allocated{Meta: published[0].Event.Identity(), OrderID: "o1", SKU: "SMALL-TABLE", Qty: 2, BatchRef: "batch1"}, published[0].Event)
}

func TestAddBatch(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name string
		body string
		want time.Time
	}{
		{"eta null is warehouse stock", `{"ref": "b1", "sku": "LAMP", "qty": 10, "eta": null}`, time.Time{}},
		{"eta absent is warehouse stock", `{"ref": "b1", "sku": "LAMP", "qty": 10}`, time.Time{}},
		{"an ISO date", `{"ref": "b1", "sku": "LAMP", "qty": 10, "eta": "2011-01-02"}`, day(2011, 1, 2)},
		{"an RFC 3339 time keeps its date", `{"ref": "b1", "sku": "LAMP", "qty": 10, "eta": "2011-01-02T23:30:00-05:00"}`, day(2011, 1, 2)},
		{"a batch of 0 is allowed", `{"ref": "b1", "sku": "LAMP", "qty": 0, "eta": null}`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			a := s.post(t, "/add_batch", "application/json", tt.body)
			require.Equal(t, http.StatusCreated, a.Status, "POST /add_batch %s answered %s", tt.body, a.Raw)
			assert.Equal(t, map[string]any{"ref": "b1"}, a.Body)
			p, ok := s.store.Product("LAMP")
			require.True(t, ok, "product after POST /add_batch %s", tt.body)
			require.Len(t, p.Batches, 1)
			b := p.Batches[0]
			assert.Equal(t, "b1", b.Reference)
			assert.True(t, tt.want.Equal(b.ETA), "eta: got %v, want %v", b.ETA, tt.want)
		})
	}
}

// A request the API refuses changes nothing: no product, no version bump, no event, no mail.
func TestRefusedRequestChangesNothing(t *testing.T) {
	long := `{"orderid": "` + strings.Repeat("x", 70<<10) + `", "sku": "SMALL-TABLE", "qty": 1}`
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		message     string
	}{
		{"not JSON", "/allocate", "application/json", `orderid=o1&sku=SMALL-TABLE&qty=1`, 400, "body is not valid JSON at byte 1: invalid character 'o' looking for beginning of value"},
		{"cut short", "/allocate", "application/json", `{"orderid": "o1", "sku": `, 400, "body is not valid JSON: unexpected end"},
		{"empty", "/allocate", "application/json", ``, 400, "empty body: want a JSON object"},
		{"an array", "/allocate", "application/json", `[{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1}]`, 400, "body is a JSON array: want a JSON object"},
		{"qty a string", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": "1"}`, 400, "qty: want an integer, got string"},
		{"qty a fraction", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1.5}`, 400, "qty: want an integer, got number 1.5"},
		{"qty beyond int", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1e30}`, 400, "qty: want an integer, got number 1e30"},
		{"orderid a number", "/allocate", "application/json", `{"orderid": 1, "sku": "SMALL-TABLE", "qty": 1}`, 400, "orderid: want a string, got number"},
		{"qty missing", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE"}`, 400, "missing field qty"},
		{"everything missing", "/allocate", "application/json", `{}`, 400, "missing field orderid, sku, qty"},
		{"sku null", "/allocate", "application/json", `{"orderid": "o1", "sku": null, "qty": 1}`, 400, "missing field sku"},
		{"an unknown field", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "quantity": 1}`, 400, `unknown field "quantity"`},
		{"a second object", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1} {"orderid": "o2", "sku": "SMALL-TABLE", "qty": 1}`, 400, "data after the JSON object"},
		{"trailing garbage", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1} x`, 400, "data after the JSON object"},
		{"too large", "/allocate", "application/json", long, 413, "body larger than 65536 bytes"},
		{"not JSON by content type", "/allocate", "text/plain", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1}`, 415, `Content-Type "text/plain": want application/json`},
		{"a form", "/allocate", "application/x-www-form-urlencoded", `orderid=o1&sku=SMALL-TABLE&qty=1`, 415, `Content-Type "application/x-www-form-urlencoded": want application/json`},
		{"qty 0", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 0}`, 400, "invalid order line: qty must be between 1 and 1000000000, got 0"},
		{"the book's negative line", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": -350}`, 400, "invalid order line: qty must be between 1 and 1000000000, got -350"},
		{"qty past the maximum", "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1000000001}`, 400, "invalid order line: qty must be between 1 and 1000000000, got 1000000001"},
		{"an empty order id", "/allocate", "application/json", `{"orderid": "", "sku": "SMALL-TABLE", "qty": 1}`, 400, "invalid order line: empty order id"},
		{"an empty sku", "/allocate", "application/json", `{"orderid": "o1", "sku": "", "qty": 1}`, 400, "invalid order line: empty sku"},
		{"an unknown sku", "/allocate", "application/json", `{"orderid": "o1", "sku": "NONEXISTENT", "qty": 1}`, 400, "Invalid sku NONEXISTENT"},
		{"a batch's eta not a date", "/add_batch", "application/json", `{"ref": "b9", "sku": "LAMP", "qty": 1, "eta": "tomorrow"}`, 400, `eta "tomorrow": want an ISO date such as 2011-01-02, or null`},
		{"a batch's eta a number", "/add_batch", "application/json", `{"ref": "b9", "sku": "LAMP", "qty": 1, "eta": 20110102}`, 400, "eta: want a string, got number"},
		{"a batch's negative qty", "/add_batch", "application/json", `{"ref": "b9", "sku": "LAMP", "qty": -1, "eta": null}`, 400, "invalid batch: qty must be between 0 and 1000000000, got -1"},
		{"a batch without reference", "/add_batch", "application/json", `{"ref": "", "sku": "LAMP", "qty": 1, "eta": null}`, 400, "invalid batch: empty reference"},
		{"a batch's missing fields", "/add_batch", "application/json", `{"eta": null}`, 400, "missing field ref, sku, qty"},
		{"a batch's unknown field", "/add_batch", "application/json", `{"ref": "b9", "sku": "LAMP", "quantity": 1}`, 400, `unknown field "quantity"`},
		{"a duplicate batch reference, same sku", "/add_batch", "application/json", `{"ref": "batch1", "sku": "SMALL-TABLE", "qty": 5, "eta": null}`, 409, "duplicate batch reference batch1"},
		{"a duplicate batch reference, other sku", "/add_batch", "application/json", `{"ref": "batch1", "sku": "LAMP", "qty": 5, "eta": null}`, 409, "duplicate batch reference batch1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			s.addBatch(t, "batch1", "SMALL-TABLE", 20, "")
			require.Equal(t, http.StatusCreated, s.post(t, "/allocate", "", `{"orderid": "o0", "sku": "SMALL-TABLE", "qty": 2}`).Status)
			before := s.snapshot(t)

			a := s.post(t, tt.path, tt.contentType, tt.body)

			assert.Equal(t, tt.status, a.Status, "POST %s %.80q answered %s", tt.path, tt.body, a.Raw)
			assert.Equal(t, map[string]any{"message": tt.message}, a.Body, "POST %s %.80q", tt.path, tt.body)
			assert.Equal(t, before, s.snapshot(t), "POST %s %.80q changed the stack", tt.path, tt.body)
		})
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"GET /allocate", http.MethodGet, "/allocate", http.StatusMethodNotAllowed, "POST"},
		{"PUT /add_batch", http.MethodPut, "/add_batch", http.StatusMethodNotAllowed, "POST"},
		{"an unknown path", http.MethodPost, "/deallocate", http.StatusNotFound, ""},
		{"a path below an endpoint", http.MethodPost, "/allocate/x", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			s.addBatch(t, "batch1", "SMALL-TABLE", 20, "")
			before := s.snapshot(t)
			a := s.do(t, tt.method, tt.path, "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1}`)
			assert.Equal(t, tt.status, a.Status, "%s %s answered %s", tt.method, tt.path, a.Raw)
			assert.Equal(t, tt.allow, a.Allow, "Allow header of %s %s", tt.method, tt.path)
			assert.Equal(t, before, s.snapshot(t), "%s %s changed the stack", tt.method, tt.path)
		})
	}
}

// After commit, a failed publication leaves the data committed: the answer is the committed
// result with a warning, and the cause goes to the log, not to the client.
func TestPublishFailureAfterCommit(t *testing.T) {
	const secret = "broker at 10.0.0.7 refused credentials"
	t.Run("an allocation is a 201 with a warning", func(t *testing.T) {
		s := newStack(t, withPublisher(failingPublisher{errors.New(secret)}))
		s.addBatch(t, "batch1", "SMALL-TABLE", 20, "")
		a := s.post(t, "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`)
		assert.Equal(t, http.StatusCreated, a.Status, a.Raw)
		assert.Equal(t, map[string]any{"batchref": "batch1", "warning": service.ErrPublish.Error()}, a.Body)
		assert.NotContains(t, a.Raw, "10.0.0.7")
		p, _ := s.store.Product("SMALL-TABLE")
		assert.Equal(t, 18, p.Batches[0].AvailableQuantity(), "the allocation stays committed")
		assert.Contains(t, s.logs.String(), secret, "the log has the cause")
	})
	t.Run("out of stock is a 400 with a warning", func(t *testing.T) {
		mailer := fakes.NewMailer(fakes.WithFaultPlan(func(int) fakes.Fault { return fakes.FailPermanent }))
		s := newStack(t, withMailer(mailer))
		s.addBatch(t, "batch1", "POPULAR-CURTAINS", 9, "")
		a := s.post(t, "/allocate", "application/json", `{"orderid": "o1", "sku": "POPULAR-CURTAINS", "qty": 10}`)
		assert.Equal(t, http.StatusBadRequest, a.Status, a.Raw)
		assert.Equal(t, map[string]any{"message": "Out of stock for sku POPULAR-CURTAINS", "warning": service.ErrPublish.Error()}, a.Body)
		assert.Equal(t, 1, mailer.Stats().Rejected, "the mail was tried once")
		assert.Len(t, s.store.Outbox(), 1, "the OutOfStock event stays committed")
		assert.Contains(t, s.logs.String(), fakes.ErrMailRejected.Error())
	})
}

func TestUnexpectedErrorsLeakNothing(t *testing.T) {
	const secret = "dial tcp 10.0.0.5:5432: password authentication failed for user stockbus"
	s := newStack(t, withStore(brokenStore{errors.New(secret)}))
	tests := []struct{ path, body string }{
		{"/allocate", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`},
		{"/add_batch", `{"ref": "b1", "sku": "SMALL-TABLE", "qty": 2, "eta": null}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			a := s.post(t, tt.path, "application/json", tt.body)
			assert.Equal(t, http.StatusInternalServerError, a.Status, a.Raw)
			assert.Equal(t, map[string]any{"message": "internal error"}, a.Body)
			assert.Contains(t, s.logs.String(), secret, "the log has the cause")
		})
	}
}

// A unit of work that gives up after its retries of concurrent updates is a 503: sending the
// request again may work.
func TestRetriesExhaustedIsUnavailable(t *testing.T) {
	s := newStack(t, withUoW(service.WithRetries(2), service.WithBackoff(func(int) time.Duration { return 0 })))
	s.addBatch(t, "batch1", "SMALL-TABLE", 20, "")
	conflicts := 0
	s.store.SetBeforeCommit(func(_ context.Context, skus []string) {
		conflicts++ // the handler's goroutine only: one request at a time
		for _, sku := range skus {
			s.store.Touch(sku)
		}
	})
	a := s.post(t, "/allocate", "application/json", `{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`)
	assert.Equal(t, http.StatusServiceUnavailable, a.Status, a.Raw)
	assert.Equal(t, map[string]any{"message": "too many concurrent updates; try again"}, a.Body)
	assert.Equal(t, "1", a.RetryAfter)
	assert.Equal(t, 3, conflicts, "commits tried: the first and 2 retries")
	p, _ := s.store.Product("SMALL-TABLE")
	assert.Equal(t, 20, p.Batches[0].AvailableQuantity(), "nothing allocated")
}

// blockingMailer holds every send until its context ends, and reports that error.
type blockingMailer struct {
	entered chan struct{}
	ended   chan error
}

func (m *blockingMailer) Send(ctx context.Context, _ service.Mail) error {
	m.entered <- struct{}{}
	<-ctx.Done()
	m.ended <- ctx.Err()
	return ctx.Err()
}

// A client that hangs up cancels the work its request started: the request's context is the
// service layer's.
func TestClientHangUpCancelsTheWork(t *testing.T) {
	mailer := &blockingMailer{entered: make(chan struct{}), ended: make(chan error, 1)}
	s := newStack(t, withMailer(mailer))
	s.addBatch(t, "batch1", "POPULAR-CURTAINS", 9, "")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.srv.URL+"/allocate",
			strings.NewReader(`{"orderid": "o1", "sku": "POPULAR-CURTAINS", "qty": 10}`))
		if err == nil {
			var resp *http.Response
			if resp, err = s.srv.Client().Do(req); err == nil {
				resp.Body.Close()
			}
		}
		sent <- err
	}()
	<-mailer.entered // the request is in the out-of-stock handler, sending the mail
	cancel()
	assert.ErrorIs(t, <-mailer.ended, context.Canceled, "the mailer's context after the client hung up")
	assert.ErrorIs(t, <-sent, context.Canceled, "the client's error")
}

package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

func newClient(t *testing.T, url string) *httpapi.Client {
	t.Helper()
	c, err := httpapi.NewClient(url)
	require.NoError(t, err, "NewClient(%q)", url)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// The client against the server gives back the service layer's errors.
func TestClientAllocate(t *testing.T) {
	tests := []struct {
		name     string
		orderID  string
		sku      string
		qty      int
		wantRef  string
		wantErr  error
		wantCode int
	}{
		{"allocates", "o1", "SMALL-TABLE", 2, "batch1", nil, 0},
		{"out of stock", "o1", "SMALL-TABLE", 21, "", domain.ErrOutOfStock, http.StatusBadRequest},
		{"an unknown sku", "o1", "NONEXISTENT", 2, "", service.ErrInvalidSKU, http.StatusBadRequest},
		{"an invalid line", "o1", "SMALL-TABLE", 0, "", domain.ErrInvalidOrderLine, http.StatusBadRequest},
		{"an empty order id", "", "SMALL-TABLE", 1, "", domain.ErrInvalidOrderLine, http.StatusBadRequest},
		{"another quantity of an allocated order", "o0", "SMALL-TABLE", 3, "", domain.ErrOrderConflict, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			c := newClient(t, s.srv.URL)
			ctx := t.Context()
			require.NoError(t, c.AddBatch(ctx, "batch1", "SMALL-TABLE", 20, time.Time{}))
			_, err := c.Allocate(ctx, "o0", "SMALL-TABLE", 2)
			require.NoError(t, err)

			ref, err := c.Allocate(ctx, tt.orderID, tt.sku, tt.qty)
			assert.Equal(t, tt.wantRef, ref, "Allocate(%q, %q, %d)", tt.orderID, tt.sku, tt.qty)
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.wantErr, "Allocate(%q, %q, %d)", tt.orderID, tt.sku, tt.qty)
			var se *httpapi.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.wantCode, se.Status)
			assert.NotErrorIs(t, err, service.ErrPublish)
		})
	}
}

func TestClientAddBatch(t *testing.T) {
	s := newStack(t)
	c := newClient(t, s.srv.URL+"/") // a trailing slash is no second one
	ctx := t.Context()
	eta := time.Date(2011, 1, 2, 15, 4, 5, 0, time.UTC)

	require.NoError(t, c.AddBatch(ctx, "shipment", "RETRO-CLOCK", 100, eta))
	require.NoError(t, c.AddBatch(ctx, "warehouse", "RETRO-CLOCK", 100, time.Time{}))
	p, ok := s.store.Product("RETRO-CLOCK")
	require.True(t, ok)
	require.Len(t, p.Batches, 2)
	assert.True(t, time.Date(2011, 1, 2, 0, 0, 0, 0, time.UTC).Equal(p.Batches[0].ETA), "the shipment's eta: got %v", p.Batches[0].ETA)
	assert.True(t, p.Batches[1].ETA.IsZero(), "the warehouse batch's eta: got %v", p.Batches[1].ETA)

	err := c.AddBatch(ctx, "shipment", "LAMP", 1, time.Time{})
	assert.ErrorIs(t, err, domain.ErrDuplicateBatch)
	err = c.AddBatch(ctx, "b3", "LAMP", -1, time.Time{})
	assert.ErrorIs(t, err, domain.ErrInvalidBatch)
	var se *httpapi.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "invalid batch: qty must be between 0 and 1000000000, got -1", se.Message)
}

func TestClientPublishFailure(t *testing.T) {
	s := newStack(t, withPublisher(failingPublisher{errors.New("broker down")}))
	c := newClient(t, s.srv.URL)
	ctx := t.Context()
	require.NoError(t, c.AddBatch(ctx, "batch1", "SMALL-TABLE", 20, time.Time{}))

	ref, err := c.Allocate(ctx, "o1", "SMALL-TABLE", 2)
	assert.Equal(t, "batch1", ref, "the batch is the order's although publishing failed")
	assert.ErrorIs(t, err, service.ErrPublish)
	assert.NotErrorIs(t, err, domain.ErrOutOfStock)

	ref, err = c.Allocate(ctx, "o2", "SMALL-TABLE", 19)
	assert.Empty(t, ref)
	assert.ErrorIs(t, err, domain.ErrOutOfStock, "out of stock: the OutOfStock event has no failing handler")
	assert.NotErrorIs(t, err, service.ErrPublish)
}

func TestClientOutOfStockWithPublishFailure(t *testing.T) {
	s := newStack(t, withMailer(fakes.NewMailer(fakes.WithErrorRate(1))))
	c := newClient(t, s.srv.URL)
	require.NoError(t, c.AddBatch(t.Context(), "batch1", "POPULAR-CURTAINS", 9, time.Time{}))
	_, err := c.Allocate(t.Context(), "o1", "POPULAR-CURTAINS", 10)
	assert.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.ErrorIs(t, err, service.ErrPublish)
}

// Answers the server gives for reasons of its own, and the book's Flask app's ways.
func TestClientOtherAnswers(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantRef     string
		wantErr     error
	}{
		{"the book's app: out of stock as a null batch", 201, "application/json", `{"batchref": null}`, "", domain.ErrOutOfStock},
		{"the book's app: a batch", 201, "application/json", `{"batchref": "b1"}`, "b1", nil},
		{"a 201 that is not the API's JSON", 201, "application/json", `{"batchref": 7}`, "", httpapi.ErrServer},
		{"a 201 that is not JSON", 201, "text/html; charset=utf-8", `OK`, "", httpapi.ErrServer},
		{"a 500", 500, "application/json", `{"message": "internal error"}`, "", httpapi.ErrServer},
		{"a proxy's 502 page", 502, "text/html", `<html>bad gateway</html>`, "", httpapi.ErrServer},
		{"a 503", 503, "application/json", `{"message": "too many concurrent updates; try again"}`, "", httpapi.ErrUnavailable},
		{"a 404", 404, "text/plain", `404 page not found`, "", httpapi.ErrRejected},
		{"a 400 of another kind", 400, "application/json", `{"message": "missing field qty"}`, "", httpapi.ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := newClient(t, srv.URL)
			ref, err := c.Allocate(t.Context(), "o1", "SMALL-TABLE", 1)
			assert.Equal(t, tt.wantRef, ref)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr, "answer %d %s", tt.status, tt.body)
			}
		})
	}
}

func TestClientBookAddBatchOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("OK")) // the book's Flask app
	}))
	defer srv.Close()
	assert.NoError(t, newClient(t, srv.URL).AddBatch(t.Context(), "b1", "LAMP", 1, time.Time{}))
}

func TestClientCancelled(t *testing.T) {
	s := newStack(t)
	c := newClient(t, s.srv.URL)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Allocate(ctx, "o1", "SMALL-TABLE", 1)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, snapshot{Products: map[string]productState{}}, s.snapshot(t), "a cancelled request changed the stack")
}

func TestNewClientBadURL(t *testing.T) {
	for _, url := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host/?q=1", "http://host/#frag", "http://[::1"} {
		t.Run(url, func(t *testing.T) {
			c, err := httpapi.NewClient(url)
			assert.ErrorIs(t, err, httpapi.ErrBadURL, "NewClient(%q)", url)
			assert.Nil(t, c)
		})
	}
}

// Many clients on one hot sku through one Client: every order gets exactly one answer, the stock
// is allocated exactly once, and each out-of-stock answer came after its mail.
func TestClientConcurrentHotSKU(t *testing.T) {
	const workers, perWorker, stock = 8, 25, 100
	mailer := fakes.NewMailer()
	s := newStack(t, withMailer(mailer), withUoW(service.WithRetries(service.Unlimited)))
	c := newClient(t, s.srv.URL)
	require.NoError(t, c.AddBatch(t.Context(), "batch1", "HOT", stock, time.Time{}))

	type result struct {
		allocated, outOfStock int
		other                 []error
	}
	results := make(chan result, workers)
	for w := range workers {
		go func() {
			var r result
			for i := range perWorker {
				_, err := c.Allocate(t.Context(), "o-"+strconv.Itoa(w)+"-"+strconv.Itoa(i), "HOT", 1)
				switch {
				case err == nil:
					r.allocated++
				case errors.Is(err, domain.ErrOutOfStock):
					r.outOfStock++
				default:
					r.other = append(r.other, err)
				}
			}
			results <- r
		}()
	}
	var total result
	for range workers {
		r := <-results
		total.allocated += r.allocated
		total.outOfStock += r.outOfStock
		total.other = append(total.other, r.other...)
	}
	assert.Empty(t, total.other, "answers other than 201 and out of stock")
	assert.Equal(t, stock, total.allocated, "orders allocated")
	assert.Equal(t, workers*perWorker-stock, total.outOfStock, "orders out of stock")
	assert.Equal(t, total.outOfStock, mailer.Len(), "one mail per out-of-stock answer")
	p, _ := s.store.Product("HOT")
	assert.Equal(t, stock, p.Allocated(), "units allocated in the store")
	assert.Equal(t, stock, p.VersionNumber)
}

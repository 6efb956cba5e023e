package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

// FuzzAllocateBody sends any body to POST /allocate: the handler never panics, always answers
// JSON with a status of the API, and changes nothing unless it says so (a 201 allocates; out of
// stock commits one event and sends one mail).
func FuzzAllocateBody(f *testing.F) {
	for _, seed := range []string{
		`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2}`,
		`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 30}`,
		`{"orderid": "o1", "sku": "NONEXISTENT", "qty": 2}`,
		`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": -350}`,
		`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 2} {}`,
		`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": "2"}`,
		`{"orderid": "o1", "sku": "SMALL-TABLE", "qty": 1e30}`,
		`{"orderid": null, "sku": "SMALL-TABLE", "qty": 2, "x": 1}`,
		`[1, 2]`, `"text"`, `null`, ``, `{`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		store := fakes.NewStore()
		store.EnableOutbox()
		mailer := fakes.NewMailer()
		uow := service.Bootstrap(store, mailer)
		h := httpapi.NewHandler(uow, httpapi.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err := service.AddBatch(t.Context(), uow, "batch1", "SMALL-TABLE", 20, time.Time{}); err != nil {
			t.Fatal(err)
		}
		before, _ := store.Product("SMALL-TABLE")

		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/allocate", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)

		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("POST /allocate %q: answer %d is not JSON: %q", body, rec.Code, rec.Body.String())
		}
		after, _ := store.Product("SMALL-TABLE")
		events, mails := len(store.Outbox()), mailer.Len()
		msg, _ := answer["message"].(string)
		switch {
		case rec.Code == http.StatusCreated:
			if after.VersionNumber != before.VersionNumber+1 || events != 1 || mails != 0 {
				t.Fatalf("POST /allocate %q: 201 with version %d -> %d, %d events, %d mails", body, before.VersionNumber, after.VersionNumber, events, mails)
			}
		case rec.Code == http.StatusBadRequest && strings.HasPrefix(msg, "Out of stock for sku "):
			if !after.SameState(before) || events != 1 || mails != 1 {
				t.Fatalf("POST /allocate %q: out of stock with %d events, %d mails, state changed %v", body, events, mails, !after.SameState(before))
			}
		case rec.Code == http.StatusBadRequest, rec.Code == http.StatusRequestEntityTooLarge:
			if !after.SameState(before) || events != 0 || mails != 0 || msg == "" {
				t.Fatalf("POST /allocate %q: %d %q with %d events, %d mails, state changed %v", body, rec.Code, msg, events, mails, !after.SameState(before))
			}
		default:
			t.Fatalf("POST /allocate %q: unexpected %d %s", body, rec.Code, rec.Body.String())
		}
	})
}

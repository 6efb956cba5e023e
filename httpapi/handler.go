package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// DefaultMaxBodyBytes is the largest request body a Handler reads by default. The API's bodies
// are a few dozen bytes; anything near this is not one of them.
const DefaultMaxBodyBytes = 64 << 10

// publishWarning is the Warning of an answer whose work was committed but whose events failed to
// be handled. It is the sentinel's own text: it says what happened and nothing of why.
var publishWarning = service.ErrPublish.Error()

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets where the handler logs unexpected errors and failed publications (default:
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMaxBodyBytes sets the largest request body the handler reads (default DefaultMaxBodyBytes);
// a larger one is answered 413. n must be positive; otherwise the default stays.
func WithMaxBodyBytes(n int64) Option {
	return func(h *Handler) {
		if n > 0 {
			h.maxBody = n
		}
	}
}

// Handler is the book's API as an http.Handler over a unit of work: POST /allocate and
// POST /add_batch (see the package comment for the bodies). It is safe for concurrent use, as the
// unit of work is.
//
// Each request's context is the service layer's: a client that hangs up cancels the work it
// started (a transaction not yet committed rolls back; a mail in flight is abandoned).
//
// Statuses beyond the book's: 409 for a duplicate batch reference and for an order already
// allocated with another quantity (the request is well formed but conflicts with what is stored;
// sending it again cannot help); 503 with Retry-After when the unit of work gave up after its
// retries of concurrent updates (sending it again may help); 201 with a Warning when the work was
// committed but handling its events failed (service.ErrPublish), because the data is committed
// and a 5xx would tell the client its allocation did not happen.
type Handler struct {
	uow     service.UnitOfWork
	log     *slog.Logger
	maxBody int64
	mux     *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the API over uow.
func NewHandler(uow service.UnitOfWork, opts ...Option) *Handler {
	h := &Handler{uow: uow, log: slog.Default(), maxBody: DefaultMaxBodyBytes, mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	h.mux.HandleFunc("POST /allocate", h.allocate)
	h.mux.HandleFunc("POST /add_batch", h.addBatch)
	return h
}

// ServeHTTP routes the request. Another method on a known path is a 405 with an Allow header,
// an unknown path a 404 (both the standard library mux's plain-text answers).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// allocateBody is AllocateRequest with every field a pointer, so that an absent field (or null)
// can be told apart from a zero.
type allocateBody struct {
	OrderID *string `json:"orderid"`
	SKU     *string `json:"sku"`
	Qty     *int    `json:"qty"`
}

type addBatchBody struct {
	Ref *string `json:"ref"`
	SKU *string `json:"sku"`
	Qty *int    `json:"qty"`
	ETA *string `json:"eta"`
}

func (h *Handler) allocate(w http.ResponseWriter, r *http.Request) {
	var body allocateBody
	if !h.decode(w, r, &body) {
		return
	}
	if msg := missing(field{"orderid", body.OrderID == nil}, field{"sku", body.SKU == nil}, field{"qty", body.Qty == nil}); msg != "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: msg})
		return
	}
	line := domain.OrderLine{OrderID: *body.OrderID, SKU: *body.SKU, Qty: *body.Qty}
	if err := line.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: err.Error()})
		return
	}
	ref, err := service.Allocate(r.Context(), h.uow, line.OrderID, line.SKU, line.Qty)
	warning := ""
	if errors.Is(err, service.ErrPublish) {
		h.log.ErrorContext(r.Context(), "allocate: committed, but handling its events failed",
			"orderid", line.OrderID, "sku", line.SKU, "err", err)
		warning = publishWarning
	}
	switch {
	case errors.Is(err, domain.ErrOutOfStock):
		// The book's message, from its OutOfStock exception.
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: "Out of stock for sku " + line.SKU, Warning: warning})
	case err == nil || warning != "":
		writeJSON(w, http.StatusCreated, AllocateResponse{BatchRef: ref, Warning: warning})
	case errors.Is(err, service.ErrInvalidSKU):
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: "Invalid sku " + line.SKU})
	case errors.Is(err, domain.ErrOrderConflict):
		writeJSON(w, http.StatusConflict, ErrorResponse{
			Message: fmt.Sprintf("%v: order %s of sku %s", domain.ErrOrderConflict, line.OrderID, line.SKU)})
	default:
		h.fail(w, r, "allocate", err)
	}
}

func (h *Handler) addBatch(w http.ResponseWriter, r *http.Request) {
	var body addBatchBody
	if !h.decode(w, r, &body) {
		return
	}
	if msg := missing(field{"ref", body.Ref == nil}, field{"sku", body.SKU == nil}, field{"qty", body.Qty == nil}); msg != "" {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: msg})
		return
	}
	ref, sku, qty := *body.Ref, *body.SKU, *body.Qty
	if err := domain.ValidateBatch(ref, sku, qty); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: err.Error()})
		return
	}
	var eta time.Time
	if body.ETA != nil {
		var err error
		if eta, err = parseETA(*body.ETA); err != nil {
			writeJSON(w, http.StatusBadRequest, ErrorResponse{Message: err.Error()})
			return
		}
	}
	err := service.AddBatch(r.Context(), h.uow, ref, sku, qty, eta)
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, AddBatchResponse{Ref: ref})
	case errors.Is(err, service.ErrPublish):
		h.log.ErrorContext(r.Context(), "add_batch: committed, but handling its events failed", "ref", ref, "err", err)
		writeJSON(w, http.StatusCreated, AddBatchResponse{Ref: ref, Warning: publishWarning})
	case errors.Is(err, domain.ErrDuplicateBatch):
		writeJSON(w, http.StatusConflict, ErrorResponse{Message: domain.ErrDuplicateBatch.Error() + " " + ref})
	default:
		h.fail(w, r, "add_batch", err)
	}
}

// fail answers an error that is not the client's: 503 when trying again may help, 500 otherwise,
// with a message that says nothing of the cause (the log has it).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, service.ErrRetriesExhausted), errors.Is(err, service.ErrConcurrentUpdate):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Message: "too many concurrent updates; try again"})
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		// The client hung up (or the server is cutting the request short): nobody may read this.
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Message: "request cancelled"})
	default:
		h.log.ErrorContext(r.Context(), op+" failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Message: "internal error"})
	}
}

// decode reads the body as exactly one JSON object into v, rejecting unknown fields. It answers a
// bad body itself and reports whether v may be used.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, ErrorResponse{Message: fmt.Sprintf("Content-Type %q: want application/json", ct)})
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// One object and nothing after it but white space.
		if extra := dec.Decode(&struct{}{}); !errors.Is(extra, io.EOF) {
			err = errTrailing
			if tooLarge(extra) {
				err = extra
			}
		}
	}
	if err == nil {
		return true
	}
	status, msg := http.StatusBadRequest, bodyMessage(err)
	if tooLarge(err) {
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.maxBody)
	}
	writeJSON(w, status, ErrorResponse{Message: msg})
	return false
}

var errTrailing = errors.New("data after the JSON object")

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// bodyMessage says what is wrong with a body that did not decode, in the client's terms.
func bodyMessage(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body: want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body is not valid JSON: unexpected end"
	case errors.As(err, &syntax):
		return fmt.Sprintf("body is not valid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("body is a JSON %s: want a JSON object", typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: want %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, errTrailing):
		return err.Error()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this one.
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "bad body: " + strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int":
		return "an integer"
	case "string":
		return "a string"
	}
	return goKind
}

// field is a required field of a body and whether it was absent (or null).
type field struct {
	name   string
	absent bool
}

// missing returns "missing field a, b" for the absent fields, or "".
func missing(fields ...field) string {
	var names []string
	for _, f := range fields {
		if f.absent {
			names = append(names, f.name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "missing field " + strings.Join(names, ", ")
}

// parseETA reads an eta as the API takes it: an ISO date ("2011-01-02", midnight UTC) or an
// RFC 3339 time, of which only the date counts, as the book's datetime.fromisoformat(eta).date().
func parseETA(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("eta %q: want an ISO date such as 2011-01-02, or null", s)
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a client that hung up cannot be told more
}

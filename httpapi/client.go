package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

var (
	// ErrBadURL is wrapped by NewClient's error for a base URL it cannot send to.
	ErrBadURL = errors.New("httpapi: bad base URL")
	// ErrRejected is wrapped by a StatusError for a 4xx that means nothing more specific: a bad
	// body, an unsupported content type, a body too large, an unknown path or method.
	ErrRejected = errors.New("request rejected")
	// ErrUnavailable is wrapped by a StatusError for a 503: the server gave up for now (too many
	// concurrent updates, or the request was cut short); sending it again may help.
	ErrUnavailable = errors.New("service unavailable")
	// ErrServer is wrapped by a StatusError for any other 5xx, and for an answer the client
	// cannot read (an unexpected status, a 201 that is not the API's JSON).
	ErrServer = errors.New("server error")
)

// maxAnswerBytes bounds how much of an answer the client reads.
const maxAnswerBytes = 1 << 20

// StatusError is the error of a request that the API answered with a status other than 201. It
// wraps the service layer's error where the answer says which (see Client), otherwise one of
// ErrRejected, ErrUnavailable and ErrServer.
type StatusError struct {
	Op      string // "allocate" or "add_batch"
	Status  int    // the HTTP status
	Message string // the answer's message, or its start when it is not the API's JSON
	Warning string // the answer's warning, if any
	kinds   []error
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// Unwrap returns the errors the answer means, for errors.Is and errors.As.
func (e *StatusError) Unwrap() []error { return e.kinds }

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient makes the client send through hc (default: a client of its own whose transport
// keeps up to 256 idle connections to the server, so that many goroutines can share it without
// opening a connection per request).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// Client calls the book's API over HTTP: this package's Handler, or any server that speaks the
// same JSON (the book's Flask app does). It returns the errors of the service layer where the
// answer says which:
//
//   - 400 "Out of stock for sku X": domain.ErrOutOfStock; a 201 whose batchref is null or empty
//     too (the book's app answers out of stock that way from chapter 8 on);
//   - 400 "Invalid sku X": service.ErrInvalidSKU;
//   - 400 "invalid order line: ..." or "invalid batch: ...": domain.ErrInvalidOrderLine or
//     domain.ErrInvalidBatch;
//   - 409 "duplicate batch reference X" or "order already allocated with another quantity: ...":
//     domain.ErrDuplicateBatch or domain.ErrOrderConflict;
//   - a Warning beside the answer: service.ErrPublish as well (Allocate still returns the batch).
//
// Every such error is a *StatusError. A transport failure is returned as net/http gives it (a
// cancelled ctx satisfies errors.Is with ctx.Err()). A Client is safe for concurrent use.
type Client struct {
	hc                              *http.Client
	allocateURL, batchURL, statsURL string
}

// NewClient returns a client of the API at baseURL ("http://127.0.0.1:8080"; a path is kept as a
// prefix), or an error wrapping ErrBadURL.
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadURL, baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w %q: want http://host:port or https://host:port, with no query", ErrBadURL, baseURL)
	}
	base := strings.TrimSuffix(u.String(), "/")
	c := &Client{allocateURL: base + "/allocate", batchURL: base + "/add_batch", statsURL: base + "/stats"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// CloseIdleConnections closes the connections the client keeps open between requests.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Allocate asks the API to allocate qty of sku to the order and returns the batch reference (see
// Client for the errors).
func (c *Client) Allocate(ctx context.Context, orderID, sku string, qty int) (string, error) {
	var ok struct {
		BatchRef *string `json:"batchref"`
		Warning  string  `json:"warning"`
	}
	status, err := c.post(ctx, "allocate", c.allocateURL, AllocateRequest{OrderID: orderID, SKU: sku, Qty: qty}, true, &ok)
	if err != nil {
		return "", err
	}
	if ok.BatchRef == nil || *ok.BatchRef == "" {
		return "", &StatusError{Op: "allocate", Status: status, Message: "no batch reference: out of stock for sku " + sku,
			Warning: ok.Warning, kinds: withPublish([]error{domain.ErrOutOfStock}, ok.Warning)}
	}
	if ok.Warning != "" {
		return *ok.BatchRef, &StatusError{Op: "allocate", Status: status, Message: "allocated to " + *ok.BatchRef,
			Warning: ok.Warning, kinds: []error{service.ErrPublish}}
	}
	return *ok.BatchRef, nil
}

// AddBatch asks the API to add a batch of qty of sku arriving at eta (zero: in the warehouse; only
// its date is sent). See Client for the errors.
func (c *Client) AddBatch(ctx context.Context, ref, sku string, qty int, eta time.Time) error {
	req := AddBatchRequest{Ref: ref, SKU: sku, Qty: qty}
	if !eta.IsZero() {
		d := eta.Format(time.DateOnly)
		req.ETA = &d
	}
	var ok struct {
		Warning string `json:"warning"`
	}
	status, err := c.post(ctx, "add_batch", c.batchURL, req, false, &ok)
	if err == nil && ok.Warning != "" {
		err = &StatusError{Op: "add_batch", Status: status, Message: "added " + ref, Warning: ok.Warning, kinds: []error{service.ErrPublish}}
	}
	return err
}

// post sends body as JSON and decodes a 201's JSON into created. A 201 that is not JSON is an
// error wrapping ErrServer when wantJSON is set, and leaves created as it is otherwise (the book's
// add_batch answers "OK"). Any other status is a *StatusError.
func (c *Client) post(ctx context.Context, op, url string, body any, wantJSON bool, created any) (int, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	_, _ = io.Copy(io.Discard, resp.Body) // so that the connection can be used again
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s: reading the %d answer: %w", op, resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusCreated {
		switch {
		case isJSON(resp.Header.Get("Content-Type")):
			if err := json.Unmarshal(answer, created); err != nil {
				return resp.StatusCode, &StatusError{Op: op, Status: resp.StatusCode, Message: "unreadable answer: " + err.Error(), kinds: []error{ErrServer}}
			}
		case wantJSON:
			return resp.StatusCode, &StatusError{Op: op, Status: resp.StatusCode,
				Message: "answer is not JSON: Content-Type " + resp.Header.Get("Content-Type"), kinds: []error{ErrServer}}
		}
		return resp.StatusCode, nil
	}
	return resp.StatusCode, statusError(op, resp.StatusCode, resp.Header.Get("Content-Type"), answer)
}

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(strings.ToLower(mt)) == "application/json"
}

// statusError reads a non-201 answer into the error it means.
func statusError(op string, status int, contentType string, answer []byte) *StatusError {
	e := &StatusError{Op: op, Status: status}
	var body ErrorResponse
	if isJSON(contentType) && json.Unmarshal(answer, &body) == nil && body.Message != "" {
		e.Message, e.Warning = body.Message, body.Warning
	} else {
		e.Message = strings.TrimSpace(string(answer[:min(len(answer), 200)]))
	}
	var kind error
	switch msg := e.Message; {
	case status == http.StatusBadRequest && strings.HasPrefix(msg, "Out of stock for sku "):
		kind = domain.ErrOutOfStock
	case status == http.StatusBadRequest && strings.HasPrefix(msg, "Invalid sku "):
		kind = service.ErrInvalidSKU
	case status == http.StatusBadRequest && strings.HasPrefix(msg, domain.ErrInvalidOrderLine.Error()):
		kind = domain.ErrInvalidOrderLine
	case status == http.StatusBadRequest && strings.HasPrefix(msg, domain.ErrInvalidBatch.Error()):
		kind = domain.ErrInvalidBatch
	case status == http.StatusConflict && strings.HasPrefix(msg, domain.ErrDuplicateBatch.Error()):
		kind = domain.ErrDuplicateBatch
	case status == http.StatusConflict && strings.HasPrefix(msg, domain.ErrOrderConflict.Error()):
		kind = domain.ErrOrderConflict
	case status == http.StatusServiceUnavailable:
		kind = ErrUnavailable
	case status >= 400 && status < 500:
		kind = ErrRejected
	default:
		kind = ErrServer
	}
	e.kinds = withPublish([]error{kind}, e.Warning)
	return e
}

func withPublish(kinds []error, warning string) []error {
	if warning != "" {
		kinds = append(kinds, service.ErrPublish)
	}
	return kinds
}

// Package httpapi is the book's HTTP API over a service.UnitOfWork, and a client for it.
//
// The wire format is the book's Flask app's (chapters 4 to 8):
//
//	POST /allocate   {"orderid": "o1", "sku": "SMALL-TABLE", "qty": 3}
//	  201 {"batchref": "batch-1"}
//	  400 {"message": "Out of stock for sku SMALL-TABLE"}   (after the out-of-stock mail went out)
//	  400 {"message": "Invalid sku SMALL-TABLE"}
//	POST /add_batch  {"ref": "batch-1", "sku": "SMALL-TABLE", "qty": 20, "eta": "2011-01-02"}
//	  201 {"ref": "batch-1"}                                 (eta null or absent: in the warehouse)
//
// A body that is not one JSON object of the request's fields (not JSON, a wrong type, a missing
// field, an unknown field, data after the object) or a field the domain rejects is a 400 with a
// message that says which, a body over the limit a 413, a Content-Type other than JSON a 415, a
// duplicate batch reference or an order already allocated with another quantity a 409; none of them
// changes anything. Unexpected errors are a 500 whose message says nothing of the cause, which is
// logged. See Handler for the rest.
package httpapi

// AllocateRequest is the body of POST /allocate. Every field is required.
type AllocateRequest struct {
	OrderID string `json:"orderid"`
	SKU     string `json:"sku"`
	Qty     int    `json:"qty"`
}

// AllocateResponse is the body of a 201 to POST /allocate. Warning is set when the allocation was
// committed but handling its events failed (service.ErrPublish): the batch is still the order's.
type AllocateResponse struct {
	BatchRef string `json:"batchref"`
	Warning  string `json:"warning,omitempty"`
}

// AddBatchRequest is the body of POST /add_batch. ETA is an ISO date ("2011-01-02") or an RFC 3339
// time, of which only the date counts; null or absent means the batch is in the warehouse. The
// other fields are required.
type AddBatchRequest struct {
	Ref string  `json:"ref"`
	SKU string  `json:"sku"`
	Qty int     `json:"qty"`
	ETA *string `json:"eta"`
}

// AddBatchResponse is the body of a 201 to POST /add_batch.
type AddBatchResponse struct {
	Ref     string `json:"ref"`
	Warning string `json:"warning,omitempty"`
}

// ErrorResponse is the body of every answer other than a 201 that the handler writes itself (the
// mux's 404 and 405 are plain text). Warning is set beside an out-of-stock message when the
// out-of-stock event was committed but handling it failed.
type ErrorResponse struct {
	Message string `json:"message"`
	Warning string `json:"warning,omitempty"`
}

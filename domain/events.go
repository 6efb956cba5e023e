package domain

// Meta identifies a message: its own ID and the ID of the message whose handling recorded it.
// The aggregate records events with an empty Meta unless a unit of work gave it an ID source
// (Product.StampEvents); the unit of work stamps those left empty before commit.
type Meta struct {
	ID          string // unique per message; empty until stamped
	CausationID string // ID of the message being handled when this one was recorded; empty for a root
}

// Identity returns the message's Meta. Types that embed Meta get it for free.
func (m Meta) Identity() Meta { return m }

// IDSource hands out message IDs, each unique among every message the source's users handle (see
// Product.StampEvents). A product calls it from the goroutine that changes the product.
type IDSource interface {
	NextID() string
}

// Event is something that happened in the domain, recorded by an aggregate and published by the
// unit of work after commit. Implementations are values that embed Meta.
type Event interface {
	Identity() Meta
	// WithIdentity returns a copy of the event carrying m.
	WithIdentity(m Meta) Event
}

// OutOfStock records that an order line found no batch to take it.
type OutOfStock struct {
	Meta
	SKU     string
	OrderID string
	Qty     int
}

// WithIdentity returns a copy of the event carrying m.
func (e OutOfStock) WithIdentity(m Meta) Event { e.Meta = m; return e }

// Allocated records that an order line was allocated to a batch.
type Allocated struct {
	Meta
	OrderID, SKU string
	Qty          int
	BatchRef     string
}

// WithIdentity returns a copy of the event carrying m.
func (e Allocated) WithIdentity(m Meta) Event { e.Meta = m; return e }

// Deallocated records that an order line lost its allocation because its batch shrank. The line
// still wants stock: a handler allocates it again.
type Deallocated struct {
	Meta
	OrderID, SKU string
	Qty          int
}

// WithIdentity returns a copy of the event carrying m.
func (e Deallocated) WithIdentity(m Meta) Event { e.Meta = m; return e }

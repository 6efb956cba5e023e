Feature: The book's semantics, bullet by bullet
  As someone who knows "Architecture Patterns with Python"
  I want every behaviour its batch, product and service tests pin down stated here
  So that stockbus is seen to keep them, and to fix the gaps it says it fixes

  This file was written from the step table in features/README.md alone. Each scenario states one
  bullet of the sections "Batch and OrderLine", "Product (the aggregate)" and "Services" of the
  reference semantics, in their order.

  # Batch and OrderLine

  @book
  Scenario: An order line is a value: a line made again with the same fields is the same line
    Given a batch "batch-001" of 20 "SMALL-TABLE" on its own
    And batch "batch-001" on its own allocates order "order-ref" of 2 "SMALL-TABLE"
    When batch "batch-001" on its own deallocates order "order-ref" of 2 "SMALL-TABLE"
    Then batch "batch-001" on its own has 20 available
    And batch "batch-001" on its own does not hold order "order-ref"

  @book
  Scenario: A batch is identified by its reference alone
    Given a batch "batch-001" of 20 "SMALL-TABLE" in the warehouse
    When I add a batch "batch-001" of 5 "BLUE-VASE" arriving tomorrow
    Then it fails with a duplicate batch
    And nothing changed in the store
    And there is no product "BLUE-VASE"

  @book
  Scenario: A batch of 20 allocated a line of 2 has 18 available
    Given a batch "batch-001" of 20 "SMALL-TABLE" on its own
    When batch "batch-001" on its own allocates order "order-ref" of 2 "SMALL-TABLE"
    Then batch "batch-001" on its own has 18 available
    And batch "batch-001" on its own holds order "order-ref"

  @book
  Scenario Outline: A batch of <batch qty> <batch sku> <can> take a line of <line qty> <line sku>: same sku and fits, equal being enough
    Given a batch "batch-001" of <batch qty> "<batch sku>" on its own
    Then batch "batch-001" on its own <can> take order "order-123" of <line qty> "<line sku>"

    Examples:
      | batch qty | batch sku           | line qty | line sku            | can    |
      | 20        | ELEGANT-LAMP        | 2        | ELEGANT-LAMP        | can    |
      | 2         | ELEGANT-LAMP        | 20       | ELEGANT-LAMP        | cannot |
      | 2         | ELEGANT-LAMP        | 2        | ELEGANT-LAMP        | can    |
      | 100       | UNCOMFORTABLE-CHAIR | 10       | EXPENSIVE-TOASTER   | cannot |
      | 100       | UNCOMFORTABLE-CHAIR | 1000     | EXPENSIVE-TOASTER   | cannot |

  @book
  Scenario: Allocating the same line twice leaves 18: allocations are a set
    Given a batch "batch-001" of 20 "SMALL-TABLE" on its own
    When batch "batch-001" on its own allocates order "order-ref" of 2 "SMALL-TABLE"
    And batch "batch-001" on its own allocates order "order-ref" of 2 "SMALL-TABLE"
    Then batch "batch-001" on its own has 18 available

  @book
  Scenario: Deallocating an allocated line restores the quantity
    Given a batch "batch-001" of 20 "DECORATIVE-TRINKET" on its own
    And batch "batch-001" on its own allocates order "order-ref" of 2 "DECORATIVE-TRINKET"
    When batch "batch-001" on its own deallocates order "order-ref" of 2 "DECORATIVE-TRINKET"
    Then batch "batch-001" on its own has 20 available

  @book
  Scenario: Deallocating a line the batch never held changes nothing
    Given a batch "batch-001" of 20 "DECORATIVE-TRINKET" on its own
    And batch "batch-001" on its own allocates order "order-ref" of 2 "DECORATIVE-TRINKET"
    When batch "batch-001" on its own deallocates order "never-held" of 2 "DECORATIVE-TRINKET"
    Then batch "batch-001" on its own has 18 available
    And batch "batch-001" on its own holds order "order-ref"

  @book
  Scenario: Allocating a line that does not fit is a silent no-op at batch level
    Given a batch "batch-001" of 2 "ELEGANT-LAMP" on its own
    When batch "batch-001" on its own allocates order "order-123" of 20 "ELEGANT-LAMP"
    Then batch "batch-001" on its own has 2 available
    And batch "batch-001" on its own does not hold order "order-123"

  # Product (the aggregate)

  @book
  Scenario: Warehouse stock is preferred to a shipment
    Given a batch "in-stock-batch" of 100 "RETRO-CLOCK" in the warehouse
    And a batch "shipment-batch" of 100 "RETRO-CLOCK" arriving tomorrow
    When I allocate order "oref" of 10 "RETRO-CLOCK"
    Then batch "in-stock-batch" has 90 available
    And batch "shipment-batch" has 100 available

  @book
  Scenario: Earlier batches are preferred, whatever order they were added in
    Given these batches:
      | batch  | qty | sku              | eta      |
      | medium | 100 | MINIMALIST-SPOON | tomorrow |
      | speedy | 100 | MINIMALIST-SPOON | today    |
      | slow   | 100 | MINIMALIST-SPOON | later    |
    When I allocate order "order1" of 10 "MINIMALIST-SPOON"
    Then batch "speedy" has 90 available
    And batch "medium" has 100 available
    And batch "slow" has 100 available

  @book
  Scenario: Batches with equal keys keep the order they were added in
    Given a batch "first" of 10 "TWIN-LAMP" arriving today
    And a batch "second" of 10 "TWIN-LAMP" arriving today
    When I allocate order "o1" of 3 "TWIN-LAMP"
    Then the allocation returns batch "first"
    And batch "second" has 10 available

  @book
  Scenario: When the preferred batch cannot take the line, the next one does
    Given a batch "in-stock-batch" of 5 "RETRO-CLOCK" in the warehouse
    And a batch "shipment-batch" of 100 "RETRO-CLOCK" arriving tomorrow
    When I allocate order "oref" of 10 "RETRO-CLOCK"
    Then the allocation returns batch "shipment-batch"
    And batch "in-stock-batch" has 5 available
    And batch "shipment-batch" has 90 available

  @book
  Scenario: Allocate returns the chosen batch and bumps the version by exactly one
    Given a batch "in-stock-batch" of 100 "HIGHBROW-POSTER" in the warehouse
    And the product "HIGHBROW-POSTER" is at version 7
    When I allocate order "oref" of 10 "HIGHBROW-POSTER"
    Then the allocation returns batch "in-stock-batch"
    And the product "HIGHBROW-POSTER" is at version 8

  @book
  Scenario: Out of stock gives no batch and one OutOfStock event, and leaves the version alone
    Given a batch "batch1" of 10 "SMALL-FORK" in the warehouse
    And order "order1" of 10 "SMALL-FORK" has been allocated
    And the product "SMALL-FORK" is at version 3
    When I allocate order "order2" of 1 "SMALL-FORK"
    Then I am told "SMALL-FORK" is out of stock
    And the bus handled, in this order:
      | event                                  |
      | out of stock: SMALL-FORK, order order2 |
    And the product "SMALL-FORK" is at version 3
    And nothing was handled before the commit

  @book
  Scenario: Each failed attempt records another OutOfStock event; they are not collapsed
    Given a batch "batch1" of 10 "SMALL-FORK" in the warehouse
    And order "order1" of 10 "SMALL-FORK" has been allocated
    When I allocate order "order2" of 1 "SMALL-FORK"
    And I allocate order "order3" of 1 "SMALL-FORK"
    And I allocate order "order2" of 1 "SMALL-FORK"
    Then the bus handled 3 OutOfStock events
    And these mails were sent, in this order:
      | to             | text                        |
      | stock@made.com | Out of stock for SMALL-FORK |
      | stock@made.com | Out of stock for SMALL-FORK |
      | stock@made.com | Out of stock for SMALL-FORK |

  @book
  Scenario: A new product, and a product loaded from storage, has no pending events
    Given a batch "batch1" of 10 "SMALL-FORK" in the warehouse
    And order "order1" of 10 "SMALL-FORK" has been allocated
    When I allocate order "order2" of 1 "SMALL-FORK"
    Then I am told "SMALL-FORK" is out of stock
    And a new product "SMALL-FORK" has no pending events
    And the product "SMALL-FORK" as loaded from the store has no pending events

  @beyond
  Scenario Outline: A line the book would take is refused with no change: <case>
    Given a batch "batch1" of 10 "SMALL-TABLE" in the warehouse
    When I allocate order "<order>" of <qty> "<sku>"
    Then it fails with an invalid order line
    And I am told "<told>"
    And nothing changed in the store
    And batch "batch1" has 10 available
    And there were 0 commit attempts

    Examples:
      | case           | order | qty  | sku         | told                                           |
      | quantity -350  | o1    | -350 | SMALL-TABLE | qty must be between 1 and 1000000000, got -350 |
      | quantity 0     | o1    | 0    | SMALL-TABLE | qty must be between 1 and 1000000000, got 0    |
      | empty order id |       | 1    | SMALL-TABLE | empty order id                                 |
      | empty sku      | o1    | 1    |             | empty sku                                      |

  @beyond
  Scenario: Re-sending an allocated order is a no-op that returns its batch
    Given a batch "batch1" of 10 "SMALL-TABLE" in the warehouse
    And a batch "batch2" of 10 "SMALL-TABLE" arriving tomorrow
    And order "o1" of 8 "SMALL-TABLE" has been allocated
    When I allocate order "o1" of 8 "SMALL-TABLE"
    Then the allocation returns batch "batch1"
    And batch "batch1" holds 1 order
    And batch "batch2" does not hold order "o1"
    And batch "batch2" has 10 available
    And no mail was sent
    And the bus handled no events

  # Services

  @book
  Scenario: Adding a batch creates the product on first use and appends batches after
    When I add a batch "b1" of 100 "GARISH-RUG" in the warehouse
    And I add a batch "b2" of 99 "GARISH-RUG" arriving tomorrow
    Then it succeeds
    And the product "GARISH-RUG" has the batches "b1, b2", in this order

  @beyond
  Scenario: A duplicate batch reference is refused with a clear error
    Given a batch "b1" of 100 "GARISH-RUG" in the warehouse
    When I add a batch "b1" of 5 "GARISH-RUG" arriving tomorrow
    Then it fails with a duplicate batch
    And I am told "duplicate batch reference"
    And nothing changed in the store
    And the product "GARISH-RUG" has the batches "b1", in this order

  @book
  Scenario: Allocating an unknown sku fails with "invalid sku" and commits nothing
    Given a batch "b1" of 100 "AREALSKU" in the warehouse
    When I allocate order "o1" of 10 "NONEXISTENTSKU"
    Then it fails with an invalid sku
    And I am told "invalid sku NONEXISTENTSKU"
    And there were 0 commit attempts
    And nothing changed in the store
    And there is no product "NONEXISTENTSKU"

  @book
  Scenario: Out of stock still commits, so the event is published and one mail is sent
    Given a batch "b1" of 9 "POPULAR-CURTAINS" in the warehouse
    When I allocate order "o1" of 10 "POPULAR-CURTAINS"
    Then I am told "POPULAR-CURTAINS" is out of stock
    And there was 1 commit attempt
    And nothing was handled before the commit
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for POPULAR-CURTAINS"
    And batch "b1" has 9 available

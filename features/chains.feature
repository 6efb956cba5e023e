Feature: Chains of messages when a batch's quantity changes
  As a stock controller whose supplier delivers less than was ordered
  I want the lines that no longer fit in a batch taken off it and allocated again elsewhere
  So that every order still ships from real stock, and the buyer hears about the ones that cannot

  # A change of quantity is a command. Its handler records one Deallocated event per line taken
  # off the batch (the most recently allocated first); the handler of Deallocated sends an
  # Allocate command for that line, which records Allocated (published on line_allocated) or
  # OutOfStock (mailed to stock@made.com). The bus handles all of it, first in first out, before
  # the call returns.

  @book
  Scenario: The book's reallocation: the last order on a shrunk batch moves to the next batch
    Given a batch "batch1" of 50 "INDIFFERENT-TABLE" in the warehouse
    And a batch "batch2" of 50 "INDIFFERENT-TABLE" arriving today
    And order "order1" of 20 "INDIFFERENT-TABLE" has been allocated
    And order "order2" of 20 "INDIFFERENT-TABLE" has been allocated
    When I change the quantity of batch "batch1" to 25
    Then it succeeds
    And batch "batch1" has 5 available
    And batch "batch2" has 30 available
    And batch "batch1" holds order "order1"
    And batch "batch2" holds order "order2"
    And no order is held twice
    And no mail was sent
    And these were published, in this order:
      | channel        | event                                                  |
      | line_allocated | allocated: INDIFFERENT-TABLE, order order2, batch batch2 |
    And there were 2 commit attempts
    And nothing was handled before the commit

  @beyond
  Scenario: The bus handles a chain first in, first out: the command, its events, the commands they send, their events
    Given a batch "batch1" of 50 "TABLE" in the warehouse
    And a batch "batch2" of 20 "TABLE" arriving today
    And order "order1" of 20 "TABLE" has been allocated
    And order "order2" of 20 "TABLE" has been allocated
    When I change the quantity of batch "batch1" to 0
    Then it succeeds
    And the bus handled these messages, in this order:
      | message                                    |
      | change batch quantity: batch1 to 0         |
      | deallocated: TABLE, order order2           |
      | deallocated: TABLE, order order1           |
      | allocate: TABLE, order order2, qty 20      |
      | allocate: TABLE, order order1, qty 20      |
      | allocated: TABLE, order order2, batch batch2 |
      | out of stock: TABLE, order order1          |
    And the bus handled, in this order:
      | event                                      |
      | deallocated: TABLE, order order2           |
      | deallocated: TABLE, order order1           |
      | allocated: TABLE, order order2, batch batch2 |
      | out of stock: TABLE, order order1          |
    And batch "batch2" holds order "order2"
    And batch "batch1" holds 0 orders
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for TABLE"

  @beyond
  Scenario: A change that leaves no stock anywhere sends one mail per line that found no batch
    Given a batch "b1" of 10 "LAMP" in the warehouse
    And a batch "b2" of 2 "LAMP" arriving later
    And order "o1" of 4 "LAMP" has been allocated
    And order "o2" of 3 "LAMP" has been allocated
    And order "o3" of 3 "LAMP" has been allocated
    When I change the quantity of batch "b1" to 4
    Then it succeeds
    And the bus handled 2 Deallocated events
    And the bus handled 2 OutOfStock events
    And the bus handled 0 Allocated events
    And 2 mails were sent to "stock@made.com"
    And nothing was published
    And batch "b1" has 0 available
    And batch "b1" holds order "o1"
    And batch "b2" has 2 available
    And the bus handled these messages, in this order:
      | message                           |
      | change batch quantity: b1 to 4    |
      | deallocated: LAMP, order o3       |
      | deallocated: LAMP, order o2       |
      | allocate: LAMP, order o3, qty 3   |
      | allocate: LAMP, order o2, qty 3   |
      | out of stock: LAMP, order o3      |
      | out of stock: LAMP, order o2      |

  @beyond
  Scenario: Quantity 0 through the service layer deallocates every line, and the chain starts with the events
    Given a batch "batch1" of 50 "TABLE" in the warehouse
    And a batch "batch2" of 50 "TABLE" arriving today
    And order "order1" of 20 "TABLE" has been allocated
    And order "order2" of 20 "TABLE" has been allocated
    When the service layer changes the quantity of batch "batch1" to 0
    Then it succeeds
    And batch "batch1" has 0 available
    And batch "batch1" holds 0 orders
    And batch "batch2" has 10 available
    And batch "batch2" holds 2 orders
    And no mail was sent
    And the bus handled these messages, in this order:
      | message                                      |
      | deallocated: TABLE, order order2             |
      | deallocated: TABLE, order order1             |
      | allocate: TABLE, order order2, qty 20        |
      | allocate: TABLE, order order1, qty 20        |
      | allocated: TABLE, order order2, batch batch2 |
      | allocated: TABLE, order order1, batch batch2 |
    And these were published, in this order:
      | channel        | event                                        |
      | line_allocated | allocated: TABLE, order order2, batch batch2 |
      | line_allocated | allocated: TABLE, order order1, batch batch2 |

  @beyond
  Scenario: A handler failing in the middle of a chain stops it when the bus propagates, and the lines stay unallocated
    Given a batch "batch1" of 50 "TABLE" in the warehouse
    And a batch "batch2" of 50 "TABLE" arriving today
    And order "order1" of 20 "TABLE" has been allocated
    And order "order2" of 20 "TABLE" has been allocated
    And a failing handler "audit" for Deallocated events
    When I change the quantity of batch "batch1" to 0
    Then I am told "handler audit failed on deallocated: TABLE, order order2"
    And handling "deallocated: TABLE, order order2" failed with "handler audit failed"
    And the bus handled these messages, in this order:
      | message                            |
      | change batch quantity: batch1 to 0 |
      | deallocated: TABLE, order order2   |
    And batch "batch1" holds 0 orders
    And batch "batch2" holds 0 orders
    And nothing was published

  Scenario Outline: A <behaviour> handler of Deallocated when the bus <policy> handler errors
    Given a batch "batch1" of 50 "TABLE" in the warehouse
    And a batch "batch2" of 50 "TABLE" arriving today
    And order "order1" of 20 "TABLE" has been allocated
    And order "order2" of 20 "TABLE" has been allocated
    And the bus <policy> handler errors
    And a <behaviour> handler "audit" for Deallocated events
    When I change the quantity of batch "batch1" to 0
    Then I am told "handler audit <outcome> on deallocated: TABLE, order order2"
    And handling "deallocated: TABLE, order order2" failed with "handler audit <outcome>"
    And handler "audit" was called <calls> times
    And batch "batch1" holds 0 orders
    And batch "batch2" holds <moved> orders
    And the bus handled <moved> Allocated events
    And no mail was sent

    @beyond
    Examples: propagating stops at the first error: the change is committed, its lines are allocated nowhere
      | behaviour | policy     | outcome  | calls | moved |
      | failing   | propagates | failed   | 1     | 0     |
      | panicking | propagates | panicked | 1     | 0     |

    @beyond
    Examples: collecting reports the error and finishes the chain: every line is allocated again
      | behaviour | policy   | outcome  | calls | moved |
      | failing   | collects | failed   | 2     | 2     |
      | panicking | collects | panicked | 2     | 2     |

  @beyond
  Scenario Outline: A change that can never be right is refused and changes nothing: <case>
    Given a batch "b1" of 10 "LAMP" in the warehouse
    And order "o1" of 4 "LAMP" has been allocated
    When <sender> the quantity of batch "<ref>" to <qty>
    Then it fails with <kind>
    And I am told "<message>"
    And nothing changed in the store
    And batch "b1" holds order "o1"
    And the bus handled no events
    And no mail was sent
    And nothing was published

    Examples:
      | case                                        | sender                    | ref  | qty        | kind              | message                                       |
      | unknown batch reference, sent on the bus    | I change                  | nope | 5          | an unknown batch  | unknown batch reference                       |
      | unknown batch reference, the service layer  | the service layer changes | nope | 5          | an unknown batch  | unknown batch reference                       |
      | negative quantity, sent on the bus          | I change                  | b1   | -1         | an invalid batch  | qty must be between 0 and 1000000000, got -1  |
      | negative quantity, the service layer        | the service layer changes | b1   | -1         | an invalid batch  | qty must be between 0 and 1000000000, got -1  |
      | quantity above the maximum                  | the service layer changes | b1   | 1000000001 | an invalid batch  | got 1000000001                                |

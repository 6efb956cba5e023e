Feature: Publishing events after the commit
  As a developer who adds handlers to the message bus
  I want events handed to the bus only once the work that raised them is stored, each exactly once
  So that no handler acts on work that was rolled back, and none acts twice on the same news

  @book
  Scenario: Events are handled only after the unit of work has committed
    Given a batch "b1" of 1 "LAMP" in the warehouse
    And a handler "witness" for OutOfStock events that looks at the store
    When one unit of work allocates:
      | order | qty | sku  |
      | o1    | 1   | LAMP |
      | o2    | 1   | LAMP |
    Then it succeeds
    And nothing was handled before the commit
    And when handler "witness" ran, batch "b1" already held order "o1"
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for LAMP"

  @book
  Scenario Outline: Work that <ending> stores nothing and publishes nothing
    Given a batch "b1" of 1 "LAMP" in the warehouse
    When one unit of work allocates, then <ending>:
      | order | qty | sku  |
      | o1    | 1   | LAMP |
      | o2    | 1   | LAMP |
    Then I am told "<message>"
    And nothing changed in the store
    And the bus handled no events
    And no mail was sent

    Examples:
      | ending | message           |
      | fails  | the work failed   |
      | panics | the work panicked |

  @book
  Scenario: A commit that fails publishes nothing
    Given a batch "b1" of 0 "LAMP" in the warehouse
    And conflicting commits are retried up to 0 times
    And another writer changes "LAMP" before every commit
    When I allocate order "o1" of 1 "LAMP"
    Then it fails with a concurrent update
    And the bus handled no events
    And no mail was sent

  @beyond
  Scenario: Each event is handled once by each handler, and never again by a later unit of work
    Given a batch "b1" of 0 "LAMP" in the warehouse
    And a working handler "audit" for OutOfStock events
    When I allocate order "o1" of 1 "LAMP"
    And a later unit of work loads "LAMP" and commits without changes
    Then it succeeds
    And the bus handled 1 OutOfStock event
    And every event was handled once by each of its handlers
    And handler "audit" was called 1 time
    And 1 mail was sent to "stock@made.com"

  @beyond
  Scenario: Events of two products are published product by product, in the order the products were first loaded
    Given a batch "a-batch" of 0 "A" in the warehouse
    And a batch "b-batch" of 0 "B" in the warehouse
    When one unit of work allocates:
      | order | qty | sku |
      | b1    | 5   | B   |
      | a1    | 5   | A   |
      | b2    | 5   | B   |
      | a2    | 5   | A   |
    Then it succeeds
    And the bus handled, in this order:
      | event                  |
      | out of stock: B, order b1 |
      | out of stock: B, order b2 |
      | out of stock: A, order a1 |
      | out of stock: A, order a2 |
    And 4 mails were sent to "stock@made.com"

  @beyond
  Scenario: Events raised by handlers are handled first in, first out, before the call returns
    Given a handler "relay" for Note events that raises:
      | on | raises |
      | A  | B, C   |
      | B  | D      |
    When the bus handles note "A"
    Then it succeeds
    And the bus handled, in this order:
      | event  |
      | note A |
      | note B |
      | note C |
      | note D |

  @beyond
  Scenario: Work committed by a handler joins the queue of the call that is running
    Given a batch "b1" of 0 "LAMP" in the warehouse
    And a handler "relay" for Note events that raises:
      | on    | raises        |
      | start | first, second |
    And a handler "clerk" for Note events that, on note "first", allocates order "o1" of 1 "LAMP"
    When the bus handles note "start"
    Then it succeeds
    And the bus handled, in this order:
      | event                     |
      | note start                |
      | note first                |
      | note second               |
      | out of stock: LAMP, order o1 |
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for LAMP"

  @book
  Scenario: An event that no handler takes is an error, not silence
    Given a working handler "audit" for OutOfStock events
    When the bus handles note "lonely"
    Then it fails with no handler
    And the bus handled no events

  Scenario Outline: A <behaviour> first handler when the bus <policy> handler errors
    Given the bus <policy> handler errors
    And a <behaviour> handler "first" for Note events
    And a working handler "second" for Note events
    And a handler "relay" for Note events that raises:
      | on | raises |
      | A  | B      |
    When the bus handles note "A"
    Then I am told "first <outcome> on note A"
    And handler "first" was called <calls> times
    And handler "second" was called <second> times
    And the bus handled <notes> Note events

    @book
    Examples: the book's chapter 8 stops at the first error and drops the rest of the queue
      | behaviour | policy     | outcome  | calls | second | notes |
      | failing   | propagates | failed   | 1     | 0      | 1     |

    @beyond
    Examples: collecting runs every handler of every event and returns all the errors; a panic is an error too
      | behaviour | policy     | outcome  | calls | second | notes |
      | failing   | collects   | failed   | 2     | 2      | 2     |
      | panicking | propagates | panicked | 1     | 0      | 1     |
      | panicking | collects   | panicked | 2     | 2      | 2     |

  Scenario Outline: The mailer is down and the bus <policy> handler errors: the work stays committed
    Given the bus <policy> handler errors
    And the mailer is down
    And a working handler "audit" for OutOfStock events
    And a batch "b1" of 1 "LAMP" in the warehouse
    When one unit of work allocates:
      | order | qty | sku  |
      | o1    | 1   | LAMP |
      | o2    | 1   | LAMP |
    Then it fails with a publishing error
    And I am told "mail send failed"
    And batch "b1" holds order "o1"
    And no mail was sent
    And handler "audit" was called <audit> times

    @book
    Examples: the mail handler comes first; its error stops the second handler
      | policy     | audit |
      | propagates | 0     |

    @beyond
    Examples: the second handler still runs
      | policy     | audit |
      | collects   | 1     |

  @book
  Scenario: When the mail cannot be sent the caller still learns that the order is out of stock
    Given the mailer is down
    And a batch "b1" of 0 "LAMP" in the warehouse
    When I allocate order "o1" of 1 "LAMP"
    Then I am told "LAMP" is out of stock
    And it fails with a publishing error
    And no mail was sent
